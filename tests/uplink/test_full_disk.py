"""Fault test (issue 13, 5): the outbox on a small filesystem filled to 100 %.

A 4 MB tmpfs is mounted for the test (CI runs as root; without root or mount(8) the test
fails in CI and skips elsewhere). The broker is down while the station stores a backlog, then
the filesystem fills up completely (other files, or the outbox itself). New identifications
are refused with a message that says why; once the broker is up the backlog drains, the
outbox deletes it despite the full disk (its reserve), gives the space back, and a new event is
accepted and delivered. Regression: "outbox update failed, will retry" every 0.5 s forever.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.errors import OutboxFullError
from edge_agent.uplink.mqtt import wait_until
from edge_agent.uplink.outbox_space import reserve_path
from edge_agent.uplink.settings import MqttSettings, OutboxSettings, UplinkSettings
from edge_agent.uplink.station_uplink import StationUplink, station_uplink
from tests.conftest import require_real_part
from tests.support.mosquitto import MosquittoBroker, RecordingSubscriber

pytestmark = pytest.mark.timeout(120)

RESERVE = 512 * 1024
PAYLOAD = 8000  # bytes per event (a signed event with a small photo)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs mounted for this test."""
    root = tmp_path / "small-fs"
    root.mkdir()
    can_mount = os.geteuid() == 0 and shutil.which("mount") is not None
    require_real_part(can_mount, "root and mount(8) for a 4 MB tmpfs")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    require_real_part(done.returncode == 0, f"a 4 MB tmpfs ({done.stderr.strip()})")
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


def _fill(directory: Path) -> Path:
    """Write a file until the filesystem is 100 % full (ENOSPC)."""
    path = directory / "other-files.bin"
    with open(path, "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\xa5" * 4096)
    with open(path, "ab", buffering=0) as f, contextlib.suppress(OSError):
        while True:  # the last partial block
            f.write(b"\xa5")
    return path


def _event(i: int | str) -> tuple[str, bytes]:
    key = f"ev-{i}"
    return key, f"{key}|".encode() + os.urandom(PAYLOAD)


class _Logged(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.mark.parametrize("filled_by", ["other files", "the outbox itself"])
def test_full_filesystem_drains_frees_space_and_accepts_again(
    tmp_path: Path, small_fs: Path, filled_by: str
) -> None:
    broker = MosquittoBroker(tmp_path / "broker")  # down while the backlog builds up
    settings = UplinkSettings(
        mqtt=MqttSettings(
            host=broker.host, port=broker.port, reconnect_min_s=0.05, reconnect_max_s=0.3
        ),
        outbox=OutboxSettings(
            reserve_bytes=RESERVE,
            # "other files": the usual guard; "the outbox itself": none, SQLite hits ENOSPC
            min_free_disk_bytes=64 * 1024 if filled_by == "other files" else 0,
        ),
    )
    logged = _Logged()
    logging.getLogger("edge_agent.uplink").addHandler(logged)
    uplink: StationUplink = station_uplink(
        site="site-1", station="bench-1", data_dir=small_fs / "data", settings=settings
    )
    pub, outbox = uplink.publisher, uplink.outbox
    sub: RecordingSubscriber | None = None
    try:
        assert reserve_path(outbox.path).stat().st_size == RESERVE
        pub.start()
        backlog: list[str] = []
        for i in range(100 if filled_by == "other files" else 10_000):
            key, payload = _event(i)
            try:
                pub.submit(uplink.topics.event, payload, key)
            except OutboxFullError:
                assert filled_by == "the outbox itself"
                break
            backlog.append(key)
        if filled_by == "other files":
            _fill(small_fs)
        assert shutil.disk_usage(small_fs).free < 64 * 1024
        assert len(backlog) >= 50

        # while full: the identification path refuses new events and says why
        key, payload = _event("while-full")
        with pytest.raises(OutboxFullError, match="disk") as refused:
            pub.submit(uplink.topics.event, payload, key)
        assert "new events are refused" in str(refused.value)
        assert outbox.depth == len(backlog)

        broker.start()
        sub = RecordingSubscriber(broker, uplink.topics.event)
        assert sub.wait_for(backlog, 60) == set()
        assert pub.wait_idle(30), f"{outbox.depth} rows never deleted"
        # the deleted rows gave their space back and the reserve is in place again
        assert wait_until(lambda: not outbox.reserve.needed, 10)
        assert reserve_path(outbox.path).stat().st_size == RESERVE
        assert shutil.disk_usage(small_fs).free > len(backlog) * PAYLOAD // 2
        # the file keeps at most reserve_bytes of free pages for new rows
        assert outbox.path.stat().st_size < 2 * RESERVE

        # accepted and delivered again
        key, payload = _event("after")
        assert pub.submit(uplink.topics.event, payload, key).result(30) > 0
        assert sub.wait_for([key], 30) == set()
        assert not [line for line in logged.lines if "outbox update failed" in line]
    finally:
        logging.getLogger("edge_agent.uplink").removeHandler(logged)
        pub.stop()
        outbox.close()
        if sub is not None:
            sub.close()
        broker.kill()
