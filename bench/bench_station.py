"""Station benchmarks against a local Mosquitto started here (baseline: raw paho QoS 1).

(1) identification overhead: time from the last source reading (``sources_done_at``) to the
    broker's PUBACK of the event and its evidence photo, median and p99 over N identifications
    with instant in-memory sources (so only our work is timed: reconcile, triage, assemble,
    sign, outbox commit with fsync, publish), vs raw paho publish -> PUBACK of the same signed
    event bytes and the same photo bytes;
(2) throughput: identifications stored and published (PUBACK) per second, back to back, vs raw
    paho QoS 1 publishing of the same payloads as fast as it can (same in-flight window).

    python bench/bench_station.py            # full run (200 identifications, 5 runs)
    python bench/bench_station.py --smoke    # quick check used by CI
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402

from bench.raw_paho import RawPaho  # noqa: E402
from bench.stats import median_of, pct  # noqa: E402
from edge_agent.config import config_from_plain  # noqa: E402
from edge_agent.signing.keys import init_keys, load_signer  # noqa: E402
from edge_agent.sim.label_render import render_label  # noqa: E402
from edge_agent.station.agent import StationAgent  # noqa: E402
from edge_agent.station.settings import StationSettings  # noqa: E402
from edge_agent.station.workflow import IdentificationWorkflow  # noqa: E402
from tests.support.mosquitto import MosquittoBroker, mosquitto_available  # noqa: E402
from tests.support.station import (  # noqa: E402
    PACK_CODE,
    instant_sources,
    station_files,
    station_plain,
)

WINDOW = 20
Payloads = list[tuple[str, bytes]]  # (topic, payload) in publish order


def evidence_photo() -> bytes:
    """A realistic evidence JPEG: a rendered 1460x960 label photo at quality 85 (~200 KB)."""
    image = render_label(PACK_CODE, "qr", seed=1, degrade=0.2)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return bytes(buf)


# --- ours: the station agent ----------------------------------------------------------------


class Ours:
    """A StationAgent with instant sources on its own data dir."""

    def __init__(self, work: Path, broker: MosquittoBroker, photo: bytes) -> None:
        files = station_files(work)
        plain = station_plain(files, broker, uplink={"mqtt": {"max_inflight": WINDOW}})
        self.config = config_from_plain(plain)
        self.photo = photo

    async def overhead(self, n: int) -> tuple[list[float], list[float], Payloads]:
        """Per identification: reading -> PUBACK and reading -> committed (s); payloads sent."""
        to_ack, to_commit, sent = [], [], []
        async with StationAgent(self.config, sources=instant_sources(self.photo)) as agent:
            assert agent.publisher is not None
            if not await asyncio.to_thread(agent.publisher.link.wait_connected, 10):
                raise RuntimeError("station could not connect")
            for _ in range(n):
                result = await agent.identify()
                published = await agent.wait_published(result.event.event_id, 30)
                acked = time.perf_counter()
                if not published.delivered:
                    raise RuntimeError("no PUBACK within 30 s")
                to_ack.append(acked - result.sources_done_at)
                to_commit.append(result.stored_at - result.sources_done_at)
                sent.append((agent.topics.event, result.message))
                if result.photo_jpeg:
                    sent.append((agent.topics.evidence(result.event.event_id), result.photo_jpeg))
        return to_ack, to_commit, sent

    async def throughput(self, n: int) -> float:
        """Identifications per second, back to back, until the last PUBACK."""
        async with StationAgent(self.config, sources=instant_sources(self.photo)) as agent:
            assert agent.publisher is not None
            if not await asyncio.to_thread(agent.publisher.link.wait_connected, 10):
                raise RuntimeError("station could not connect")
            t0 = time.perf_counter()
            ids = [(await agent.identify()).event.event_id for _ in range(n)]
            for event_id in ids:
                if not (await agent.wait_published(event_id, 120)).delivered:
                    raise RuntimeError("not delivered")
            return n / (time.perf_counter() - t0)


# --- baseline: raw paho -----------------------------------------------------------------------


def raw_latencies(port: int, sent: Payloads) -> list[float]:
    """Publish each event with its photo, wait for both PUBACKs; seconds per event."""
    raw = RawPaho(port, window=WINDOW)
    out = []
    try:
        i = 0
        while i < len(sent):
            group = [sent[i]]
            if i + 1 < len(sent) and "/evidence/" in sent[i + 1][0]:
                group.append(sent[i + 1])
            t0 = time.perf_counter()
            for topic, payload in group:
                raw.client.publish(topic, payload, qos=1)
            i += len(group)
            raw.wait_acked(i)
            out.append(time.perf_counter() - t0)
        return out
    finally:
        raw.close()


def raw_throughput(port: int, sent: Payloads) -> float:
    """Events (with their photos) per second, published as fast as paho takes them."""
    raw = RawPaho(port, window=WINDOW)
    events = sum(1 for topic, _ in sent if topic.endswith("/event"))
    try:
        t0 = time.perf_counter()
        for topic, payload in sent:
            raw.client.publish(topic, payload, qos=1)
        raw.wait_acked(len(sent))
        return events / (time.perf_counter() - t0)
    finally:
        raw.close()


class NullSink:
    """Stores nothing: isolates reconcile, triage, assemble and sign from the outbox."""

    async def store(self, event: object, message: bytes, photo_jpeg: bytes | None) -> None:
        return None


def cpu_only(work: Path, photo: bytes, n: int) -> list[float]:
    """Last reading -> signed event without the outbox (seconds per identification)."""
    init_keys(work / "keys", "ed25519")
    workflow = IdentificationWorkflow(
        settings=StationSettings(),
        sources=instant_sources(photo),
        signer=load_signer(work / "keys"),
        sink=NullSink(),
        boot_epoch=1,
    )

    async def run() -> list[float]:
        out = []
        for _ in range(n):
            r = await workflow.identify()
            out.append(r.stored_at - r.sources_done_at)
        return out

    return asyncio.run(run())


def measure(
    work: Path, broker_conf: str, photo: bytes, n_lat: int, n_tp: int, runs: int
) -> tuple[list[float], list[float], list[float], float, float, Payloads]:
    """(1) and, when ``runs`` > 0, (2) against a fresh broker with ``broker_conf`` added."""
    broker = MosquittoBroker(work / "broker", persistence=False, extra_conf=broker_conf)
    broker.start()
    try:
        ours = Ours(work / "station", broker, photo)
        to_ack, to_commit, sent = asyncio.run(ours.overhead(n_lat))
        raw_lat = raw_latencies(broker.port, sent)
        ours_tp = raw_tp = 0.0
        if runs:
            tp_sent = (sent * (n_tp // n_lat + 1))[: 2 * n_tp]
            ours_tp = median_of(runs, lambda: asyncio.run(ours.throughput(n_tp)))
            raw_tp = median_of(runs, lambda: raw_throughput(broker.port, tp_sent))
        return to_ack, to_commit, raw_lat, ours_tp, raw_tp, sent
    finally:
        broker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run (CI)")
    parser.add_argument("--runs", type=int, default=None, help="runs per throughput figure")
    parser.add_argument("-n", type=int, default=None, help="identifications in (1)")
    args = parser.parse_args()
    if not mosquitto_available():
        print("mosquitto binary not found (/usr/sbin/mosquitto)", file=sys.stderr)
        return 2
    runs = args.runs or (1 if args.smoke else 5)
    n_lat = args.n or (20 if args.smoke else 200)
    n_tp = 20 if args.smoke else 200
    photo = evidence_photo()

    with tempfile.TemporaryDirectory(prefix="bench-station-") as tmp:
        work = Path(tmp)
        # Mosquitto's default leaves Nagle on: the PUBACK of the photo waits for the client's
        # delayed ACK of the event's PUBACK (~40 ms). Measure both; recommend the option.
        cpu = cpu_only(work, photo, n_lat)
        nagle = measure(work / "nagle", "", photo, n_lat, n_tp, runs=0)
        to_ack, to_commit, raw_lat, ours_tp, raw_tp, sent = measure(
            work / "nodelay", "set_tcp_nodelay true\n", photo, n_lat, n_tp, runs
        )

    event_size = statistics.median(len(p) for t, p in sent if t.endswith("/event"))
    ms = 1e3
    rows = [
        (
            "(1) last reading -> PUBACK, median ms",
            statistics.median(to_ack) * ms,
            statistics.median(raw_lat) * ms,
        ),
        ("(1) last reading -> PUBACK, p99 ms", pct(to_ack, 0.99) * ms, pct(raw_lat, 0.99) * ms),
        ("(2) identifications/s stored + PUBACKed", ours_tp, raw_tp),
        (
            "(1) median ms, Mosquitto defaults (Nagle on)",
            statistics.median(nagle[0]) * ms,
            statistics.median(nagle[2]) * ms,
        ),
    ]
    print(
        f"station benchmarks ({'smoke' if args.smoke else 'full'}; (1) over {n_lat} "
        f"identifications, (2) {n_tp} back to back, median of {runs} runs; signed event "
        f"{event_size:.0f} B + evidence JPEG {len(photo)} B; window {WINDOW}; "
        f"baseline = raw paho QoS 1 of the same bytes, same broker; broker with "
        f"set_tcp_nodelay true unless noted)"
    )
    print(f"{'figure':<46}{'ours':>10}{'raw paho':>10}{'ratio':>8}")
    for name, mine, raw in rows:
        print(f"{name:<46}{mine:>10.2f}{raw:>10.2f}{mine / raw:>8.2f}")
    commit_med = statistics.median(to_commit) * ms
    print(
        f"(1) of which last reading -> outbox commit (reconcile, triage, sign, fsync): "
        f"median {commit_med:.2f} ms, p99 {pct(to_commit, 0.99) * ms:.2f} ms"
    )
    print(
        f"(1) of which reconcile + triage + assemble + sign alone (no outbox): "
        f"median {statistics.median(cpu) * ms:.2f} ms, p99 {pct(cpu, 0.99) * ms:.2f} ms"
    )
    goal = statistics.median(to_ack) * ms < 20.0
    print(f"goal: median last reading -> PUBACK under 20 ms: {'met' if goal else 'NOT met'}")
    return 0 if ours_tp > 0 and raw_tp > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
