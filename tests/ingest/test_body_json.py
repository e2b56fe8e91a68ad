"""The stored row of a verified event is byte for byte what it was before the body JSON was
written straight from the decoded map.

``data/event_rows_golden.json`` holds varied bodies (the schema examples as a station encodes
them and as bare documents with defaults left out, full BMS and label readings, integers in
float fields, explicit nulls, text needing JSON escapes, corrections, an intake record,
evidence, a map in non-canonical order) and the rows ``event_row`` made of them on ``main`` at
64ef73b (before this change), with ``json.dumps(to_plain(event))`` as its body JSON.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.dataform import DataFormError, from_plain, to_plain
from edge_agent.event_codec import decode_body, event_to_plain
from edge_agent.ingest.check import body_json, check_event, event_row
from edge_agent.ingest.store import EventRow
from edge_agent.model import IdentificationEvent
from edge_agent.plain_out import is_plain_form
from edge_agent.signing.cose import sign1
from edge_agent.signing.keys import public_key_pem
from edge_agent.signing.signer import SoftwareSigner
from edge_agent.signing.trust import TrustStore
from tests.support.station import healthy_readings

GOLDEN = json.loads((Path(__file__).parent / "data" / "event_rows_golden.json").read_text())
RECEIVED = "2026-12-06T00:00:00Z"


def _plain_row(row: EventRow) -> dict[str, Any]:
    plain = asdict(row)
    plain["cose"] = plain["cose"].hex()
    plain["evidence"] = [list(e.values()) for e in plain["evidence"]]
    return plain


def _old_body_json(event: IdentificationEvent) -> str:
    return json.dumps(to_plain(event), ensure_ascii=False, sort_keys=True)


@pytest.mark.parametrize("case", GOLDEN, ids=[c["name"] for c in GOLDEN])
def test_rows_equal_those_of_main(case: dict[str, Any]) -> None:
    body = bytes.fromhex(case["body"])
    event, plain = decode_body(body)
    row = event_row(event, b"COSE:" + body[:8], RECEIVED, plain)
    assert _plain_row(row) == case["row"]
    assert row.body_json == _old_body_json(event) == event_row(event, b"", RECEIVED).body_json


def test_rows_of_signed_events_equal_those_of_main(tmp_path: Path) -> None:
    # the whole path: COSE verified, body decoded and validated once, the row made from both
    signer = SoftwareSigner(Ed25519PrivateKey.generate())
    trust = TrustStore(tmp_path / "trust.json")
    trust.add(public_key_pem(signer.public_key), station="st01", site="plant-a")
    kid, now = signer.kid.hex(), datetime(2026, 12, 6, tzinfo=UTC)
    straight = 0
    for case in GOLDEN:
        event, plain = decode_body(bytes.fromhex(case["body"]))
        plain = {**plain, "kid": kid, "site": "plant-a", "station": "st01"}
        payload = cbor2.dumps(plain, canonical=True)
        cose = sign1(payload, signer)
        topic = "cloud/v1/plant-a/st01/event"
        row = check_event(topic, cose, trust, prefix="cloud/v1", max_bytes=65536, now=now)
        assert isinstance(row, EventRow), row
        expected = replace(event, kid=kid, site="plant-a", station="st01")
        assert row.cose == cose
        assert row.body_json == _old_body_json(expected)
        expect = {**case["row"], "kid": kid, "site": "plant-a", "station": "st01"}
        expect["cose"], expect["body_json"] = cose.hex(), row.body_json
        assert _plain_row(replace(row, received_utc=RECEIVED)) == expect
        straight += is_plain_form(IdentificationEvent, plain)
    assert straight >= 5  # the fast path was taken, not only the fallback


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_body_json_equals_to_plain_for_varied_maps(data: st.DataObject) -> None:
    doc = event_to_plain(replace(from_plain(IdentificationEvent, GOLDEN_DOC), readings=READINGS))
    for path in data.draw(st.lists(st.sampled_from(_paths(doc)), max_size=6)):
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key] if _has(parent, key) else None
        if parent is None or not _has(parent, path[-1]):
            continue  # dropped by an earlier change
        what = data.draw(st.sampled_from(["drop", "null", "int", "float", "keep"]))
        value = parent[path[-1]]
        if what == "drop":
            del parent[path[-1]]
        elif what == "null":
            parent[path[-1]] = None
        elif what == "int" and isinstance(value, float) and value.is_integer():
            parent[path[-1]] = int(value)
        elif what == "float" and type(value) is int:
            parent[path[-1]] = float(value)
    body = cbor2.dumps(doc, canonical=data.draw(st.booleans()))
    try:
        event, plain = decode_body(body)
    except (DataFormError, ValueError):
        return
    assert body_json(event, plain) == _old_body_json(event)


def _has(container: Any, key: Any) -> bool:
    if isinstance(container, dict):
        return key in container
    return isinstance(container, list) and key < len(container)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc)
    for key, value in items:
        found.append((*prefix, key))
        if isinstance(value, dict | list):
            found += _paths(value, (*prefix, key))
    return found


GOLDEN_DOC = json.loads(
    (Path(__file__).parents[2] / "schemas" / "examples" / "healthy-lfp.json").read_text()
)
READINGS = healthy_readings()
