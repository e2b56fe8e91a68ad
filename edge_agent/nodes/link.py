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
import random
import time
from collections.abc import Mapping
from typing import Any

import serial

from edge_agent.errors import NodeCommandError, NodeLinkError, NodeProtocolError, NodeTimeoutError
from edge_agent.nodes.hub import MessageHub
from edge_agent.nodes.messages import Ack, Hello, Nak
from edge_agent.nodes.protocol import MAX_LINE, NodeMessage, encode_command, parse_line

log = logging.getLogger("edge_agent.nodes.link")

SCALE_OPS = frozenset({"tare", "zero", "calibrate"})


def find_port(pattern: str) -> str | None:
    """The first existing device matching a path or glob; pyserial URLs are returned as is."""
    if "://" in pattern:
        return pattern
    matches = sorted(glob.glob(pattern))
    return matches[0] if matches else None


class SerialNodeLink:
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
        self.port_pattern = port
        self.baudrate = baudrate
        self.hello_timeout_s = hello_timeout_s
        self.node_config = dict(node_config or {})
        self.reopen_interval_s = reopen_interval_s
        self.hub = hub or MessageHub()
        self.hello: Hello | None = None
        self.node_id = ""
        self.boot = ""
        self.last_seen = 0.0
        self.connected = asyncio.Event()
        self.stats = {"lines": 0, "bad": 0, "unmarked": 0, "reconnects": 0, "config_sent": 0}
        self.last_error = ""
        self._serial: serial.Serial | None = None
        self._buf = bytearray()
        self._resync = True
        # random start: a restarted host must not reuse the id the node de-duplicates against
        self._next_id = random.randrange(1, 2**30)
        self._waiters: dict[int, asyncio.Future[Ack]] = {}
        self._hello_seen = asyncio.Event()
        self._boots_seen: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._lost = asyncio.Event()
        self._config_cmd_id = -1

    async def __aenter__(self) -> SerialNodeLink:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self, wait_hello: bool = True) -> None:
        """Start the connection supervisor; wait for the node's hello when asked."""
        self._task = asyncio.create_task(self._supervise(), name=f"node-link {self.port_pattern}")
        if wait_hello:
            try:
                await self.wait_hello(self.hello_timeout_s)
            except BaseException:
                await self.close()  # no supervisor left running behind a failed start
                raise

    async def wait_hello(self, timeout: float) -> Hello:
        """Wait until a hello has been received on the current connection."""
        try:
            await asyncio.wait_for(self._hello_seen.wait(), timeout)
        except TimeoutError:
            raise NodeTimeoutError(
                f"no hello from node on {self.port_pattern} within {timeout:.1f}s"
            ) from None
        assert self.hello is not None
        return self.hello

    async def close(self) -> None:
        """Stop the supervisor and close the port."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._drop_port()
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(NodeLinkError("link closed"))
        self._waiters.clear()

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
            self._drop_port()
            self.stats["reconnects"] += 1
            log.warning("node link on %s lost (%s); re-finding the port", port, self.last_error)
            await asyncio.sleep(self.reopen_interval_s)

    def _drop_port(self) -> None:
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

    def _handle_line(self, line: bytes) -> None:
        try:
            msg = parse_line(line)
        except NodeProtocolError as exc:
            self.stats["bad"] += 1
            self.last_error = str(exc)
            log.warning("node %s: rejected line: %s", self.node_id or self.port_pattern, exc)
            return
        if msg is None:
            self.stats["unmarked"] += 1
            log.info("node %s says: %s", self.node_id or "?", line.decode(errors="replace"))
            return
        self.stats["lines"] += 1
        self.last_seen = time.monotonic()
        self._dispatch(msg)

    def _dispatch(self, msg: NodeMessage) -> None:
        body = msg.body
        if isinstance(body, Hello):
            self._on_hello(msg, body)
        elif isinstance(body, Ack):
            fut = self._waiters.get(body.id)
            if fut is not None and not fut.done():
                fut.set_result(body)
            elif body.id == self._config_cmd_id and not body.ok:
                self.last_error = f"node refused node_config: {body.err}"
                log.error("node %s refused node_config: %s", self.node_id, body.err)
        elif isinstance(body, Nak):
            fut = self._waiters.get(body.id) if body.id is not None else None
            if fut is not None and not fut.done():
                fut.set_exception(NodeProtocolError(f"node rejected command: {body.err}"))
        self.hub.publish(msg)

    def _on_hello(self, msg: NodeMessage, hello: Hello) -> None:
        self.hello = hello
        self.node_id = msg.node_id
        new_boot = msg.envelope.boot not in self._boots_seen
        self.boot = msg.envelope.boot
        self._boots_seen.add(self.boot)
        self._hello_seen.set()
        if new_boot and self.node_config:
            # a fresh boot may have lost settings that never reached flash: send them again
            self.stats["config_sent"] += 1
            self._config_cmd_id = self._new_id()
            self._write(encode_command(self._config_cmd_id, "configure", self.node_config))

    # --- commands -----------------------------------------------------------------------
    def _new_id(self) -> int:
        self._next_id = self._next_id % (2**30) + 1
        return self._next_id

    def _write(self, line: bytes) -> None:
        ser = self._serial
        if ser is None:
            return
        try:
            ser.write(line)
        except (serial.SerialException, OSError) as exc:
            self._fail(f"write: {exc}")

    async def command(
        self,
        op: str,
        args: Mapping[str, Any] | None = None,
        *,
        timeout: float = 5.0,
        attempts: int = 3,
    ) -> Ack:
        """Send a command, retrying with the same id (the node de-duplicates); return its ack.

        Raises NodeTimeoutError, NodeProtocolError (nak) or NodeCommandError (ok=false).
        """
        cmd_id = self._new_id()
        args = dict(args or {})
        if op in SCALE_OPS:
            args.setdefault("timeout_ms", int(timeout * 1000 * 0.8))
        line = encode_command(cmd_id, op, args)
        fut: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._waiters[cmd_id] = fut
        deadline = time.monotonic() + timeout
        try:
            for attempt in range(attempts):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.connected.wait(), left)
                self._write(line)
                per_try = left if op in SCALE_OPS else left / (attempts - attempt)
                try:
                    ack = await asyncio.wait_for(asyncio.shield(fut), per_try)
                except TimeoutError:
                    continue
                if not ack.ok:
                    raise NodeCommandError(op, ack.err or "refused")
                return ack
            raise NodeTimeoutError(f"node did not acknowledge {op!r} within {timeout:.1f}s")
        finally:
            self._waiters.pop(cmd_id, None)
            if not fut.done():
                fut.cancel()
