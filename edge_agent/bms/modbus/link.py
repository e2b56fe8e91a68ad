"""The Modbus link: pymodbus async client over TCP or RTU, with pymodbus errors translated."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from edge_agent.bms.modbus.planner import MAX_READ, ReadBlock
from edge_agent.bms.settings import ModbusSettings
from edge_agent.errors import (
    ConfigError,
    ModbusConnectionError,
    ModbusError,
    ModbusTimeoutError,
)

log = logging.getLogger(__name__)

BUSY_CODES = {5, 6}  # acknowledge, device busy: the device asks us to come back
BUSY_PAUSE_S = 0.05
EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge",
    6: "device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}


@dataclass(frozen=True)
class Endpoint:
    """Where a Modbus device is: TCP host/port or a serial port (path or pyserial URL)."""

    kind: Literal["tcp", "rtu"]
    host: str = ""
    port: int = 502
    serial_port: str = ""
    baudrate: int = 19200
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8


def parse_url(url: str) -> Endpoint:
    """``tcp://HOST[:PORT]`` or ``rtu:///dev/ttyX?baud=19200&parity=E`` (also ``rtu://socket://..``)."""
    if url.startswith("tcp://"):
        parts = urlsplit(url)
        try:
            port = parts.port or 502
        except ValueError:
            raise ConfigError(f"bad TCP port in {url!r}", key_path="bms.modbus.url") from None
        if not parts.hostname:
            raise ConfigError(f"no host in {url!r}", key_path="bms.modbus.url")
        return Endpoint(kind="tcp", host=parts.hostname, port=port)
    if url.startswith("rtu://"):
        rest = url[len("rtu://") :]
        path, _, query = rest.partition("?")
        if "://" in path:  # a pyserial URL keeps its own query
            path, query = rest, ""
        if not path:
            raise ConfigError(f"no serial port in {url!r}", key_path="bms.modbus.url")
        options = {k: v[-1] for k, v in parse_qs(query).items()}
        try:
            baud = int(options.pop("baud", "19200"))
            parity = options.pop("parity", "N").upper()
            stopbits = int(options.pop("stopbits", "1"))
            bytesize = int(options.pop("bytesize", "8"))
        except ValueError as exc:
            raise ConfigError(
                f"bad serial option in {url!r}: {exc}", key_path="bms.modbus.url"
            ) from None
        if options:
            raise ConfigError(
                f"unknown serial option {sorted(options)[0]!r} in {url!r}",
                key_path="bms.modbus.url",
            )
        if parity not in {"N", "E", "O"} or stopbits not in {1, 2} or bytesize not in {7, 8}:
            raise ConfigError(f"unsupported serial framing in {url!r}", key_path="bms.modbus.url")
        return Endpoint(
            kind="rtu",
            serial_port=path,
            baudrate=baud,
            parity=parity,
            stopbits=stopbits,
            bytesize=bytesize,
        )
    raise ConfigError(
        f"Modbus URL must start with tcp:// or rtu://, got {url!r}", key_path="bms.modbus.url"
    )


