"""An independent SunSpec implementation (pysunspec2) reads the project's simulator the same way."""

from __future__ import annotations

from typing import Any

import pytest

from edge_agent.bms.modbus.link import ModbusLink
from edge_agent.bms.modbus.sunspec_reader import scan
from edge_agent.sim.modbus_sunspec import SunSpecBattery
from tests.conftest import require_real_part
from tests.support.bms_modbus import run, settings, sunspec_served

try:
    from sunspec2.modbus.client import SunSpecModbusClientDeviceTCP
except ImportError:  # pragma: no cover - dev dependency
    SunSpecModbusClientDeviceTCP = None


def _pysunspec2_scan(port: int) -> dict[int, list[Any]]:
    device = SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr="127.0.0.1", ipport=port, timeout=5)
    try:
        device.scan()
        return {mid: list(models) for mid, models in device.models.items() if isinstance(mid, int)}
    finally:
        device.close()


def test_pysunspec2_decodes_the_same_values() -> None:
    require_real_part(SunSpecModbusClientDeviceTCP is not None, "pysunspec2")
    battery = SunSpecBattery(strings=2, modules_per_string=2, cells_per_module=5)

    async def go() -> tuple[dict[int, list[Any]], Any]:
        import asyncio

        async with sunspec_served(battery) as (sim, url):
            theirs = await asyncio.to_thread(_pysunspec2_scan, sim.port)
            async with ModbusLink(settings(url)) as link:
                ours = await scan(link, timeout=10)
        return theirs, ours

    theirs, ours = run(go())
    assert sorted(theirs) == [1, 802, 803, 804, 805]
    assert [len(theirs[m]) for m in (1, 802, 803, 804, 805)] == [1, 1, 1, 2, 4]
    compared = 0
    by_id: dict[int, list[Any]] = {}
    for model in ours.models:
        by_id.setdefault(model.id, []).append(model)
    for model_id, models in by_id.items():
        for mine, other in zip(models, theirs[model_id], strict=True):
            for name, point in mine.points.items():
                their_point = other.points[name]
                assert their_point.value == point.raw, (model_id, name)
                expected = their_point.cvalue
                if isinstance(expected, float):
                    assert point.value == pytest.approx(expected), (model_id, name)
                else:
                    assert point.value == expected, (model_id, name)
                compared += 1
            group_name = next(iter(other.groups), None)
            their_repeats = other.groups[group_name] if group_name else []
            if not isinstance(their_repeats, list):
                their_repeats = [their_repeats]
            assert len(their_repeats) == len(mine.repeats), model_id
            for my_group, their_group in zip(mine.repeats, their_repeats, strict=True):
                for name, point in my_group.items():
                    assert their_group.points[name].value == point.raw, (model_id, name)
                    assert point.value == pytest.approx(their_group.points[name].cvalue), (
                        model_id,
                        name,
                    )
                    compared += 1
    assert compared > 200
