"""Uplink benchmarks against a local Mosquitto started here (baseline: raw paho QoS 1).

(a) throughput: ~1 KB payloads stored in the outbox and published with PUBACK, per second,
    vs raw paho QoS 1 publishing of the same payloads to the same broker (same window of 20);
(b) backlog drain: N stored events drained after an outage: rate per tenth and RSS;
(c) latency: store -> PUBACK for 200 events one at a time vs raw paho publish -> PUBACK.

    python bench/bench_uplink.py            # full run (100,000-event backlog)
    python bench/bench_uplink.py --smoke    # quick check used by CI
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from bench.raw_paho import RawPaho  # noqa: E402
from bench.stats import median_of, pct  # noqa: E402
from edge_agent.uplink.outbox import Outbox, OutboxMessage  # noqa: E402
from edge_agent.uplink.publisher import OutboxPublisher  # noqa: E402
from edge_agent.uplink.settings import MqttSettings  # noqa: E402
from edge_agent.uplink.topics import StationTopics  # noqa: E402
from tests.support.mosquitto import MosquittoBroker, mosquitto_available  # noqa: E402

TOPIC = StationTopics("site-1", "bench-1").event
PAYLOAD_SIZE = 1024
WINDOW = 20


def payload(i: int) -> bytes:
    head = f"evt-{i:08d}|".encode()
    return head + b"\xa5" * (PAYLOAD_SIZE - len(head))


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --- baseline: raw paho -------------------------------------------------------------------


def raw_throughput(port: int, n: int) -> float:
    raw = RawPaho(port, window=WINDOW)
    try:
        t0 = time.perf_counter()
        for i in range(n):
            raw.client.publish(TOPIC, payload(i), qos=1)
        raw.wait_acked(n)
        return n / (time.perf_counter() - t0)
    finally:
        raw.close()


def raw_latencies(port: int, n: int) -> list[float]:
    raw = RawPaho(port, window=WINDOW)
    out = []
    try:
        for i in range(n):
            t0 = time.perf_counter()
            raw.client.publish(TOPIC, payload(i), qos=1)
            raw.wait_acked(i + 1)
            out.append(time.perf_counter() - t0)
        return out
    finally:
        raw.close()


# --- ours ----------------------------------------------------------------------------------


def make_publisher(db: Path, port: int) -> tuple[Outbox, OutboxPublisher]:
    outbox = Outbox(db)
    settings = MqttSettings(host="127.0.0.1", port=port, max_inflight=WINDOW)
    pub = OutboxPublisher(outbox, settings, client_id=f"bench-{db.stem}")
    return outbox, pub


def outbox_throughput(port: int, n: int, workdir: Path, batch: int, producers: int = 1) -> float:
    """Producers store ``batch`` events per add while the publisher drains; until last PUBACK."""
    outbox, pub = make_publisher(workdir / f"tp-{batch}-{time.monotonic_ns()}.db", port)
    pub.start()
    if not pub.link.wait_connected(10):
        raise RuntimeError("publisher could not connect")

    def produce(first: int) -> None:
        for start in range(first * batch, n, batch * producers):
            end = min(n, start + batch)
            pub.enqueue([OutboxMessage(TOPIC, payload(i), f"evt-{i}") for i in range(start, end)])

    try:
        t0 = time.perf_counter()
        threads = [threading.Thread(target=produce, args=(k,)) for k in range(producers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if not pub.wait_idle(300):
            raise RuntimeError("outbox did not drain")
        return n / (time.perf_counter() - t0)
    finally:
        pub.stop()
        outbox.close()


def outbox_latencies(port: int, n: int, workdir: Path) -> list[float]:
    outbox, pub = make_publisher(workdir / f"lat-{time.monotonic_ns()}.db", port)
    pub.start()
    pub.link.wait_connected(10)
    out = []
    try:
        for i in range(n):
            t0 = time.perf_counter()
            fut = pub.submit(TOPIC, payload(i), f"lat-{i}")
            fut.result(30)
            out.append(time.perf_counter() - t0)
        return out
    finally:
        pub.stop()
        outbox.close()


def backlog_drain(port: int, n: int, workdir: Path) -> dict[str, float]:
    db = workdir / f"backlog-{time.monotonic_ns()}.db"
    outbox = Outbox(db)
    t0 = time.perf_counter()
    for start in range(0, n, 1000):
        outbox.add_many(
            [OutboxMessage(TOPIC, payload(i), f"b-{i}") for i in range(start, min(n, start + 1000))]
        )
    store_s = time.perf_counter() - t0
    outbox.close()
    # the "outage" ends: a fresh process state opens the stored backlog and drains it
    outbox, pub = make_publisher(db, port)
    marks: list[float] = []
    tenth = max(1, n // 10)

    def mark(row_id: int, key: str, latency: float) -> None:
        if pub.stats.published % tenth == 1 or tenth == 1:
            marks.append(time.perf_counter())

    pub.on_delivered(mark)
    rss_start = rss_kib()
    peak = [rss_start]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], rss_kib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t1 = time.perf_counter()
    pub.start()
    ok = pub.wait_idle(900)
    drain_s = time.perf_counter() - t1
    done.set()
    sampler.join()
    pub.stop()
    outbox.close()
    if not ok:
        raise RuntimeError("backlog did not drain")
    # rate per tenth of the backlog, from the first PUBACK on (connecting is not draining)
    rates = [tenth / (b - a) for a, b in itertools.pairwise(marks) if b > a]
    return {
        "events": n,
        "store_s": store_s,
        "drain_s": drain_s,
        "rate": n / drain_s,
        "rate_min": min(rates) if rates else 0.0,
        "rate_max": max(rates) if rates else 0.0,
        "rss_start_mib": rss_start / 1024,
        "rss_peak_mib": peak[0] / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run (CI)")
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (median)")
    parser.add_argument("--backlog", type=int, default=None, help="events in the backlog test")
    args = parser.parse_args()
    if not mosquitto_available():
        print("mosquitto binary not found (/usr/sbin/mosquitto)", file=sys.stderr)
        return 2
    runs = args.runs or (1 if args.smoke else 5)
    n_tp = 500 if args.smoke else 20_000
    n_lat = 30 if args.smoke else 200
    n_backlog = args.backlog or (2_000 if args.smoke else 100_000)

    with tempfile.TemporaryDirectory(prefix="bench-uplink-") as tmp:
        work = Path(tmp)
        broker = MosquittoBroker(work / "broker", persistence=False)
        broker.start()
        try:
            port = broker.port
            raw_tp = median_of(runs, lambda: raw_throughput(port, n_tp))
            ours_1 = median_of(runs, lambda: outbox_throughput(port, n_tp, work, 1))
            ours_8 = median_of(runs, lambda: outbox_throughput(port, n_tp, work, 1, 8))
            ours_50 = median_of(runs, lambda: outbox_throughput(port, n_tp, work, 50))
            raw_lat = raw_latencies(port, n_lat)
            our_lat = outbox_latencies(port, n_lat, work)
            drain = backlog_drain(port, n_backlog, work)
        finally:
            broker.stop()

    m_ours, m_raw = statistics.median(our_lat) * 1e3, statistics.median(raw_lat) * 1e3
    p_ours, p_raw = pct(our_lat, 0.99) * 1e3, pct(raw_lat, 0.99) * 1e3
    rows = [
        ("(a) msg/s, 1 producer, 1 event per commit", ours_1, raw_tp),
        ("(a) msg/s, 8 producers, 1 event each (group commit)", ours_8, raw_tp),
        ("(a) msg/s, 1 producer, 50 events per commit", ours_50, raw_tp),
        (f"(c) add->PUBACK median ms ({n_lat} events)", m_ours, m_raw),
        (f"(c) add->PUBACK p99 ms ({n_lat} events)", p_ours, p_raw),
    ]
    print(
        f"uplink benchmarks ({'smoke' if args.smoke else 'full'}; median of {runs} runs; "
        f"{PAYLOAD_SIZE} B payloads; window {WINDOW}; baseline = raw paho QoS 1, same broker)"
    )
    print(f"{'figure':<54}{'ours':>10}{'raw paho':>10}{'ratio':>8}")
    for name, ours, raw in rows:
        print(f"{name:<54}{ours:>10.2f}{raw:>10.2f}{ours / raw:>8.2f}")
    print(
        f"(b) backlog of {drain['events']:.0f} events: stored in {drain['store_s']:.1f} s, "
        f"drained in {drain['drain_s']:.1f} s = {drain['rate']:.0f} msg/s "
        f"(per tenth: min {drain['rate_min']:.0f}, max {drain['rate_max']:.0f}); RSS "
        f"{drain['rss_start_mib']:.1f} MiB at start, peak {drain['rss_peak_mib']:.1f} MiB"
    )
    ok = ours_1 > 0 and raw_tp > 0 and drain["rate"] > 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
