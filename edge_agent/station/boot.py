"""Boot epoch (persisted, incremented once per agent start) and the per-boot sequence number.

Together they order every event a key ever signs, which is what the gateway's replay window
needs, without a disk write per event (RFC 8613 appendix B.1 style).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import itertools
import os
import threading
from pathlib import Path

from edge_agent.errors import StationError
from edge_agent.model import ClockState
from edge_agent.private_files import private_dir

BOOT_FILE = "boot_epoch"


def next_boot_epoch(data_dir: Path) -> int:
    """Increment and durably store the boot epoch; returns the new value."""
    private_dir(data_dir)
    path = data_dir / BOOT_FILE
    try:
        current = int(path.read_text(encoding="ascii").strip() or "0")
    except FileNotFoundError:
        current = 0
    except (OSError, ValueError) as exc:
        raise StationError(f"boot epoch file {path} unreadable: {exc}") from None
    new = current + 1
    tmp = path.with_suffix(".tmp")
    with open(
        os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="ascii"
    ) as fh:
        fh.write(f"{new}\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(data_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return new


class Sequence:
    """Thread-safe per-boot sequence counter starting at 1."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def next(self) -> int:
        """The next sequence number."""
        with self._lock:
            return next(self._counter)


class _Timex(ctypes.Structure):
    # struct timex is 208 bytes on 64-bit Linux; only the return value of adjtimex matters here.
    _fields_ = [("modes", ctypes.c_uint), ("_rest", ctypes.c_byte * 252)]


TIME_ERROR = 5


@functools.cache
def _libc() -> ctypes.CDLL | None:
    # find_library runs `ldconfig -p` in a subprocess (~2 ms): once per process, not per event
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


def clock_state() -> ClockState:
    """Whether the kernel considers the clock NTP-synchronised (adjtimex), else unknown."""
    if Path("/run/systemd/timesync/synchronized").exists():
        return "synced"
    libc = _libc()
    if libc is None:
        return "unknown"
    try:
        timex = _Timex()
        state = libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        return "unknown"
    if state < 0:
        return "unknown"
    return "unsynced" if state == TIME_ERROR else "synced"
