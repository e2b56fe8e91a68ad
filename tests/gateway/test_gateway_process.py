"""`edge-agent gateway` as a process: SIGKILL mid-forward loses nothing; metrics; trust CLI."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.signing.trust import TrustStore
from tests.support.gateway import (
    GatewayProcess,
    Rig,
    SimStation,
    free_port,
    gateway_config_file,
    publish_all,
    station_client,
    wait_until,
)
from tests.support.mosquitto import RecordingSubscriber

pytestmark = pytest.mark.timeout(180)


def _metric(port: int, line_start: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    return None


def test_sigkill_mid_forward_loses_nothing(rig: Rig, recorder: RecordingSubscriber) -> None:
    mport = free_port()
    config = gateway_config_file(rig.workdir / "gateway.toml", rig.settings(), mport)
    gw = GatewayProcess(config, rig.workdir / "gateway.log")
    gw.start()
    clients = {n: station_client(rig.pki, rig.site.port, n) for n in rig.stations}
    try:
        # The first event proves the subscription (and the persistent site session) exists.
        probe, signed = rig.stations["st01"].next_event()
        assert wait_until(lambda: _metric(mport, "gateway_site_connected") == 1.0, 30)
        publish_all(clients["st01"], [(rig.stations["st01"].topic, signed)])
        assert recorder.wait_for({f"event:{probe.event_id}"}, 30) == set(), gw.log.read_text()
        burst = {n: [st.next_event() for _ in range(150)] for n, st in rig.stations.items()}
        keys = {f"event:{e.event_id}" for evs in burst.values() for e, _ in evs}

        def publish(name: str) -> None:
            topic = rig.stations[name].topic
            publish_all(clients[name], [(topic, s) for _, s in burst[name]], timeout=60)

        publishers = [threading.Thread(target=publish, args=(n,)) for n in burst]
        for t in publishers:
            t.start()
        assert wait_until(lambda: len(set(recorder.counts) & keys) >= 30, 60)
        gw.kill()
        at_kill = len(set(recorder.counts) & keys)
        for t in publishers:
            t.join(60)
        assert at_kill < len(keys), "the burst was forwarded before the kill: not mid-forward"
        gw.start()
        assert recorder.wait_for(keys, 90) == set(), gw.log.read_text()[-3000:]
        assert wait_until(lambda: _metric(mport, "gateway_upstream_outbox_depth") == 0.0, 30)
        accepted = _metric(mport, 'gateway_accepted_total{kind="event"}')
        assert accepted is not None and accepted > 0
        assert gw.terminate() == 0
    finally:
        gw.kill()
        for c in clients.values():
            c.disconnect()
            c.loop_stop()
    # At-least-once across the kill; duplicates can only come from the kill window.
    dupes = sum(n - 1 for k, n in recorder.counts.items() if k in keys)
    print(f"kill at {at_kill}/{len(keys)}, duplicates upstream: {dupes}")
    assert dupes <= 300, dupes
    assert all(recorder.counts[k] >= 1 for k in keys)


def test_trust_cli_add_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = SimStation("site-a", "st09", tmp_path / "keys")
    store = tmp_path / "trust.json"
    assert (
        main(
            [
                "gateway",
                "--trust-store",
                str(store),
                "trust",
                "add",
                str(st.public_pem),
                "--station",
                "st09",
                "--site",
                "site-a",
                "--not-after",
                "2030-01-01T00:00:00Z",
            ]
        )
        == 0
    )
    kid = capsys.readouterr().out.strip()
    assert kid == st.signer.kid.hex()
    assert main(["gateway", "--trust-store", str(store), "trust", "list"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row == {
        "kid": kid,
        "site": "site-a",
        "station": "st09",
        "not_before": None,
        "not_after": "2030-01-01T00:00:00Z",
        "revoked": False,
    }
    assert main(["gateway", "--trust-store", str(store), "trust", "revoke", kid]) == 0
    capsys.readouterr()
    assert TrustStore.load(store).entries()[0].revoked
    assert main(["gateway", "--trust-store", str(store), "trust", "revoke", "00" * 16]) == 2
    assert (
        main(
            [
                "gateway",
                "--trust-store",
                str(store),
                "trust",
                "add",
                str(tmp_path / "nope.pem"),
                "--station",
                "x",
                "--site",
                "y",
            ]
        )
        == 2
    )