class ModbusLink:
    """One connection to one Modbus device; counts round trips for benchmarks and tests."""

    def __init__(
        self, settings: ModbusSettings, *, function: Literal["holding", "input"] = "holding"
    ) -> None:
        self.settings = settings
        self.endpoint = parse_url(settings.url)
        self.function = function
        self.round_trips = 0
        self.registers_read = 0
        self._last_io = 0.0
        self._client: Any = None

    async def connect(self) -> None:
        """Open the TCP connection or serial port; ModbusConnectionError when impossible."""
        s, ep = self.settings, self.endpoint
        # reconnect_delay=0: no background reconnect task; the caller decides about retrying.
        if ep.kind == "tcp":
            self._client = AsyncModbusTcpClient(
                ep.host, port=ep.port, timeout=s.timeout_s, retries=s.retries, reconnect_delay=0
            )
        else:
            self._client = AsyncModbusSerialClient(
                ep.serial_port,
                baudrate=ep.baudrate,
                parity=ep.parity,
                stopbits=ep.stopbits,
                bytesize=ep.bytesize,
                timeout=s.timeout_s,
                retries=s.retries,
                reconnect_delay=0,
            )
        try:
            connected = await self._client.connect()
        except (OSError, ModbusException) as exc:
            connected = False
            log.debug("connect failed: %s", exc)
        if not connected:
            self._client.close()
            self._client = None
            raise ModbusConnectionError(f"cannot connect to Modbus device at {self.settings.url}")

    async def read(self, address: int, count: int) -> list[int]:
        """Read ``count`` registers at ``address``; typed ModbusError on any failure.

        "Device busy" and "acknowledge" answers are retried (``retries`` times, growing pause);
        timeouts and corrupt frames are retried by pymodbus itself.
        """
        if not 1 <= count <= MAX_READ or not 0 <= address <= 0xFFFF - count + 1:
            raise ModbusError(f"invalid read {count}@{address}", address=address)
        for attempt in range(self.settings.retries + 1):
            try:
                return await self._read_once(address, count)
            except ModbusError as exc:
                if exc.exception_code not in BUSY_CODES or attempt == self.settings.retries:
                    raise
                log.debug("device busy at %d, retry %d", address, attempt + 1)
                await asyncio.sleep(BUSY_PAUSE_S * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _read_once(self, address: int, count: int) -> list[int]:
        if self._client is None:
            raise ModbusConnectionError("Modbus link is not connected", address=address)
        delay = self.settings.inter_frame_delay_s
        if delay:
            wait = self._last_io + delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        reader = (
            self._client.read_holding_registers
            if self.function == "holding"
            else self._client.read_input_registers
        )
        self.round_trips += 1
        try:
            response = await reader(address, count=count, device_id=self.settings.device_id)
        except ConnectionException as exc:
            raise ModbusConnectionError(
                f"connection lost reading {count}@{address}: {exc}", address=address
            ) from None
        except ModbusIOException as exc:
            raise ModbusTimeoutError(
                f"no valid answer reading {count}@{address} "
                f"after {self.settings.retries + 1} tries",
                address=address,
            ) from exc
        except ModbusException as exc:
            raise ModbusError(
                f"Modbus failure reading {count}@{address}: {exc}", address=address
            ) from None
        finally:
            self._last_io = time.monotonic()
        if response.isError():
            code = int(getattr(response, "exception_code", 0) or 0)
            name = EXCEPTION_NAMES.get(code, "unknown exception")
            raise ModbusError(
                f"device answered exception {code} ({name}) reading {count}@{address}",
                address=address,
                exception_code=code,
            )
        registers = list(response.registers)
        if len(registers) != count:
            raise ModbusError(
                f"asked {count} registers at {address}, got {len(registers)}", address=address
            )
        self.registers_read += count
        return registers

    async def read_before(self, address: int, count: int, deadline: float) -> list[int]:
        """``read`` that gives up at loop time ``deadline`` with ModbusTimeoutError."""
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise ModbusTimeoutError("read time budget exhausted", address=address)
        try:
            return await asyncio.wait_for(self.read(address, count), remaining)
        except ModbusTimeoutError:
            raise  # the device's own timeout (also a TimeoutError): keep its message
        except TimeoutError:
            raise ModbusTimeoutError(
                f"read of {count}@{address} exceeded the time budget", address=address
            ) from None

    async def read_blocks(self, blocks: Iterable[ReadBlock]) -> dict[int, int]:
        """Read every block and return address -> register value."""
        image: dict[int, int] = {}
        for block in blocks:
            words = await self.read(block.address, block.count)
            image.update(zip(range(block.address, block.end), words, strict=True))
        return image

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def __aenter__(self) -> ModbusLink:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
