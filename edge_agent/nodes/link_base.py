"""Transport-independent part of a node link: line validation, hello/boot tracking, config
re-send on a new boot id, and commands with acknowledgement, retry and de-duplication."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Mapping
from typing import Any, Self

from edge_agent.errors import NodeCommandError, NodeLinkError, NodeProtocolError, NodeTimeoutError
from edge_agent.nodes.hub import MessageHub
from edge_agent.nodes.messages import Ack, Hello, Nak
from edge_agent.nodes.protocol import NodeMessage, encode_command, parse_line

log = logging.getLogger("edge_agent.nodes.link")

SCALE_OPS = frozenset({"tare", "zero", "calibrate"})


class NodeLinkBase:
    """One node behind some transport; subclasses implement ``_supervise``, ``_disconnect``
    and ``_write`` (use ``async with``)."""

    def __init__(
        self,
        address: str,
        *,
        hello_timeout_s: float = 3.0,
        node_config: Mapping[str, Any] | None = None,
        hub: MessageHub | None = None,
    ) -> None:
        self.port_pattern = address  # where the node is: port/glob, or an mqtt:// address
        self.hello_timeout_s = hello_timeout_s
        self.node_config = dict(node_config or {})
        self.hub = hub or MessageHub()
        self.hello: Hello | None = None
        self.node_id = ""
        self.boot = ""
        self.last_seen = 0.0
        self.connected = asyncio.Event()
        self.stats = {"lines": 0, "bad": 0, "unmarked": 0, "reconnects": 0, "config_sent": 0}
        self.last_error = ""
        # random start: a restarted host must not reuse the id the node de-duplicates against
        self._next_id = random.randrange(1, 2**30)
        self._waiters: dict[int, asyncio.Future[Ack]] = {}
        self._hello_seen = asyncio.Event()
        self._boots_seen: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._config_cmd_id = -1

    async def __aenter__(self) -> Self:
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
        """Stop the supervisor and close the transport."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._disconnect()
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(NodeLinkError("link closed"))
        self._waiters.clear()

    async def _supervise(self) -> None:
        raise NotImplementedError

    def _disconnect(self) -> None:
        raise NotImplementedError

    def _write(self, line: bytes) -> None:
        """Send one framed line (dropped while disconnected; commands retry)."""
        raise NotImplementedError

    # --- received lines -----------------------------------------------------------------
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
