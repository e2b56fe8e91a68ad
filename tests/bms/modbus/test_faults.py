"""Fault handling: exception responses, timeouts, CRC errors, a vanishing device, broken chains.

Every case ends in a typed error or a partial reading with the reason, within a bounded time.
"""

from __future__ import annotations

import time

import pytest

from edge_agent.bms.modbus.link import ModbusLink
from edge_agent.bms.modbus.sunspec_reader import scan
from edge_agent.bms.modbus.sunspec_source import SunSpecSource
from edge_agent.errors import ModbusConnectionError, ModbusError, ModbusTimeoutError, SunSpecError
from edge_agent.sim.modbus_server import Fault
from edge_agent.sim.modbus_sunspec import SunSpecBattery, sunspec_device, sunspec_registers
from tests.conftest import require_real_part
from tests.support.bms_modbus import pty_available, run, served, settings, sunspec_served

SMALL = SunSpecBattery(strings=1, modules_per_string=4, cells_per_module=6)


def _third_module_address(battery: SunSpecBattery) -> int:
    """Register address of the third 805 model in the simulated chain."""
    words = sunspec_registers(battery)
    cursor, seen = 2, 0
    while words[cursor] != 0xFFFF:
        if words[cursor] == 805:
            seen += 1
            if seen == 3:
                return battery.base + cursor
        cursor += 2 + words[cursor + 1]
    raise AssertionError("no third module")


def _read(
    battery: SunSpecBattery, faults: list[Fault], transport: str = "tcp", timeout: float = 5.0, **kw
):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with sunspec_served(battery, transport, faults) as (sim, url):  # type: ignore[arg-type]
            reading = await SunSpecSource(settings(url, **kw)).read(timeout)
            return reading, sim.requests

    return run(go())


def test_illegal_address_mid_chain_gives_partial_reading() -> None:
    address = _third_module_address(SMALL)
    reading, _ = _read(SMALL, [Fault("illegal_address", address=address)])
    assert reading.status == "partial"
    assert any("exception 2 (illegal data address)" in p for p in reading.problems)
    device = reading.identity.device
    assert device is not None and device.serial is not None
    assert device.serial.value == "ESB2026000042"
    assert reading.state.soc is not None and reading.state.soc.value == 87.5
    assert len(reading.state.cell_voltages) == 2 * 6  # the two modules before the fault


def test_device_busy_is_retried() -> None:
    reading, requests = _read(SMALL, [Fault("busy", times=2)], retries=2)
    assert reading.status == "ok"
    assert requests >= 3


def test_device_busy_for_ever_fails_with_reason() -> None:
    reading, _ = _read(SMALL, [Fault("busy")], retries=1)
    assert reading.status == "failed"
    assert any("device busy" in p for p in reading.problems)


def test_device_failure_exception_mid_chain() -> None:
    reading, _ = _read(SMALL, [Fault("device_failure", after=2)])
    assert reading.status == "partial"
    assert any("exception 4 (device failure)" in p for p in reading.problems)


@pytest.mark.parametrize("transport", ["tcp", "rtu"])
def test_one_lost_answer_is_recovered_by_retry(transport: str) -> None:
    if transport == "rtu":
        require_real_part(pty_available(), "pty pairs")
    reading, _ = _read(
        SMALL, [Fault("no_answer", times=1, after=1)], transport, timeout_s=0.5, retries=2
    )
    assert reading.status == "ok", reading.problems
    assert len(reading.state.cell_voltages) == 24


@pytest.mark.parametrize("transport", ["tcp", "rtu"])
def test_silent_device_fails_in_bounded_time(transport: str) -> None:
    if transport == "rtu":
        require_real_part(pty_available(), "pty pairs")
    started = time.monotonic()
    reading, _ = _read(SMALL, [Fault("no_answer")], transport, timeout_s=0.2, retries=1)
    assert time.monotonic() - started < 5
    assert reading.status == "failed"
    assert any("did not answer" in p or "no valid answer" in p for p in reading.problems)


def test_crc_error_once_is_retried_over_rtu() -> None:
    require_real_part(pty_available(), "pty pairs")
    reading, _ = _read(SMALL, [Fault("crc", times=1, after=2)], "rtu", timeout_s=0.5, retries=2)
    assert reading.status == "ok", reading.problems


def test_persistent_crc_errors_end_in_partial_reading_over_rtu() -> None:
    require_real_part(pty_available(), "pty pairs")
    reading, _ = _read(SMALL, [Fault("crc", after=3)], "rtu", timeout_s=0.5, retries=1)
    assert reading.status == "partial"
    assert any("no valid answer" in p for p in reading.problems)
    assert reading.identity.device is not None and reading.identity.device.manufacturer is not None


