"""Benchmarks of the field kit: its start-up and the node self-test probe, each with a baseline.

    python bench/bench_fieldkit.py            # full run (median of 5)
    python bench/bench_fieldkit.py --smoke    # quick check that it works (CI)

1. field kit start-up: ``edge-agent sim fieldkit`` (GB/T BMS on slcan, node firmware, camera
   folder, embedded broker, key) until "field kit ready"; baseline: ``edge-agent sim node``
   alone until it prints its port (the slowest single part: MicroPython boot behind a pty).
2. node probe: the self-test's ``nodes`` + ``scale`` checks (hello, then a stable weight) against
   the real firmware; baseline: the same exchange by hand (SerialNodeLink open, hello, one
   stable weight, close) on the same node, without the self-test runner.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.config import config_from_plain  # noqa: E402
from edge_agent.nodes.link import SerialNodeLink  # noqa: E402
from edge_agent.nodes.readings import read_weight  # noqa: E402
from edge_agent.selftest import CheckContext, run_selftest  # noqa: E402
from edge_agent.sim.node_sim import NodeSimulator  # noqa: E402


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _time_until(args: list[str], marker: str, workdir: Path) -> float:
    """Seconds from spawn until ``marker`` appears on stdout; the process is then stopped."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=workdir,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if marker in line:
                return time.perf_counter() - start
        raise RuntimeError(f"{args[:3]} ended before {marker!r}")
    finally:
        proc.terminate()
        proc.wait(30)


def bench_startup(runs: int) -> tuple[float, float]:
    """(field kit, node alone) median start-up seconds."""
    ours, base = [], []
    for i in range(runs):
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            ours.append(
                _time_until(
                    ["sim", "fieldkit", "--config-out", "a.toml", "--workdir", f"w{i}"],
                    "field kit ready",
                    tmp,
                )
            )
            base.append(_time_until(["sim", "node", "--workdir", f"n{i}"], "/", tmp))
    return statistics.median(ours), statistics.median(base)


def bench_probe(runs: int) -> tuple[float, float]:
    """(nodes+scale self-test, bare hello) median seconds against one running node."""

    async def main() -> tuple[list[float], list[float]]:
        ours, base = [], []
        async with NodeSimulator(role="scale+sensors") as sim:
            config = config_from_plain({"nodes": {"ports": [sim.port]}})
            for _ in range(runs):
                start = time.perf_counter()
                report = await asyncio.to_thread(
                    run_selftest, CheckContext(config=config), only=["nodes", "scale"]
                )
                ours.append(time.perf_counter() - start)
                if report.exit_code != 0:
                    raise RuntimeError(f"node probe failed: {report.as_plain()}")
                start = time.perf_counter()
                link = SerialNodeLink(sim.port, hello_timeout_s=10.0)
                await link.start(wait_hello=True)
                weight = await read_weight(link, 6.0)
                await link.close()
                if not weight.stable:
                    raise RuntimeError(f"baseline weight not stable: {weight}")
                base.append(time.perf_counter() - start)
        return ours, base

    ours, base = asyncio.run(main())
    return statistics.median(ours), statistics.median(base)


def main() -> int:
    """Run both benchmarks and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one run each (CI)")
    args = parser.parse_args()
    runs = 1 if args.smoke else 5
    rows = []
    ours, base = bench_startup(runs)
    rows.append(("field kit start-up", ours, base, "edge-agent sim node alone"))
    ours, base = bench_probe(runs)
    rows.append(("node probe (nodes+scale)", ours, base, "hello + weight by hand"))
    print(f"{'measure':<26} {'ours s':>8} {'base s':>8} {'ratio':>6}  baseline")
    for name, o, b, what in rows:
        print(f"{name:<26} {o:8.3f} {b:8.3f} {o / b:6.2f}  {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
