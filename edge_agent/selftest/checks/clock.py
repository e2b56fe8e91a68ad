"""Clock check: the system clock is synchronised (timesyncd flag, kernel, then timedatectl)."""

from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import subprocess

from edge_agent.selftest.model import CheckContext, Outcome, passed, warned

_STA_UNSYNC = 0x0040  # adjtimex status bit: kernel clock not synchronised
_TIME_ERROR = 5  # adjtimex return value: clock not synchronised


class _Timex(ctypes.Structure):
    # Leading fields of struct timex; the kernel struct is larger, so pad generously.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 256),
    ]


def kernel_clock_synchronised() -> bool | None:
    """Ask the kernel (adjtimex, read-only) whether the clock is synchronised; None if unknown."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        tx = _Timex()
        rc = int(libc.adjtimex(ctypes.byref(tx)))
    except (OSError, AttributeError):
        return None
    if rc < 0:
        return None
    return rc != _TIME_ERROR and not (tx.status & _STA_UNSYNC)


def _timedatectl_synchronised() -> bool | None:
    tool = shutil.which("timedatectl")
    if tool is None:
        return None
    try:
        out = subprocess.run(
            [tool, "show", "-p", "NTPSynchronized", "--value"],
            check=False,
            capture_output=True,
            text=True,
            timeout=3,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = out.stdout.strip()
    return {"yes": True, "no": False}.get(value)


def check_clock(ctx: CheckContext) -> Outcome:
    """Clock synchronised: systemd-timesyncd flag file, then the kernel, then timedatectl."""
    ntp_step = (
        "enable time sync: `timedatectl set-ntp true` and make sure NTP (UDP 123) reaches a server"
    )
    if (ctx.run_root / "systemd" / "timesync" / "synchronized").exists():
        return passed("systemd-timesyncd reports synchronised")
    kernel = kernel_clock_synchronised()
    if kernel is True:
        return passed("kernel clock synchronised (adjtimex)")
    if kernel is False:
        return warned(
            "kernel clock NOT synchronised; events will be marked clock-unsynced", ntp_step
        )
    via_tool = _timedatectl_synchronised()
    if via_tool is True:
        return passed("timedatectl: NTPSynchronized=yes")
    if via_tool is False:
        return warned("timedatectl: NTPSynchronized=no", ntp_step)
    return warned("clock synchronisation state unknown", ntp_step)
