"""Registry of node links: lookup by role, liveness from heartbeats, one shared message hub."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edge_agent.errors import NodeError
from edge_agent.nodes.hub import MessageHub
from edge_agent.nodes.link import SerialNodeLink, find_port
from edge_agent.nodes.link_base import NodeLinkBase


@dataclass(frozen=True, kw_only=True)
class NodeStatus:
    """What the agent knows about one node right now."""

    node_id: str
    port: str
    role: str
    fw: str
    boot: str
    reset_cause: str
    connected: bool
    lost: bool
    last_seen_s: float | None  # seconds ago


class NodeRegistry:
    """All node links of a station; every message goes to ``hub``."""

    def __init__(self, *, lost_after_s: float = 6.5) -> None:
        self.hub = MessageHub()
        self.links: list[NodeLinkBase] = []
        self.lost_after_s = lost_after_s  # three missed 2 s heartbeats

    @classmethod
    async def open(
        cls,
        ports: Sequence[str],
        *,
        baudrate: int = 115_200,
        hello_timeout_s: float = 3.0,
        node_config: Mapping[str, Any] | None = None,
    ) -> NodeRegistry:
        """Open a link per port (globs expand to every match) and wait for their hellos."""
        reg = cls()
        try:
            for pattern in ports:
                found = [pattern] if "://" in pattern or find_port(pattern) is None else None
                for port in found or sorted(_glob(pattern)):
                    link = SerialNodeLink(
                        port,
                        baudrate=baudrate,
                        hello_timeout_s=hello_timeout_s,
                        node_config=node_config,
                        hub=reg.hub,
                    )
                    reg.links.append(link)
                    await link.start()
        except BaseException:
            await reg.close()
            raise
        return reg

    def add(self, link: NodeLinkBase) -> None:
        """Register an already created link (its messages go to this registry's hub)."""
        link.hub = self.hub
        self.links.append(link)

    async def close(self) -> None:
        """Close every link."""
        for link in self.links:
            with contextlib.suppress(Exception):
                await link.close()

    async def __aenter__(self) -> NodeRegistry:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def is_lost(self, link: NodeLinkBase) -> bool:
        """True after ``lost_after_s`` without any line from the node."""
        return not link.last_seen or time.monotonic() - link.last_seen > self.lost_after_s

    def find(self, role: str) -> NodeLinkBase:
        """The first live link whose node has ``role`` (``scale`` or ``sensors``)."""
        for link in self.links:
            if link.hello is not None and role in link.hello.role and not self.is_lost(link):
                return link
        raise NodeError(f"no live node with role {role!r}")

    def status(self) -> list[NodeStatus]:
        """One status row per link."""
        now = time.monotonic()
        return [
            NodeStatus(
                node_id=link.node_id,
                port=link.port_pattern,
                role=link.hello.role if link.hello else "",
                fw=link.hello.fw if link.hello else "",
                boot=link.boot,
                reset_cause=link.hello.reset_cause if link.hello else "",
                connected=link.connected.is_set(),
                lost=self.is_lost(link),
                last_seen_s=round(now - link.last_seen, 3) if link.last_seen else None,
            )
            for link in self.links
        ]

    async def wait_all_hello(self, timeout: float) -> None:
        """Wait until every link has a hello."""
        await asyncio.gather(*(link.wait_hello(timeout) for link in self.links))


def _glob(pattern: str) -> list[str]:
    import glob

    return glob.glob(pattern)
