"""Dependency-free sd_notify(3): tell systemd we are ready, alive, or what we are doing.

Usage from a long-running service (``Type=notify``, ``WatchdogSec=``)::

    notifier = Notifier.from_environment()
    notifier.ready(status="serving")
    interval = notifier.watchdog_interval_s()   # None when no watchdog is configured
    ...
    notifier.watchdog()                         # call at least every interval / 2
    task = asyncio.create_task(keep_alive(notifier, healthy=lambda: pipeline_ok))

Every method is a no-op returning False when ``$NOTIFY_SOCKET`` is unset (not started by
systemd, or in tests), so callers never need to branch. Send errors are logged, never raised:
a service must not die because the supervisor's socket went away.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger("edge_agent.sd_notify")

_MAX_STATUS_CHARS = 1024  # keep STATUS= short; systemctl shows one line


def socket_address(raw: str) -> str | bytes | None:
    """The AF_UNIX address named by a $NOTIFY_SOCKET value ('@name' = abstract namespace)."""
    if not raw:
        return None
    if raw.startswith("@"):
        # Linux abstract namespace: a leading NUL byte instead of '@'.
        return b"\0" + raw[1:].encode("utf-8")
    if raw.startswith("/"):
        return raw
    log.warning("ignoring NOTIFY_SOCKET %r: neither a path nor an abstract name", raw)
    return None


def format_state(fields: Mapping[str, str | int]) -> bytes:
    """Encode ``{"READY": 1, "STATUS": "x"}`` as the newline-separated datagram systemd reads."""
    lines = []
    for key, value in fields.items():
        if not key or not key.isupper() or "=" in key or "\n" in key:
            raise ValueError(f"invalid sd_notify field name {key!r}")
        text = str(value).replace("\n", " ")  # one field per line; a newline would split it
        lines.append(f"{key}={text}")
    return "\n".join(lines).encode("utf-8")


class Notifier:
    """Sends sd_notify datagrams to one socket address (or nowhere when address is None)."""

    def __init__(
        self,
        address: str | bytes | None,
        *,
        watchdog_usec: int | None = None,
        send_timeout_s: float = 0.5,
    ) -> None:
        self.address = address
        self._watchdog_usec = watchdog_usec
        # A unix datagram send blocks while the receiver's queue is full (a stalled systemd, or
        # net.unix.max_dgram_qlen reached); bound it so a ping never stalls the agent's loop.
        self._send_timeout_s = send_timeout_s

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """Read $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID the way libsystemd does."""
        env = os.environ if environ is None else environ
        address = socket_address(env.get("NOTIFY_SOCKET", ""))
        usec: int | None = None
        raw_usec = env.get("WATCHDOG_USEC", "")
        raw_pid = env.get("WATCHDOG_PID", "")
        # WATCHDOG_PID names the process the watchdog is meant for; ignore it elsewhere.
        for_us = not raw_pid or (raw_pid.isdigit() and int(raw_pid) == os.getpid())
        if raw_usec.isdigit() and int(raw_usec) > 0 and for_us:
            usec = int(raw_usec)
        return cls(address, watchdog_usec=usec)

    @property
    def enabled(self) -> bool:
        """True when a notify socket is configured."""
        return self.address is not None

    def watchdog_interval_s(self) -> float | None:
        """The WatchdogSec= period in seconds, or None; ping at least twice per period."""
        return None if self._watchdog_usec is None else self._watchdog_usec / 1_000_000

    def notify(self, fields: Mapping[str, str | int]) -> bool:
        """Send one datagram with the given fields; True when it was sent."""
        if self.address is None:
            return False
        payload = format_state(fields)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(self._send_timeout_s)
                sock.connect(self.address)
                sock.sendall(payload)
        except OSError as exc:
            log.warning("sd_notify to %r failed: %s", self.address, exc)
            return False
        return True

    def ready(self, *, status: str | None = None) -> bool:
        """READY=1 (with an optional STATUS=): startup finished."""
        fields: dict[str, str | int] = {"READY": 1}
        if status is not None:
            fields["STATUS"] = status[:_MAX_STATUS_CHARS]
        return self.notify(fields)

    def watchdog(self) -> bool:
        """WATCHDOG=1: the service is alive; systemd restarts it when these stop."""
        return self.notify({"WATCHDOG": 1})

    def status(self, text: str) -> bool:
        """STATUS=text: a one-line description shown by ``systemctl status``."""
        return self.notify({"STATUS": text[:_MAX_STATUS_CHARS]})

    def stopping(self) -> bool:
        """STOPPING=1: shutdown began."""
        return self.notify({"STOPPING": 1})

    def reloading(self) -> bool:
        """RELOADING=1: configuration reload began (send ready() when done)."""
        return self.notify({"RELOADING": 1})


def notify(fields: Mapping[str, str | int], *, environ: Mapping[str, str] | None = None) -> bool:
    """One-shot sd_notify using $NOTIFY_SOCKET; False when unset or the send failed."""
    return Notifier.from_environment(environ).notify(fields)


async def keep_alive(notifier: Notifier, *, healthy: Callable[[], bool] = lambda: True) -> None:
    """Ping the watchdog every half period while ``healthy()`` holds; returns at once without one.

    Run it as a task next to the service's work and cancel it on shutdown. When ``healthy()``
    turns false the pings stop, so systemd restarts a service that is alive but stuck.
    """
    interval = notifier.watchdog_interval_s()
    if interval is None or not notifier.enabled:
        return
    while True:
        if healthy():
            notifier.watchdog()
        else:
            log.warning("not pinging the watchdog: the service reports itself unhealthy")
        await asyncio.sleep(interval / 2)
