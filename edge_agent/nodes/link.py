"""Serial link to one node (pyserial), surviving unplug and replug.

On open it discards bytes up to the first newline (stale partial output), asks for hello, and on
every new boot id re-sends the configured node settings. On a read/write error it closes the port,
re-finds it (path, glob or by-id symlink) and starts over.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import os
from collections.abc import Mapping
from typing import Any

import serial

from edge_agent.nodes.hub import MessageHub
from edge_agent.nodes.link_base import SCALE_OPS, NodeLinkBase
from edge_agent.nodes.protocol import MAX_LINE, encode_command

log = logging.getLogger("edge_agent.nodes.link")

__all__ = ["SCALE_OPS", "SerialNodeLink", "find_port"]


def find_port(pattern: str) -> str | None:
    """The first existing device matching a path or glob; pyserial URLs are returned as is."""
    if "://" in pattern:
        return pattern
    matches = sorted(glob.glob(pattern))
    return matches[0] if matches else None


class SerialNodeLink(NodeLinkBase):
    """Asyncio link to one node over a serial port (use ``async with``)."""

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 115_200,
        hello_timeout_s: float = 3.0,
        node_config: Mapping[str, Any] | None = None,
        reopen_interval_s: float = 0.1,
        hub: MessageHub | None = None,
    ) -> None:
        super().__init__(port, hello_timeout_s=hello_timeout_s, node_config=node_config, hub=hub)
        self.baudrate = baudrate
        self.reopen_interval_s = reopen_interval_s
        self._serial: serial.Serial | None = None
        self._buf = bytearray()
        self._resync = True
        self._lost = asyncio.Event()

    # --- connection ---------------------------------------------------------------------
    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            port = find_port(self.port_pattern)
            if port is None:
                await asyncio.sleep(self.reopen_interval_s)
                continue
            try:
                ser = serial.serial_for_url(
                    port, do_not_open=True, baudrate=self.baudrate, timeout=0, write_timeout=2.0
                )
                ser.dtr = True  # set before open: some boards reset on DTR/RTS edges
                ser.rts = False
                ser.open()
            except (serial.SerialException, OSError, ValueError) as exc:
                self.last_error = f"open {port}: {exc}"
                await asyncio.sleep(self.reopen_interval_s)
                continue
            self._serial = ser
            self._buf.clear()
            self._resync = True
            self._hello_seen.clear()
            self._lost.clear()
            loop.add_reader(ser.fileno(), self._on_readable)
            self.connected.set()
            log.info("node link open on %s", port)
            self._write(encode_command(self._new_id(), "hello"))
            await self._lost.wait()
            self._disconnect()
            self.stats["reconnects"] += 1
            log.warning("node link on %s lost (%s); re-finding the port", port, self.last_error)
            await asyncio.sleep(self.reopen_interval_s)

    def _disconnect(self) -> None:
        ser = self._serial
        self._serial = None
        self.connected.clear()
        if ser is None:
            return
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(ser.fileno())
        with contextlib.suppress(Exception):
            ser.close()

    def _fail(self, why: str) -> None:
        self.last_error = why
        self._lost.set()
        ser = self._serial
        if ser is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(ser.fileno())

    def _on_readable(self) -> None:
        ser = self._serial
        if ser is None:
            return
        try:
            data = os.read(ser.fileno(), 4096)
        except OSError as exc:  # EIO when the other side of a pty/USB device went away
            self._fail(f"read: {exc}")
            return
        if not data:
            self._fail("read: end of stream")
            return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) > MAX_LINE:  # no newline in sight: drop and resync at the next one
                    self.stats["bad"] += 1
                    buf.clear()
                    self._resync = True
                return
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            if self._resync:
                self._resync = False
                if not line.startswith(b"@"):
                    continue  # stale partial line from before we opened the port
            self._handle_line(line)

    def _write(self, line: bytes) -> None:
        ser = self._serial
        if ser is None:
            return
        try:
            ser.write(line)
        except (serial.SerialException, OSError) as exc:
            self._fail(f"write: {exc}")
