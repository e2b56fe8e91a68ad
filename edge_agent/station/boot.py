"""Boot epoch (persisted, incremented once per agent start) and the per-boot sequence number.

Together they order every event a key ever signs, which is what the gateway's replay window
needs, without a disk write per event (RFC 8613 appendix B.1 style).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import itertools
import logging
import os
import threading
from pathlib import Path

from edge_agent.errors import StationError
from edge_agent.model import ClockState
from edge_agent.private_files import private_dir

BOOT_FILE = "boot_epoch"
log = logging.getLogger(__name__)


def _read_epoch(path: Path) -> int:
    try:
        return int(path.read_text(encoding="ascii").strip() or "0")
    except FileNotFoundError:
        return 0
    except (OSError, ValueError) as exc:
        raise StationError(f"boot epoch file {path} unreadable: {exc}") from None


def _write_epoch(directory: Path, value: int) -> None:
    private_dir(directory)
    path = directory / BOOT_FILE
    tmp = path.with_suffix(".tmp")
    with open(
        os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="ascii"
    ) as fh:
        fh.write(f"{value}\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def store_boot_epoch(value: int, data_dir: Path, key_dir: Path | None = None) -> None:
    """Durably store the boot epoch in the data directory and (a copy) beside the key."""
    _write_epoch(data_dir, value)
    if key_dir is not None:
        try:
            _write_epoch(key_dir, value)
        except OSError as exc:  # a read-only key dir: the data dir copy still counts
            log.warning("cannot keep a copy of the boot epoch in %s: %s", key_dir, exc)


def next_boot_epoch(data_dir: Path, key_dir: Path | None = None) -> int:
    """Increment and durably store the boot epoch; returns the new value.

    The epoch is read from the data directory and from the copy beside the signing key and the
    larger one wins, so losing the data folder (or only its boot_epoch file) never makes the
    key sign under an epoch it used before.
    """
    private_dir(data_dir)
    current = _read_epoch(data_dir / BOOT_FILE)
    if key_dir is not None:
        current = max(current, _read_epoch(key_dir / BOOT_FILE))
    new = current + 1
    store_boot_epoch(new, data_dir, key_dir)
    return new


class BootCounter:
    """The (boot_epoch, seq) every signed event takes; the epoch can move forward at runtime
    when the gateway reports it accepted a newer one (a lost boot_epoch file)."""

    def __init__(
        self, epoch: int, *, data_dir: Path | None = None, key_dir: Path | None = None
    ) -> None:
        self._epoch = epoch
        self._seq = 0
        self._data_dir = data_dir
        self._key_dir = key_dir
        self._lock = threading.Lock()

    @property
    def epoch(self) -> int:
        """The boot epoch events are signed under now."""
        return self._epoch

    def next(self) -> tuple[int, int]:
        """The next (epoch, seq) pair."""
        with self._lock:
            self._seq += 1
            return self._epoch, self._seq

    def move_above(self, epoch: int) -> tuple[int, int]:
        """Continue above ``epoch`` (stored durably first), then the next (epoch, seq)."""
        with self._lock:
            if self._epoch <= epoch:
                new = epoch + 1
                if self._data_dir is not None:
                    store_boot_epoch(new, self._data_dir, self._key_dir)
                log.warning(
                    "boot epoch moved from %d to %d (gateway had %d)", self._epoch, new, epoch
                )
                self._epoch, self._seq = new, 0
            self._seq += 1
            return self._epoch, self._seq


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
