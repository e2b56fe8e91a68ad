"""Fan-out of node messages to any number of asyncio subscribers (bounded, drop-oldest)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

from edge_agent.nodes.protocol import NodeMessage


class MessageHub:
    """Delivers every message to each subscriber's bounded queue; a slow reader loses the
    oldest messages, never blocks the link."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[NodeMessage]] = set()
        self.latest: dict[tuple[str, str], NodeMessage] = {}  # (node_id, type) -> message
        self.latest_at: dict[tuple[str, str], float] = {}  # monotonic receive time

    def publish(self, msg: NodeMessage) -> None:
        """Record ``msg`` as the latest of its kind and queue it for every subscriber."""
        self.latest[(msg.node_id, msg.type)] = msg
        self.latest_at[(msg.node_id, msg.type)] = time.monotonic()
        for q in self._queues:
            if q.full():
                q.get_nowait()
            q.put_nowait(msg)

    @contextlib.contextmanager
    def subscribe(self, maxsize: int = 256) -> Iterator[asyncio.Queue[NodeMessage]]:
        """A queue receiving every message published while the context is open."""
        q: asyncio.Queue[NodeMessage] = asyncio.Queue(maxsize)
        self._queues.add(q)
        try:
            yield q
        finally:
            self._queues.discard(q)
