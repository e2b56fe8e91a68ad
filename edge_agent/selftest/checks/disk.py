"""Outbox disk check: the outbox's filesystem has the free space uplink.outbox asks for."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edge_agent.selftest.model import CheckContext, Outcome, failed, passed, warned


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