def test_cut_tcp_frame_is_retried() -> None:
    reading, _ = _read(SMALL, [Fault("crc", times=1, after=1)], "tcp", timeout_s=0.5, retries=2)
    assert reading.status == "ok", reading.problems


@pytest.mark.parametrize("transport", ["tcp", "rtu"])
def test_device_disappearing_mid_read_gives_partial_reading(transport: str) -> None:
    if transport == "rtu":
        require_real_part(pty_available(), "pty pairs")
    started = time.monotonic()
    reading, _ = _read(SMALL, [Fault("disconnect", after=2)], transport, timeout_s=0.5, retries=1)
    assert time.monotonic() - started < 5
    assert reading.status == "partial"
    assert any("chain walk stopped" in p for p in reading.problems)


def test_truncated_chain_is_partial_with_reason() -> None:
    battery = SunSpecBattery(strings=1, modules_per_string=2, cells_per_module=4, chain="truncated")
    reading, _ = _read(battery, [])
    assert reading.status == "partial"
    assert any("chain walk stopped" in p and "illegal data address" in p for p in reading.problems)
    assert len(reading.state.cell_voltages) == 4  # first module complete, second cut


def test_looping_chain_is_detected() -> None:
    battery = SunSpecBattery(strings=1, modules_per_string=1, cells_per_module=2, chain="loop")
    reading, _ = _read(battery, [])
    assert reading.status == "partial"
    assert any("loops back to a SunS marker" in p for p in reading.problems)


def test_endless_chain_hits_the_model_limit() -> None:
    # a chain of many tiny unknown models with no end: the walk gives up instead of hanging
    words = [0x5375, 0x6E53]
    for _ in range(300):
        words += [64000, 0]

    async def go() -> list[str]:
        async with served(_raw_device(words)) as url, ModbusLink(settings(url)) as link:
            result = await scan(link, timeout=5, max_models=100)
        return list(result.problems)

    problems = run(go())
    assert any("more than 100 models" in p for p in problems)


def test_model_running_past_the_register_space() -> None:
    words = [0x5375, 0x6E53, 64000, 0xFFF0]

    async def go() -> list[str]:
        async with served(_raw_device(words, base=50000)) as url, ModbusLink(settings(url)) as link:
            result = await scan(link, timeout=5)
        return list(result.problems)

    assert any("runs past 65535" in p for p in run(go()))


def test_no_marker_anywhere_is_a_sunspec_error() -> None:
    async def go() -> None:
        async with (
            served(_raw_device([1, 2, 3, 4], base=40000)) as url,
            ModbusLink(settings(url)) as link,
        ):
            await scan(link, timeout=5)

    with pytest.raises(SunSpecError, match="no SunS marker"):
        run(go())


def test_unknown_device_id_is_reported() -> None:
    reading, _ = _read(SMALL, [], device_id=7)
    assert reading.status == "failed"
    # the pymodbus simulator answers an unknown id with "device failure"
    assert any("exception 4 (device failure)" in p for p in reading.problems)


def test_nothing_listening_is_a_connection_error() -> None:
    async def go() -> None:
        link = ModbusLink(settings("tcp://127.0.0.1:1", timeout_s=0.2))
        await link.connect()

    with pytest.raises(ModbusConnectionError):
        run(go())
    reading = run(SunSpecSource(settings("tcp://127.0.0.1:1", timeout_s=0.2)).read(3))
    assert reading.status == "failed" and "cannot connect" in reading.problems[0]


def test_overall_timeout_budget_is_kept() -> None:
    started = time.monotonic()
    reading, _ = _read(SMALL, [Fault("no_answer", after=3)], timeout=1.0, timeout_s=0.5, retries=10)
    assert time.monotonic() - started < 3
    assert reading.status == "partial"
    assert any("time budget" in p for p in reading.problems)


def test_link_errors_are_typed() -> None:
    async def go() -> None:
        async with sunspec_served(SMALL, "tcp", [Fault("no_answer")]) as (_sim, url):
            async with ModbusLink(settings(url, timeout_s=0.1, retries=0)) as link:
                with pytest.raises(ModbusTimeoutError):
                    await link.read(40000, 2)
                with pytest.raises(ModbusError, match="invalid read"):
                    await link.read(40000, 126)

    run(go())


def _raw_device(words: list[int], base: int = 40000):  # type: ignore[no-untyped-def]
    from edge_agent.sim.modbus_server import ModbusDeviceSim

    return ModbusDeviceSim({base: words})


_ = sunspec_device
