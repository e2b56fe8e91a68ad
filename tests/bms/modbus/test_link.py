"""The Modbus link: URL parsing, settings, RTU over a pyserial URL, and the chain walk on
arbitrary register images (fuzzed against an in-memory register space: pure walk logic)."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.bms.modbus.link import Endpoint, ModbusLink, parse_url
from edge_agent.bms.modbus.sunspec_reader import scan
from edge_agent.errors import ConfigError, ModbusError, SunSpecError
from edge_agent.sim.modbus_server import Fault
from edge_agent.sim.modbus_sunspec import SunSpecBattery, sunspec_device
from tests.support.bms_modbus import run, sunspec_served
from tests.support.bms_modbus import settings as mb_settings


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("tcp://10.0.0.5", Endpoint(kind="tcp", host="10.0.0.5", port=502)),
        ("tcp://bms.local:1502", Endpoint(kind="tcp", host="bms.local", port=1502)),
        ("rtu:///dev/ttyUSB0", Endpoint(kind="rtu", serial_port="/dev/ttyUSB0")),
        (
            "rtu:///dev/ttyS1?baud=9600&parity=e&stopbits=2&bytesize=8",
            Endpoint(kind="rtu", serial_port="/dev/ttyS1", baudrate=9600, parity="E", stopbits=2),
        ),
        (
            "rtu://socket://10.0.0.9:4001",
            Endpoint(kind="rtu", serial_port="socket://10.0.0.9:4001"),
        ),
    ],
)
def test_parse_url(url: str, expected: Endpoint) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://x",
        "tcp://",
        "tcp://h:notaport",
        "rtu://",
        "rtu:///dev/x?baud=fast",
        "rtu:///dev/x?parity=Q",
        "rtu:///dev/x?flow=1",
    ],
)
def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_url(url)
    assert info.value.key_path == "bms.modbus.url"


def test_rtu_through_a_pyserial_url() -> None:
    async def go() -> list[int]:
        async with sunspec_device(
            SunSpecBattery(strings=1, modules_per_string=1, cells_per_module=1)
        ) as sim:
            port = await sim.start_tcp(rtu_framing=True)
            async with ModbusLink(mb_settings(f"rtu://socket://127.0.0.1:{port}")) as link:
                return await link.read(40000, 4)

    assert run(go()) == [0x5375, 0x6E53, 1, 66]


def test_inter_frame_delay_spaces_requests() -> None:
    async def go() -> float:
        async with sunspec_served(
            SunSpecBattery(strings=1, modules_per_string=1, cells_per_module=1)
        ) as (_s, url):
            async with ModbusLink(mb_settings(url, inter_frame_delay_s=0.05)) as link:
                started = time.monotonic()
                for _ in range(4):
                    await link.read(40000, 2)
                return time.monotonic() - started

    assert run(go()) >= 0.15


def test_input_registers_are_a_different_function() -> None:
    async def go() -> list[int]:
        async with sunspec_served(
            SunSpecBattery(strings=1, modules_per_string=1, cells_per_module=1)
        ) as (_s, url):
            async with ModbusLink(mb_settings(url), function="input") as link:
                return await link.read(40000, 2)

    # the simulated device shares one register space for both functions
    assert run(go()) == [0x5375, 0x6E53]


def test_exception_codes_are_kept() -> None:
    async def go() -> None:
        async with sunspec_served(faults=[Fault("busy")]) as (_s, url):
            async with ModbusLink(mb_settings(url, retries=0)) as link:
                await link.read(40000, 2)

    with pytest.raises(ModbusError) as info:
        run(go())
    assert info.value.exception_code == 6 and info.value.address == 40000


class MemoryLink:
    """Pure in-memory register space with the ModbusLink read interface (walk logic only)."""

    def __init__(self, image: dict[int, int]) -> None:
        self.image = image
        self.round_trips = 0

    async def read_before(self, address: int, count: int, deadline: float) -> list[int]:
        self.round_trips += 1
        if self.round_trips > 5000:
            raise AssertionError("walk does not terminate")
        if any(a not in self.image for a in range(address, address + count)):
            raise ModbusError("illegal", address=address, exception_code=2)
        return [self.image[a] for a in range(address, address + count)]


@settings(max_examples=300, deadline=None)
@given(
    body=st.lists(
        st.one_of(
            st.sampled_from([1, 802, 803, 804, 805, 0xFFFF, 0x5375, 0x6E53, 0, 66, 62]),
            st.integers(0, 0xFFFF),
        ),
        max_size=600,
    ),
    base=st.sampled_from([0, 40000, 65000]),
)
def test_chain_walk_terminates_on_arbitrary_maps(body: list[int], base: int) -> None:
    words = [0x5375, 0x6E53, *body][: 0x10000 - base]
    link = MemoryLink(dict(zip(range(base, base + len(words)), words, strict=True)))

    async def go() -> None:
        try:
            result = await scan(link, timeout=10, bases=(base,))  # type: ignore[arg-type]
        except SunSpecError:
            return
        assert result.base == base
        assert not (result.complete and result.problems)
        addresses = [h.address for h in result.headers]
        assert addresses == sorted(set(addresses))  # strictly forward: no loops

    asyncio.run(go())
