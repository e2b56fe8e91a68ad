"""A systemd-notify harness: a bound AF_UNIX datagram socket, as systemd's $NOTIFY_SOCKET is,
with a reader thread recording every datagram (tests wait on what arrived, never on time).

Usage::

    with NotifyListener(tmp_path / "notify.sock") as listener:
        env = listener.environ(watchdog_usec=200_000)  # NOTIFY_SOCKET, WATCHDOG_USEC
        ...start the service with env...
        assert listener.wait_for(lambda got: b"READY=1" in got, 30)
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType


class NotifyListener:
    """Records sd_notify datagrams; each datagram is split into its ``KEY=value`` lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.datagrams: list[list[bytes]] = []
        self._cond = threading.Condition()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.1)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, name="test-notify-listener")
        self._thread.start()

    def environ(self, *, watchdog_usec: int | None = None) -> dict[str, str]:
        """The variables systemd sets for a Type=notify service (WatchdogSec= optional)."""
        env = {"NOTIFY_SOCKET": str(self.path)}
        if watchdog_usec is not None:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        return env

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._cond:
                self.datagrams.append(data.split(b"\n"))
                self._cond.notify_all()

    def fields(self) -> list[bytes]:
        """Every field received so far, in order (``b"READY=1"``, ``b"WATCHDOG=1"``, ...)."""
        with self._cond:
            return [f for d in self.datagrams for f in d]

    def count(self, field: bytes) -> int:
        """How often ``field`` arrived."""
        return self.fields().count(field)

    def wait_for(self, predicate: Callable[[list[bytes]], bool], timeout: float) -> bool:
        """Wait until ``predicate(fields())`` holds; False on timeout."""
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                if predicate([f for d in self.datagrams for f in d]):
                    return True
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))

    def close(self) -> None:
        """Stop reading and close the socket."""
        self._closed.set()
        self._thread.join(5)
        self._sock.close()

    def __enter__(self) -> NotifyListener:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
