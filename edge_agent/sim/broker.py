"""Embedded MQTT broker (amqtt, MQTT 3.1.1) for the demo when no broker is configured.

It runs its own asyncio loop in a daemon thread so the agent's loop and paho's network thread
treat it like any external broker. Clients must fall back to MQTT 3.1.1 (amqtt has no MQTT 5).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import warnings
from concurrent.futures import Future
from typing import Any

from edge_agent.errors import SimulatorError

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedBroker:
    """An amqtt broker on ``host:port`` (port 0 picks a free one), started and stopped from sync code."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None

    def start(self, timeout: float = 10.0) -> None:
        """Start the broker thread and wait until it accepts connections."""
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)
        ready: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="edge-agent-embedded-broker", daemon=True
        )
        self._thread.start()
        try:
            ready.result(timeout)
        except Exception as exc:
            raise SimulatorError(
                f"embedded MQTT broker failed to start on {self.host}:{self.port}: {exc}"
            ) from exc
        log.info("embedded MQTT broker on %s:%d", self.host, self.port)

    def _run(self, ready: Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start_broker())
        except Exception as exc:
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(None)
        loop.run_forever()
        loop.run_until_complete(self._broker.shutdown())
        loop.close()

    async def _start_broker(self) -> None:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "auth": {"allow-anonymous": True, "plugins": ["auth_anonymous"]},
            "topic-check": {"enabled": False},
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self._broker = Broker(config)
            await self._broker.start()

    def stop(self) -> None:
        """Shut the broker down and join its thread."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = None
        self._thread = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
