"""The gateway reads the ingest's receipts (real Mosquitto, site and upstream broker).

Receipts here are signed by the test with the ingest's key (or another one) and published on
the upstream broker as the ingest would; tests/ingest/test_upstream_receipts.py runs the real
ingest. A forwarded row leaves the gateway's outbox only on an ``accepted`` receipt; a
``rejected`` one holds it with the reason until an operator retries it; anything unsigned,
foreign or on another station's topic changes nothing and is counted.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge_agent.cli import main
from edge_agent.errors import ConfigError
from edge_agent.gateway.pipeline import Gateway
from edge_agent.signing.keys import init_keys, load_signer
from edge_agent.signing.receipts import ReceiptItem
from tests.support.gateway import (
    ROOT,
    SITE,
    Rig,
    free_port,
    gateway_config_file,
    publish_all,
    station_client,
    wait_until,
)
from tests.support.ingest_receipts import (
    ingest_receipt,
    ingest_receipt_trust,
    ingest_signer,
    sample,
    upstream_client,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def gateway(rig: Rig) -> Iterator[Gateway]:
    settings = rig.settings(
        upstream_receipts_trust=str(ingest_receipt_trust(rig.workdir)),  # "auto": required
        upstream_receipt_timeout_s=300.0,  # no re-send by timeout in these tests
    )
    gw = Gateway(settings)
    gw.start()
    try:
        assert gw.site.subscribed.wait(20)
        assert gw.upstream.link.wait_subscribed(20)
        yield gw
    finally:
        gw.stop()


@pytest.fixture
def up(rig: Rig) -> Iterator[mqtt.Client]:
    client = upstream_client(rig.upstream, "fake-ingest")
    yield client
    client.disconnect()
    client.loop_stop()


def _forward(rig: Rig, gw: Gateway, name: str, photo: bytes | None = None) -> str:
    """One event (and its photo) from station ``name`` through the gateway: rows ``sent``."""
    st = rig.stations[name]
    event, signed = st.next_event(evidence=(photo,) if photo else ())
    items = [(st.topic, signed)]
    if photo:
        items.append((f"battrace/v1/{SITE}/{name}/evidence/{event.event_id}", photo))
    client = station_client(rig.pki, rig.site.port, name)
    try:
        publish_all(client, items)
    finally:
        client.disconnect()
        client.loop_stop()
    rows = len(items)
    assert wait_until(lambda: _states(gw, event.event_id) == ["sent"] * rows, 30), gw.outbox.rows()
    return event.event_id


def _states(gw: Gateway, key: str) -> list[str]:
    return [r.state for r in gw.outbox.rows_for(key)]


def _ignored(gw: Gateway) -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in gw.metrics.registry.collect():
        if metric.name == "gateway_upstream_receipts_ignored":
            for s in metric.samples:
                if s.name.endswith("_total"):
                    out[s.labels["reason"]] = s.value
    return out


def test_an_accepted_receipt_settles_the_event_and_its_photo_and_nothing_before_it(
    rig: Rig, gateway: Gateway, up: mqtt.Client
) -> None:
    gw = gateway
    event_id = _forward(rig, gw, "st01", photo=b"jpeg of st01" * 50)
    assert gw.outbox.depth == 2  # the upstream PUBACK alone deletes nothing
    topic, receipt = ingest_receipt(
        ingest_signer(rig.workdir), SITE, "st01", [ReceiptItem(event_id, "accepted", "stored")]
    )
    publish_all(up, [(topic, receipt)])
    assert wait_until(lambda: gw.outbox.depth == 0, 20), gw.outbox.rows()
    registry = gw.metrics.registry
    assert sample(registry, "gateway_upstream_receipts_total", status="accepted") == 1
    assert sample(registry, "gateway_upstream_outbox_rows", state="sent") == 0


def test_forged_foreign_and_misplaced_receipts_are_ignored_and_counted(
    rig: Rig, gateway: Gateway, up: mqtt.Client
) -> None:
    gw = gateway
    event_id = _forward(rig, gw, "st01")
    accepted = [ReceiptItem(event_id, "accepted", "stored")]
    init_keys(rig.workdir / "forger")
    forger = load_signer(rig.workdir / "forger")
    ingest = ingest_signer(rig.workdir)
    st02_topic = f"cloud/v1/{SITE}/st02/receipt/upstream"
    _, genuine = ingest_receipt(ingest, SITE, "st01", accepted)
    forged = ingest_receipt(forger, SITE, "st01", accepted)  # another key
    copied = (st02_topic, genuine)  # st01's receipt on st02's topic: the AAD differs
    # signed by the ingest for st02's topic, but the body speaks of st01
    misplaced = ingest_receipt(ingest, SITE, "st01", accepted, topic=st02_topic)
    garbage = (f"cloud/v1/{SITE}/st01/receipt/upstream", b"\xd2\x84not a receipt")
    publish_all(up, [forged, copied, misplaced, garbage])
    expected = {"unknown_kid": 1.0, "bad_signature": 1.0, "wrong_station": 1.0}

    def counted() -> bool:
        ignored = _ignored(gw)
        return sum(ignored.values()) == 4 and expected.items() <= ignored.items()

    assert wait_until(counted, 20), _ignored(gw)
    assert _states(gw, event_id) == ["sent"]  # still waiting for a real receipt
    assert sample(gw.metrics.registry, "gateway_upstream_receipts_total", status="accepted") == 0


def test_a_rejected_receipt_holds_the_rows_visibly_until_an_operator_retries(
    rig: Rig,
    gateway: Gateway,
    up: mqtt.Client,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gw = gateway
    event_id = _forward(rig, gw, "st02", photo=b"jpeg of st02" * 50)
    ingest = ingest_signer(rig.workdir)
    rejected = [ReceiptItem(event_id, "rejected", "bad_payload")]
    with caplog.at_level(logging.WARNING, logger="edge_agent.uplink.receipts"):
        publish_all(up, [ingest_receipt(ingest, SITE, "st02", rejected)])
        assert wait_until(lambda: _states(gw, event_id) == ["rejected"] * 2, 20)
    assert [r.reason for r in gw.outbox.rows_for(event_id)] == ["bad_payload"] * 2
    assert f"ingest rejected event {event_id}: bad_payload" in caplog.text
    registry = gw.metrics.registry
    assert sample(registry, "gateway_upstream_receipts_total", status="rejected") == 1
    assert sample(registry, "gateway_upstream_outbox_rows", state="rejected") == 2
    published = sample(registry, "gateway_upstream_published_total")
    # what an operator sees: the gateway's outbox with the reason
    outbox = str(gw.settings.outbox_path)
    capsys.readouterr()
    assert main(["outbox", "--path", outbox, "list", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["key"], r["state"], r["reason"]) for r in listed] == [
        (event_id, "rejected", "bad_payload")
    ] * 2
    # the cause fixed, the operator sends it again: forwarded once more, then accepted
    event_row = next(r["id"] for r in listed if r["topic"].endswith("/event"))
    assert main(["outbox", "--path", outbox, "retry", str(event_row)]) == 0
    assert wait_until(
        lambda: sample(registry, "gateway_upstream_published_total") >= published + 2, 30
    )
    assert wait_until(lambda: _states(gw, event_id) == ["sent"] * 2, 20), gw.outbox.rows()
    accepted = [ReceiptItem(event_id, "accepted", "stored")]
    publish_all(up, [ingest_receipt(ingest, SITE, "st02", accepted)])
    assert wait_until(lambda: gw.outbox.depth == 0, 20), gw.outbox.rows()


def test_required_upstream_receipts_without_the_ingest_keys_refuse_the_start(rig: Rig) -> None:
    with pytest.raises(ConfigError) as unset:
        Gateway(rig.settings(upstream_receipts="required"))
    assert unset.value.key_path == "gateway.upstream_receipts_trust"
    assert 'gateway.upstream_receipts = "required" needs' in str(unset.value)
    missing = rig.workdir / "nothing-here.json"
    with pytest.raises(ConfigError, match="does not exist") as absent:
        Gateway(rig.settings(upstream_receipts_trust=str(missing)))
    assert absent.value.key_path == "gateway.upstream_receipts_trust"
    # "off" ignores a configured store: rows leave on the upstream PUBACK as before
    gw = Gateway(
        rig.settings(
            upstream_receipts="off",
            upstream_receipts_trust=str(ingest_receipt_trust(rig.workdir)),
        )
    )
    try:
        assert gw.upstream_receipts is None and not gw.outbox.receipts
    finally:
        gw.stop()


def test_the_gateway_config_file_takes_the_upstream_receipt_keys(tmp_path: Path) -> None:
    from edge_agent.config import load_config

    trust = ingest_receipt_trust(tmp_path)
    config = tmp_path / "gateway.toml"
    config.write_text(
        "[gateway]\n"
        'upstream_receipts = "required"\n'
        f'upstream_receipts_trust = "{trust}"\n'
        "upstream_receipt_timeout_s = 12.5\n"
    )
    settings = load_config(config, environ={}).gateway
    assert settings.upstream_receipts_required
    assert settings.upstream_receipts_trust == trust
    assert settings.upstream_receipt_timeout_s == 12.5
    config.write_text('[gateway]\nupstream_receipts = "sometimes"\n')
    with pytest.raises(ConfigError):
        load_config(config, environ={})


def test_the_gateway_command_refuses_required_upstream_receipts_without_keys(rig: Rig) -> None:
    settings = rig.settings(upstream_receipts="required")
    config = gateway_config_file(rig.workdir / "no-ingest-keys.toml", settings, free_port())
    done = subprocess.run(
        [sys.executable, "-m", "edge_agent", "gateway", "--config", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: gateway.upstream_receipts_trust: no trust store of ingest keys,"
        ' which gateway.upstream_receipts = "required" needs'
    ]
    assert not (rig.workdir / "data").exists()  # refused before opening any database
