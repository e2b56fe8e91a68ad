"""SIGTERM of the gateway process in the middle of a burst: nothing is forwarded twice.

Issue 13, fault test (6). A graceful stop commits every upstream PUBACK it received (and waits
for those of the rows in flight) before it disconnects, and makes sure the site broker handled
its last acks (PINGREQ round trip) before closing the site connection, so the restarted gateway
neither re-sends an acknowledged row upstream nor gets a committed message again.
"""

from __future__ import annotations

import threading
import urllib.request

import pytest

from tests.support.gateway import (
    GatewayProcess,
    Rig,
    free_port,
    gateway_config_file,
    publish_all,
    station_client,
    wait_until,
)
from tests.support.mosquitto import RecordingSubscriber

pytestmark = pytest.mark.timeout(600)

TRIALS = 10
BURST = 2000


def _metric(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def test_sigterm_mid_burst_forwards_each_event_exactly_once(
    rig: Rig, recorder: RecordingSubscriber
) -> None:
    mport = free_port()
    config = gateway_config_file(rig.workdir / "gateway.toml", rig.settings(), mport)
    gw = GatewayProcess(config, rig.workdir / "gateway.log")
    clients = {n: station_client(rig.pki, rig.site.port, n) for n in rig.stations}
    stops_mid_burst = 0
    all_keys: set[str] = set()
    try:
        gw.start()
        assert wait_until(lambda: _metric(mport, "gateway_site_connected") == 1.0, 30)
        for trial in range(TRIALS):
            burst = {
                n: [st.next_event() for _ in range(BURST // len(rig.stations))]
                for n, st in rig.stations.items()
            }
            keys = {f"event:{e.event_id}" for evs in burst.values() for e, _ in evs}
            all_keys |= keys

            def publish(name: str, events: list[tuple[object, bytes]]) -> None:
                topic = rig.stations[name].topic
                publish_all(clients[name], [(topic, s) for _, s in events], timeout=120)

            publishers = [
                threading.Thread(target=publish, args=(n, evs)) for n, evs in burst.items()
            ]
            for t in publishers:
                t.start()
            # stop at a different point of the burst in each trial
            threshold = 1 + trial * BURST // (TRIALS + 2)
            assert wait_until(lambda: len(recorder.counts.keys() & keys) >= threshold, 120)
            assert gw.terminate() == 0, gw.log.read_text()[-3000:]
            if len(recorder.counts.keys() & keys) < len(keys):
                stops_mid_burst += 1
            for t in publishers:
                t.join(120)
            gw.start()
            assert recorder.wait_for(keys, 120) == set(), gw.log.read_text()[-3000:]
            assert wait_until(lambda: _metric(mport, "gateway_upstream_outbox_depth") == 0.0, 60)
            # the site broker handled the acks of the stopped gateway: nothing came back
            assert _metric(mport, 'gateway_rejected_total{reason="duplicate"}') is None
        assert gw.terminate() == 0
    finally:
        gw.kill()
        for c in clients.values():
            c.disconnect()
            c.loop_stop()
    twice = {k: n for k, n in recorder.counts.items() if k in all_keys and n != 1}
    assert twice == {}, f"{len(twice)} events forwarded more than once"
    assert all_keys <= recorder.counts.keys()
    assert stops_mid_burst >= TRIALS // 2, f"only {stops_mid_burst} stops hit a running burst"
