"""Host checks: signing key files and permissions, clock synchronisation, outbox disk space."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import stat
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from edge_agent.selftest.model import CheckContext, Outcome, failed, passed, warned

KEY_FILE = "station.key.pem"
PUB_FILE = "station.pub.pem"
_STA_UNSYNC = 0x0040  # adjtimex status bit: kernel clock not synchronised
_TIME_ERROR = 5  # adjtimex return value: clock not synchronised


def check_signing_key(ctx: CheckContext) -> Outcome:
    """Station key present, owner-only (0600), ours, parseable, matching the public key."""
    key_dir = ctx.config.signing.key_dir.expanduser()
    key = key_dir / KEY_FILE
    pub = key_dir / PUB_FILE
    make = f"create it: edge-agent keys init --dir {key_dir} (or restore the station key backup)"
    try:
        st = key.stat()
    except FileNotFoundError:
        return failed(f"{key} missing", make)
    except OSError as exc:
        return failed(f"{key} unreadable: {exc.strerror}", f"fix the permissions of {key_dir}")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        return failed(
            f"{key} has mode {mode:04o}: readable by others",
            f"chmod 600 {key}; then treat the key as leaked if others could log in",
        )
    if st.st_uid != os.geteuid():
        return failed(
            f"{key} owned by uid {st.st_uid}, not {os.geteuid()}", f"chown $(id -un) {key}"
        )
    try:
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as exc:
        return failed(f"{key} is not an unencrypted PEM private key: {exc}", make)
    if not pub.is_file():
        return failed(f"{pub} missing", f"export it again from {key} (edge-agent keys show)")
    try:
        public = serialization.load_pem_public_key(pub.read_bytes())
    except (ValueError, OSError) as exc:
        return failed(f"{pub} unreadable: {exc}", "re-export the public key from the private key")
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if private.public_key().public_bytes(*raw) != public.public_bytes(*raw):
        return failed(
            f"{pub} does not match {key}",
            "re-export the public key; the backend trusts the wrong key",
        )
    dir_mode = stat.S_IMODE(key_dir.stat().st_mode)
    if dir_mode & 0o022:
        return warned(
            f"key ok, but {key_dir} is writable by others ({dir_mode:04o})", f"chmod 700 {key_dir}"
        )
    return passed(f"{key.name} 0600 owner-only, matches {pub.name}")


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


def outbox_path(ctx: CheckContext) -> Path:
    """Where the outbox database lives (explicit path or <data_dir>/outbox.sqlite3)."""
    configured = ctx.config.uplink.outbox.path
    if configured is not None:
        return configured.expanduser()
    return ctx.config.station.data_dir.expanduser() / "outbox.sqlite3"


def check_disk(ctx: CheckContext) -> Outcome:
    """Free space on the outbox's filesystem is above uplink.outbox.min_free_disk_bytes."""
    path = outbox_path(ctx)
    directory = path.parent
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    need = ctx.config.uplink.outbox.min_free_disk_bytes
    free = shutil.disk_usage(existing).free
    if free < need:
        return failed(
            f"{_mib(free)} free on {existing}, outbox needs {_mib(need)}",
            "free space (old logs, /var/cache) or move station.data_dir to a bigger disk",
        )
    if not os.access(existing, os.W_OK):
        return failed(
            f"{existing} is not writable by uid {os.geteuid()}", f"chown the data dir: {directory}"
        )
    if existing != directory:
        return warned(
            f"{_mib(free)} free; {directory} does not exist yet",
            f"mkdir -p {directory} (install.sh does)",
        )
    return passed(f"{_mib(free)} free on {directory} (need {_mib(need)})")


def _mib(n: int) -> str:
    return f"{n / 1024**2:.0f} MiB"
