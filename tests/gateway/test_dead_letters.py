"""Dead letters: the store's bounds and replay bookkeeping, and the gateway keeping rejected
messages durably and re-admitting them through the full checks (real Mosquitto both sides)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.gateway.deadletters import DeadLetterStore, Outcome, Rejection
from edge_agent.gateway.pipeline import Gateway
from edge_agent.gateway.settings import GatewaySettings
from tests.support.gateway import (
    SITE,
    Rig,
    SimStation,
    gateway_config_file,
    publish_all,
    station_client,
    wait_until,
)
from tests.support.mosquitto import RecordingSubscriber

pytestmark = pytest.mark.timeout(180)


def _rej(n: int, size: int = 10, reason: str = "unknown_kid") -> Rejection:
    return Rejection("battrace/v1/s/st/event", bytes([n % 256]) * size + str(n).encode(), reason)


def test_same_message_again_counts_up_and_duplicates_are_not_kept(tmp_path: Path) -> None:
    store = DeadLetterStore(tmp_path / "dl.sqlite3")
    store.add([_rej(1)], now=100.0)
    store.add([_rej(1), Rejection("t", b"x", "duplicate")], now=150.0)
    (row,) = store.rows()
    assert (row.count, row.first_seen, row.last_seen, row.state) == (2, 100.0, 150.0, "held")
    assert (store.count, store.bytes) == (1, len(row.payload))
    store.close()


def test_bounds_drop_the_oldest_first_and_say_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = DeadLetterStore(tmp_path / "dl.sqlite3", max_count=3, max_bytes=10_000)
    store.add([_rej(i) for i in range(3)], now=1000.0)
    with caplog.at_level(logging.WARNING, logger="edge_agent.gateway.deadletters"):
        assert store.add([_rej(3), _rej(4)], now=1001.0) == 2
    assert [r.payload[-1:] for r in store.rows()] == [b"2", b"3", b"4"]
    assert "dead letters full: dropped the 2 oldest" in caplog.text
    # bytes: one big row pushes out as many old ones as needed
    assert store.add([_rej(5, size=9_990)], now=1002.0) == 3
    assert [r.payload[-1:] for r in store.rows()] == [b"5"] and store.count == 1
    # age: a row not seen for max_age goes on the next write
    aged = DeadLetterStore(tmp_path / "aged.sqlite3", max_age_days=1.0)
    aged.add([_rej(1)], now=0.0)
    assert aged.add([_rej(2)], now=2 * 86400.0) == 1
    assert [r.payload[-1:] for r in aged.rows()] == [b"2"]
    assert store.dropped == 5
    store.close()
    aged.close()


def test_replay_marks_and_outcomes(tmp_path: Path) -> None:
    store = DeadLetterStore(tmp_path / "dl.sqlite3")
    store.add([_rej(1), _rej(2, reason="revoked"), _rej(3)], now=10.0)
    ids = [r.id for r in store.rows()]
    assert store.mark_for_replay(reason="revoked") == [ids[1]]
    assert store.mark_for_replay(reason="revoked") == []  # already marked
    assert store.mark_for_replay(all_held=True) == [ids[0], ids[2]]
    assert [r.id for r in store.due_for_replay(10)] == ids
    store.record([Outcome(ids[0]), Outcome(ids[1], "revoked", "still"), Outcome(ids[2])], now=20.0)
    assert [r.id for r in store.rows()] == [ids[1]]  # accepted ones are not listed by default
    kept = store.get(ids[1])
    assert kept is not None and (kept.state, kept.count, kept.detail) == ("held", 2, "still")
    assert {r.state for r in store.rows(include_accepted=True)} == {"accepted", "held"}
    assert store.count == 1
    store.close()


def test_missing_dead_letter_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no dead letters at"):
        DeadLetterStore(tmp_path / "none.sqlite3", create=False)


def _started(settings: GatewaySettings) -> Gateway:
    gw = Gateway(settings)
    gw.start()
    assert gw.site.subscribed.wait(20)
    return gw


def test_unknown_key_events_are_kept_then_replayed_once_after_trusting_the_key(
    rig: Rig,
    recorder: RecordingSubscriber,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = rig.settings()
    config = gateway_config_file(tmp_path / "gw.toml", settings)
    newcomer = SimStation(SITE, "st01", tmp_path / "new-key")  # a new key, not yet trusted
    client = station_client(rig.pki, rig.site.port, "st01")
    gw = _started(settings)
    try:
        events = [newcomer.next_event() for _ in range(5)]
        publish_all(client, [(newcomer.topic, s) for _, s in events])
        registry = gw.metrics.registry
        assert wait_until(lambda: registry.get_sample_value("gateway_dead_letters") == 5)
        assert registry.get_sample_value("gateway_dead_letters_bytes") == sum(
            len(s) for _, s in events
        )
        assert main(["--config", str(config), "gateway", "rejected", "list", "--json"]) == 0
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [r["reason"] for r in rows] == ["unknown_kid"] * 5
        assert rows[0]["topic"] == newcomer.topic and rows[0]["station"] == "st01"
        assert (
            main(["--config", str(config), "gateway", "rejected", "show", str(rows[0]["id"])]) == 0
        )
        shown = json.loads(capsys.readouterr().out)
        assert bytes.fromhex(shown["payload_hex"]) == events[0][1]
        # replayed before the fix: rejected again, still held, nothing forwarded
        assert main(["--config", str(config), "gateway", "rejected", "replay", "--all"]) == 1
        out = capsys.readouterr().out
        assert out.count("rejected unknown_kid") == 5
        assert (
            main(
                [
                    "--config",
                    str(config),
                    "gateway",
                    "trust",
                    "add",
                    str(newcomer.public_pem),
                    "--station",
                    "st01",
                    "--site",
                    SITE,
                ]
            )
            == 0
        )
        capsys.readouterr()
        assert main(["--config", str(config), "gateway", "rejected", "replay", "--all"]) == 0
        assert capsys.readouterr().out.count(" accepted") == 5
        keys = {f"event:{e.event_id}" for e, _ in events}
        assert recorder.wait_for(keys, 30) == set()
        assert registry.get_sample_value("gateway_replayed_total", {"result": "accepted"}) == 5
        assert registry.get_sample_value("gateway_dead_letters") == 0
        # nothing left to replay, and a second replay cannot forward anything again
        assert main(["--config", str(config), "gateway", "rejected", "replay", "--all"]) == 1
        assert gw.upstream.wait_idle(20)
    finally:
        client.disconnect()
        client.loop_stop()
        gw.stop()
    assert all(recorder.counts[k] == 1 for k in keys), recorder.counts


def test_dead_letters_survive_a_restart_and_marks_are_replayed_at_start_with_evidence(
    rig: Rig,
    recorder: RecordingSubscriber,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = rig.settings()  # evidence_wait_s = 1: held evidence is rejected after a second
    config = gateway_config_file(tmp_path / "gw.toml", settings)
    newcomer = SimStation(SITE, "st01", tmp_path / "new-key")
    photo = b"label photo " * 100
    event, signed = newcomer.next_event(evidence=(photo,))
    client = station_client(rig.pki, rig.site.port, "st01")
    gw = _started(settings)
    try:
        evidence_topic = f"battrace/v1/{SITE}/st01/evidence/{event.event_id}"
        publish_all(client, [(newcomer.topic, signed), (evidence_topic, photo)])
        registry = gw.metrics.registry
        assert wait_until(lambda: registry.get_sample_value("gateway_dead_letters") == 2)
    finally:
        gw.stop()
    gateway = ["--config", str(config), "gateway"]
    assert main([*gateway, "rejected", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in listed] == ["unknown_kid", "evidence_unmatched"]
    # no gateway running: --wait 0 only marks them; the next start re-admits them
    assert main([*gateway, "rejected", "replay", "--all", "--wait", "0"]) == 0
    assert "marked 2 for replay" in capsys.readouterr().out
    add = ["trust", "add", str(newcomer.public_pem), "--station", "st01", "--site", SITE]
    assert main([*gateway, *add]) == 0
    gw = _started(settings)
    try:
        keys = {f"event:{event.event_id}", f"evidence:{event.event_id}"}
        assert recorder.wait_for(keys, 30) == set()
        assert gw.upstream.wait_idle(20)
    finally:
        client.disconnect()
        client.loop_stop()
        gw.stop()
    capsys.readouterr()
    assert main([*gateway, "rejected", "list", "--all", "--json"]) == 0
    states = [json.loads(line)["state"] for line in capsys.readouterr().out.splitlines()]
    assert states == ["accepted", "accepted"]
    assert {k: recorder.counts[k] for k in keys} == dict.fromkeys(keys, 1)
