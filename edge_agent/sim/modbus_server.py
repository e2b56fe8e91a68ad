"""A pymodbus device on loopback TCP or on an RTU pty pair, with injectable faults.

The register image is served by the real pymodbus server (``SimDevice``); faults are injected
with its ``action`` hook (exception responses) and ``trace_packet`` hook (no answer, corrupt
frames), so the client under test sees exactly what a misbehaving device would send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import termios
import tty
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from edge_agent.errors import SimulatorError

log = logging.getLogger(__name__)

FaultKind = Literal["illegal_address", "busy", "device_failure", "no_answer", "crc", "disconnect"]
EXCEPTIONS = {
    "illegal_address": ExcCodes.ILLEGAL_ADDRESS,
    "busy": ExcCodes.DEVICE_BUSY,
    "device_failure": ExcCodes.DEVICE_FAILURE,
}


@dataclass
class Fault:
    """Misbehave on reads covering ``address`` (any read when None), ``times`` times (-1 = always),
    after letting ``after`` matching reads through."""

    kind: FaultKind
    address: int | None = None
    times: int = -1
    after: int = 0

    def matches(self, address: int, count: int) -> bool:
        """True when this fault applies to a read of ``count`` registers at ``address``."""
        if self.times == 0:
            return False
        return self.address is None or address <= self.address < address + count


class _PtyRelay:
    """Two pty pairs joined back to back: the server opens one slave, the client the other."""

    def __init__(self) -> None:
        self.server_master, self.server_slave = os.openpty()
        self.client_master, self.client_slave = os.openpty()
        for fd in (self.server_slave, self.client_slave):
            tty.setraw(fd, termios.TCSANOW)
        self.server_path = os.ttyname(self.server_slave)
        self.client_path = os.ttyname(self.client_slave)
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.server_master, self._pump, self.server_master, self.client_master)
        self.loop.add_reader(self.client_master, self._pump, self.client_master, self.server_master)

    @staticmethod
    def _pump(src: int, dst: int) -> None:
        with contextlib.suppress(OSError):
            data = os.read(src, 4096)
            if data:
                os.write(dst, data)

    def close(self) -> None:
        for fd in (self.server_master, self.client_master):
            self.loop.remove_reader(fd)
        for fd in (self.server_master, self.client_master, self.server_slave, self.client_slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class ModbusDeviceSim:
    """Serve ``blocks`` (start address -> registers) as ``device_id``; start and stop in-process."""

    def __init__(
        self,
        blocks: Mapping[int, Sequence[int]],
        *,
        device_id: int = 1,
        faults: Iterable[Fault] = (),
    ) -> None:
        if not blocks:
            raise SimulatorError("a simulated Modbus device needs at least one register block")
        self.blocks = {addr: list(words) for addr, words in blocks.items()}
        self.device_id = device_id
        self.faults = list(faults)
        self.requests = 0
        self._pending: str | None = None
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._relay: _PtyRelay | None = None
        self.port = 0
        self.pty_path = ""
        self._rtu_over_tcp = False

    def _device(self) -> SimDevice:
        data = [
            SimData(address, values=words, datatype=DataType.REGISTERS)
            for address, words in sorted(self.blocks.items())
        ]
        return SimDevice(self.device_id, data, action=self._action)

    async def _action(  # noqa: PLR0917 - signature fixed by pymodbus SimAction
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        self.requests += 1
        for fault in self.faults:
            if not fault.matches(address, count):
                continue
            if fault.after > 0:
                fault.after -= 1
                continue
            if fault.times > 0:
                fault.times -= 1
            log.debug("sim fault %s on %d@%d", fault.kind, count, address)
            if fault.kind in EXCEPTIONS:
                return EXCEPTIONS[fault.kind]
            self._pending = fault.kind
            if fault.kind == "disconnect":
                asyncio.get_running_loop().call_soon(self._vanish)
            return None
        return None

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending or self._pending is None:
            return data
        kind, self._pending = self._pending, None
        if kind == "crc" and len(data) > 2:
            if self._relay is not None or self._rtu_over_tcp:  # RTU: break the CRC
                return data[:-2] + bytes([data[-2] ^ 0xFF, data[-1] ^ 0x55])
            return data[: len(data) // 2]  # TCP has no CRC: a cut frame is the nearest fault
        return b""  # no_answer / disconnect: stay silent

    def _vanish(self) -> None:
        """The device disappears: stop serving and cut the line."""
        if self._server is not None:
            self._server.close()
        if self._relay is not None:
            self._relay.close()
            self._relay = None

    async def start_tcp(
        self, host: str = "127.0.0.1", port: int = 0, *, rtu_framing: bool = False
    ) -> int:
        """Listen on ``host:port`` (0 = a free port) and return the port.

        ``rtu_framing`` serves RTU frames over TCP, as serial-to-Ethernet converters do.
        """
        self._rtu_over_tcp = rtu_framing
        self._server = ModbusTcpServer(
            self._device(),
            address=(host, port),
            framer=FramerType.RTU if rtu_framing else FramerType.SOCKET,
            trace_packet=self._trace_packet,
        )
        try:
            await self._server.serve_forever(background=True)
        except (OSError, RuntimeError) as exc:
            raise SimulatorError(f"cannot listen on {host}:{port}: {exc}") from None
        sockets = getattr(self._server.transport, "sockets", None) or ()
        self.port = sockets[0].getsockname()[1] if sockets else port
        return self.port

    async def start_rtu_pty(self, baudrate: int = 19200) -> str:
        """Serve RTU on one end of a pty pair and return the other end's path for the client."""
        self._relay = _PtyRelay()
        self._server = ModbusSerialServer(
            self._device(),
            port=self._relay.server_path,
            baudrate=baudrate,
            trace_packet=self._trace_packet,
            reconnect_delay=0,
        )
        try:
            await self._server.serve_forever(background=True)
        except (OSError, RuntimeError) as exc:
            self._relay.close()
            raise SimulatorError(f"cannot open pty for RTU: {exc}") from None
        self.pty_path = self._relay.client_path
        return self.pty_path

    async def stop(self) -> None:
        """Stop serving and release the port or ptys (idempotent)."""
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
        if self._relay is not None:
            self._relay.close()
            self._relay = None

    async def __aenter__(self) -> ModbusDeviceSim:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
