"""Receipts: last reading -> signed receipt latency at the station, and gateway throughput with
receipts, each against a baseline measured in the same run.

Latency: a station uplink with ``uplink.receipts = "required"`` and an ``edge-agent gateway``
process on the same machine, one local Mosquitto as site broker and one upstream. For each
event (one at a time): sign, commit to the outbox, publish; the clock stops when the gateway's
receipt has been verified and applied (the row deleted). Baseline: the same events' time to
the broker's PUBACK (what "done" meant before receipts).

Throughput: bench_gateway's run (N pre-loaded events for an offline persistent session, the
forwarder pinned to one CPU) with receipts on vs the same gateway with receipts off.

    python bench/bench_receipts.py            # 300 events latency, 6000 events x 3 runs
    python bench/bench_receipts.py --smoke    # 20 events latency, 300 events x 1 run (CI)
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import bench_gateway as bg  # noqa: E402
from bench.stats import pct  # noqa: E402
from edge_agent.dataform import from_plain  # noqa: E402
from edge_agent.gateway.pipeline import Gateway  # noqa: E402
from edge_agent.gateway.settings import GatewaySettings  # noqa: E402
from edge_agent.signing.keys import PUBLIC_KEY_FILE, init_keys  # noqa: E402
from edge_agent.signing.receipts import Receipt  # noqa: E402
from edge_agent.signing.trust import TrustStore  # noqa: E402
from edge_agent.uplink.settings import UplinkSettings  # noqa: E402
from edge_agent.uplink.station_uplink import station_uplink  # noqa: E402
from tests.support.gateway import SimStation, gateway_config_file  # noqa: E402

SITE = bg.SITE
_STARTED: list[subprocess.Popen[bytes]] = []  # killed on the way out, whatever happened


def start_site_broker(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A broker like hardware/mosquitto/site.conf minus TLS (set_tcp_nodelay: no Nagle wait)."""
    workdir.mkdir(parents=True)
    port = bg.free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "set_tcp_nodelay true\nmax_queued_messages 0\nmax_inflight_messages 100\n"
        + ("user root\n" if os.geteuid() == 0 else "")
    )
    # no inherited stdout: a broker left behind must not keep a caller's pipe open
    proc = subprocess.Popen(
        [bg.MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _STARTED.append(proc)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        try:
            bg.socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("mosquitto did not start")


def latency(work: Path, n: int) -> tuple[list[float], list[float]]:
    """(PUBACK latencies, receipt latencies) in ms of ``n`` events sent one at a time."""
    site, site_port = start_site_broker(work / "lat-site")
    up, up_port = start_site_broker(work / "lat-up")
    station = SimStation(SITE, "st01", work / "lat-keys")
    trust = TrustStore.load(work / "lat-trust.json", create=True)
    trust.add(station.public_pem.read_bytes(), station="st01", site=SITE)
    trust.save()
    gw_keys = work / "lat-gw-keys"
    init_keys(gw_keys)
    receipts_trust = TrustStore.load(work / "lat-receipts.json", create=True)
    receipts_trust.add((gw_keys / PUBLIC_KEY_FILE).read_bytes(), station="", site=SITE)
    receipts_trust.save()
    settings = from_plain(
        GatewaySettings,
        {
            "site_mqtt": {"port": site_port, "client_id": "lat-gw"},
            "upstream_mqtt": {"port": up_port, "client_id": "lat-gw-up"},
            "upstream_prefix": "cloud/v1",
            "trust_store": str(work / "lat-trust.json"),
            "data_dir": str(work / "lat-gw"),
            "receipt_key_dir": str(gw_keys),
            "outbox": {"min_free_disk_bytes": 0},
        },
    )
    config = gateway_config_file(work / "lat-gw.toml", settings)
    log = (work / "lat-gw.log").open("wb")
    gw = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "gateway", "--config", str(config)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=log,
        stderr=log,
    )
    uplink = station_uplink(
        site=SITE,
        station="st01",
        data_dir=work / "lat-station",
        settings=from_plain(
            UplinkSettings,
            {
                "mqtt": {"port": site_port, "client_id": "lat-station"},
                "outbox": {"min_free_disk_bytes": 0},
                "receipts_trust": str(work / "lat-receipts.json"),
            },
        ),
    )
    assert uplink.receipts is not None
    done: dict[str, float] = {}
    arrived = threading.Condition()

    def applied(receipt: Receipt) -> None:
        now = time.perf_counter()
        with arrived:
            for item in receipt.items:
                done.setdefault(item.event_id, now)
            arrived.notify_all()

    uplink.receipts.on_applied = applied
    uplink.publisher.start()
    pubacks: list[float] = []
    receipts: list[float] = []
    try:
        assert uplink.publisher.link.wait_subscribed(20)
        # warm-up: until the gateway answers (it starts in its own process)
        for i in range(n + 5):
            t0 = time.perf_counter()
            event, message = station.next_event()  # the last reading is in: sign it
            fut = uplink.publisher.submit(uplink.topics.event, message, event.event_id)
            fut.result(30)
            t_ack = time.perf_counter()
            with arrived:
                if not arrived.wait_for(lambda e=event.event_id: e in done, 60):
                    raise RuntimeError(f"no receipt for {event.event_id}")
            if i >= 5:
                pubacks.append((t_ack - t0) * 1000)
                receipts.append((done[event.event_id] - t0) * 1000)
    finally:
        uplink.publisher.stop()
        uplink.outbox.close()
        gw.terminate()
        gw.wait(20)
        log.close()
        for p in (site, up):
            p.terminate()
            p.wait(10)
    return pubacks, receipts


def throughput(work: Path, n: int, runs: int) -> dict[str, list[float]]:
    """Events per second of the gateway without and with receipts."""
    cpus = sorted(os.sched_getaffinity(0))
    mine, theirs = {cpus[0]}, set(cpus[1:]) or {cpus[0]}
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, mine)
    site, site_port = bg.start_broker(work / "tp-site", theirs)
    up, up_port = bg.start_broker(work / "tp-up", theirs)
    gw_keys = work / "tp-gw-keys"
    init_keys(gw_keys)
    results: dict[str, list[float]] = {"off": [], "on": []}
    try:
        stations = [SimStation(SITE, f"st{i:02d}", work / "tp-keys" / str(i)) for i in range(4)]
        trust = TrustStore.load(work / "trust.json", create=True)
        for st in stations:
            trust.add(st.public_pem.read_bytes(), station=st.station, site=SITE)
        trust.save()
        events = [(st.topic, st.next_event()[1]) for _ in range(n // 4) for st in stations]
        for i in range(runs):
            for kind in ("off", "on"):
                prefix = f"r{kind}{i}"
                settings = bg.gateway_settings(work, site_port, up_port, prefix)
                if kind == "on":
                    settings = dataclasses.replace(settings, receipt_key_dir=gw_keys)
                forwarder = Gateway(settings)
                forwarder.start()
                assert forwarder.site.subscribed.wait(20)
                forwarder.stop()
                bg.preload(site_port, events)
                count = bg.counter(up_port, f"{prefix}/#", len(events))
                forwarder = Gateway(settings)
                t0 = time.perf_counter()
                forwarder.start()
                rc = count.wait(300)
                elapsed = time.perf_counter() - t0
                # receipts follow the upstream commit, so the last ones may trail the counter
                deadline = time.monotonic() + 60
                while True:
                    sent = forwarder.metrics.registry.get_sample_value(
                        "gateway_receipts_total", {"status": "accepted"}
                    )
                    if kind == "off" or sent == len(events) or time.monotonic() > deadline:
                        break
                    time.sleep(0.01)
                forwarder.stop()
                assert rc == 0, f"counter exited with {rc}"
                if kind == "on":
                    assert sent == len(events), sent
                results[kind].append(len(events) / elapsed)
    finally:
        for p in (site, up):
            p.terminate()
            p.wait(10)
        os.sched_setaffinity(0, before)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI")
    parser.add_argument("--latency-events", type=int, default=300)
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    n_lat, n_tp, runs = (
        (20, 300, 1) if args.smoke else (args.latency_events, args.events, args.runs)
    )
    with tempfile.TemporaryDirectory(prefix="bench-receipts-") as tmp:
        work = Path(tmp)
        try:
            pubacks, receipts = latency(work, n_lat)
            tp = throughput(work, n_tp, runs)
        finally:
            for proc in _STARTED:
                proc.kill()
                proc.wait()
    ack_med, rc_med = statistics.median(pubacks), statistics.median(receipts)
    print(f"receipt latency: {len(receipts)} events one at a time, gateway process on this machine")
    print(f"{'path':<40} {'median ms':>10} {'p99 ms':>8}")
    print(f"{'last reading -> PUBACK (baseline)':<40} {ack_med:>10.2f} {pct(pubacks, 0.99):>8.2f}")
    print(f"{'last reading -> receipt applied':<40} {rc_med:>10.2f} {pct(receipts, 0.99):>8.2f}")
    print(
        f"ratio receipt/PUBACK: {rc_med / ack_med:.2f} median "
        f"(goal: receipt median < 30 ms: {'met' if rc_med < 30 else 'NOT met'})"
    )
    off, on = statistics.median(tp["off"]), statistics.median(tp["on"])
    print(f"gateway throughput: {n_tp} events, {runs} run(s), gateway pinned to one CPU")
    print(f"{'gateway':<40} {'ev/s':>10}  runs ev/s")
    for name, kind, value in (
        ("receipts off (baseline)", "off", off),
        ("receipts on (signed, per station+batch)", "on", on),
    ):
        runs_text = " ".join(f"{r:.0f}" for r in tp[kind])
        print(f"{name:<40} {value:>10.0f}  {runs_text}")
    print(
        f"ratio receipts on/off: {on / off:.2f} "
        f"(goal: >= 3000 ev/s with receipts: {'met' if on >= 3000 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
