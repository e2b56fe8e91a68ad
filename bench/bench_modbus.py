"""Benchmark: full read of a SunSpec battery over Modbus TCP, planned reads vs one read per point.

Baseline ("naive per-point"): a client that walks the model chain header by header and then
issues one Read Holding Registers request per point (repeating groups included), over the same
pymodbus link. Both decode the same registers; the bench checks they got identical values.

    python bench/bench_modbus.py            # 2 strings x 8 modules (16 modules) x 12 cells, 5 runs
    python bench/bench_modbus.py --smoke    # tiny battery, 1 run: CI checks that it works
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_agent.bms.modbus.link import ModbusLink
from edge_agent.bms.modbus.sunspec_decode import DecodedModel, decode_model
from edge_agent.bms.modbus.sunspec_models import known_models, load_model
from edge_agent.bms.modbus.sunspec_reader import scan
from edge_agent.bms.settings import ModbusSettings
from edge_agent.sim.modbus_sunspec import SunSpecBattery, sunspec_device


async def naive_read(link: ModbusLink, base: int) -> list[DecodedModel]:
    """One request per model header and one per point: what a straightforward client does."""
    assert await link.read(base, 2) == [0x5375, 0x6E53]
    cursor = base + 2
    models: list[DecodedModel] = []
    shipped = set(known_models())
    while True:
        model_id, length = await link.read(cursor, 2)
        if model_id == 0xFFFF:
            return models
        if model_id in shipped:
            definition = load_model(model_id)
            words = [model_id, length]
            for point in definition.group.points[2:]:
                words += await link.read(cursor + point.offset, point.size)
            group = definition.repeating
            if group is not None and group.length:
                start = cursor + definition.group.length
                for index in range((length - definition.fixed_length) // group.length):
                    for point in group.points:
                        address = start + index * group.length + point.offset
                        words += await link.read(address, point.size)
            models.append(decode_model(definition, words, address=cursor))
        cursor += 2 + length


async def one_run(url: str, base: int, naive: bool) -> tuple[float, int, list[DecodedModel]]:
    settings = ModbusSettings(url=url, timeout_s=2.0, retries=1)
    async with ModbusLink(settings) as link:
        started = time.perf_counter()
        if naive:
            models = await naive_read(link, base)
        else:
            models = list((await scan(link, timeout=60, bases=(base,))).models)
        elapsed = time.perf_counter() - started
        return elapsed, link.round_trips, models


async def bench(battery: SunSpecBattery, runs: int) -> dict[str, tuple[float, int]]:
    results: dict[str, tuple[float, int]] = {}
    async with sunspec_device(battery) as sim:
        port = await sim.start_tcp()
        url = f"tcp://127.0.0.1:{port}"
        reference: list[DecodedModel] | None = None
        for name, naive in (
            ("naive per-point (baseline)", True),
            ("edge-agent planned reads", False),
        ):
            times, trips = [], 0
            for _ in range(runs):
                elapsed, trips, models = await one_run(url, battery.base, naive)
                times.append(elapsed)
                values = [(m.id, dict(m.points), m.repeats) for m in models]
                if reference is None:
                    reference = models
                elif values != [(m.id, dict(m.points), m.repeats) for m in reference]:
                    raise SystemExit(f"{name}: decoded values differ from the baseline")
            results[name] = (statistics.median(times), trips)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny battery, one run (CI)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--strings", type=int, default=2)
    parser.add_argument("--modules-per-string", type=int, default=8)
    parser.add_argument("--cells", type=int, default=12)
    args = parser.parse_args()
    if args.smoke:
        battery = SunSpecBattery(strings=1, modules_per_string=2, cells_per_module=4)
        runs = 1
    else:
        battery = SunSpecBattery(
            strings=args.strings,
            modules_per_string=args.modules_per_string,
            cells_per_module=args.cells,
        )
        runs = args.runs
    results = asyncio.run(bench(battery, runs))
    modules = battery.strings * battery.modules_per_string
    print(
        f"SunSpec battery over Modbus TCP (loopback): {battery.strings} strings, "
        f"{modules} modules, {battery.cells_per_module} cells/module; median of {runs} run(s)"
    )
    print(f"{'client':<30} {'round trips':>12} {'wall ms':>10} {'x baseline':>11}")
    base_time, base_trips = results["naive per-point (baseline)"]
    for name, (elapsed, trips) in results.items():
        print(f"{name:<30} {trips:>12} {elapsed * 1000:>10.1f} {elapsed / base_time:>11.3f}")
    ours_time, ours_trips = results["edge-agent planned reads"]
    print(
        f"round trips: {base_trips / ours_trips:.1f}x fewer; "
        f"wall time: {base_time / ours_time:.1f}x faster"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
