"""Key rotation of a token key end to end with processes: ``edge-agent run`` signing in a
SoftHSM2 token, ``edge-agent gateway`` (receipt key in the token too), ``edge-agent keys
rotate`` in the middle of a steady stream of identifications, real Mosquitto brokers. Nothing
may be lost or rejected; ``keys retire`` then destroys the old key inside the token."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pkcs11 import Attribute, ObjectClass

from edge_agent.gateway.deadletters import DeadLetterStore
from edge_agent.signing.events import verify_event
from edge_agent.signing.trust import TrustStore
from edge_agent.station.control import request_identify
from edge_agent.tokens.library import TokenSession
from tests.station.procs import run_cli
from tests.station.test_rotation_process import KEY_TOPIC, Stream, upstream_key
from tests.support.gateway import wait_until
from tests.support.mosquitto import RecordingSubscriber
from tests.support.tokens import Token, softhsm_token
from tests.tokens.test_token_end_to_end import Rig, rig  # noqa: F401  (the rig fixture)

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Token:
    """SoftHSM2 only: see test_token_keyring for why swtpm cannot rotate here."""
    tok = softhsm_token(tmp_path / "softhsm")
    for name, value in tok.env.items():
        monkeypatch.setenv(name, value)
    return tok


@pytest.fixture
def upstream(rig: Rig) -> Iterator[RecordingSubscriber]:  # noqa: F811
    rec = RecordingSubscriber(rig.upstream, "cloud/v1/#", client_id="rot-up", key_of=upstream_key)
    yield rec
    rec.close()


def private_labels(token: Token) -> set[str]:
    with TokenSession(token.settings("station")) as tk:
        found = tk.session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
        return {str(o[Attribute.LABEL]) for o in found}


def test_token_key_rotation_in_a_steady_stream_loses_and_rejects_none(
    rig: Rig,  # noqa: F811
    upstream: RecordingSubscriber,
) -> None:
    old_kid = rig.station_kid
    station = rig.start_station()
    stream = Stream(station)
    try:
        assert wait_until(lambda: stream.count() >= 10, 60), stream.errors
        rotated = run_cli(rig.config, "keys", "rotate", "--json")
        assert rotated.returncode == 0, rotated.stderr
        answer = json.loads(rotated.stdout)
        new_kid = answer["new_kid"]
        assert (answer["old_kid"], answer["switched"]) == (old_kid, False)
        # the service switches when the gateway's receipt accepts the statement
        assert wait_until(lambda: stream.count(new_kid) >= 10, 120), (stream.errors, stream.ids)
        status = json.loads(run_cli(rig.config, "keys", "rotate", "--status", "--json").stdout)
        assert status["active"] == new_kid and status["pending"] is None
        (retired,) = status["retired"]
        assert (retired["kid"], retired["rotated_to"]) == (old_kid, new_kid)
        assert retired["private_key"] == f"station.old.{old_kid}"  # still in the token
    finally:
        stream.stop()
    assert not stream.errors, stream.errors
    try:
        # after a restart the station still signs with the new key (the label names it now)
        station.close()
        station = rig.start_station()
        answer = asyncio.run(request_identify(station.socket, [], 20.0))
        assert answer["ok"] and answer["event"]["kid"] == new_kid
        stream.ids.append((answer["event"]["event_id"], new_kid))
        kids = [k for _, k in stream.ids]
        assert kids == sorted(kids, key=lambda k: k == new_kid)
        assert kids.count(old_kid) >= 10 and kids.count(new_kid) >= 11
        expected = [f"event:{i}@{k}" for i, k in stream.ids]
        assert not upstream.wait_for([*expected, KEY_TOPIC], 120)
        assert wait_until(lambda: rig.outbox_rows() == 0, 60)
    finally:
        station.close()
    events = {k: n for k, n in upstream.counts.items() if k.startswith("event:")}
    assert events == dict.fromkeys(expected, 1)  # every identification once, nothing else
    assert upstream.counts[KEY_TOPIC] == 1
    dead = DeadLetterStore(rig.root / "gateway" / "deadletters.sqlite3", create=False)
    try:
        assert dead.rows(include_accepted=True) == []
    finally:
        dead.close()
    trust = TrustStore.load(rig.trust_path)
    old_entry, new_entry = trust.entry(old_kid), trust.entry(new_kid)
    assert old_entry is not None and new_entry is not None
    assert old_entry.rotated_to == new_kid and new_entry.rotated_from == old_kid
    for topic, payload, _retain in list(upstream.messages):
        if topic.endswith("/event"):
            verify_event(payload, trust)
    # the old key stays in the token until its overlap has ended; retire --force destroys it
    assert private_labels(rig.token) == {"station", f"station.old.{old_kid}", "gateway-receipts"}
    kept = run_cli(rig.config, "keys", "retire")
    assert kept.returncode == 0 and f"kept {old_kid}" in kept.stdout, kept.stderr
    gone = run_cli(rig.config, "keys", "retire", "--force")
    assert gone.returncode == 0 and f"retired {old_kid}" in gone.stdout, gone.stderr
    assert private_labels(rig.token) == {"station", "gateway-receipts"}
    # no key file was touched: the file key in key_dir never rotated
    assert not (rig.key_dir / "retired").exists() and not (rig.key_dir / "next").exists()
