"""sd_notify against a real bound unix datagram socket (path and abstract namespace)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.sd_notify import Notifier, format_state, keep_alive, notify, socket_address
from tests.conftest import require_real_part


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    address = str(tmp_path / "notify.sock")
    sock.bind(address)
    sock.settimeout(5)
    yield sock, address
    sock.close()


def test_ready_status_watchdog_datagrams_on_path_socket(
    path_socket: tuple[socket.socket, str],
) -> None:
    sock, address = path_socket
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": address})
    assert notifier.enabled
    assert notifier.ready(status="serving 2 buses")
    assert sock.recv(4096) == b"READY=1\nSTATUS=serving 2 buses"
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert notifier.status("line1\nline2")
    assert sock.recv(4096) == b"STATUS=line1 line2"
    assert notifier.stopping()
    assert sock.recv(4096) == b"STOPPING=1"


def test_abstract_namespace_socket() -> None:
    name = f"edge-agent-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        assert notify({"READY": 1}, environ={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"READY=1"


def test_no_socket_is_a_quiet_no_op() -> None:
    notifier = Notifier.from_environment({})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog_interval_s() is None


def test_missing_socket_path_returns_false_not_raises(tmp_path: Path) -> None:
    assert notify({"READY": 1}, environ={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}) is False


def test_watchdog_interval_respects_watchdog_pid() -> None:
    mine = Notifier.from_environment(
        {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    )
    assert mine.watchdog_interval_s() == 30.0
    other = Notifier.from_environment({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_interval_s() is None
    assert Notifier.from_environment({"WATCHDOG_USEC": "junk"}).watchdog_interval_s() is None


def test_full_receiver_queue_times_out_instead_of_hanging(
    path_socket: tuple[socket.socket, str],
) -> None:
    """Found by the benchmark: a receiver that stops reading used to block the sender forever."""
    _sock, address = path_socket
    notifier = Notifier(address, send_timeout_s=0.05)
    results: list[bool] = []
    for _ in range(100_000):  # far beyond any datagram queue (max_dgram_qlen, rcvbuf)
        results.append(notifier.watchdog())
        if not results[-1]:
            break
    assert results[0] is True
    assert results[-1] is False  # the queue filled up; the call returned instead of blocking


def test_socket_address_forms() -> None:
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@abc") == b"\0abc"
    assert socket_address("") is None
    assert socket_address("relative/path") is None


def test_same_bytes_as_systemd_notify(path_socket: tuple[socket.socket, str]) -> None:
    """Cross-check against systemd's own systemd-notify tool when it is installed."""
    tool = shutil.which("systemd-notify")
    require_real_part(tool is not None, "systemd-notify (package systemd)")
    assert tool is not None
    sock, address = path_socket
    env = {**os.environ, "NOTIFY_SOCKET": address}
    subprocess.run(
        [tool, "--no-block", "--ready", "--status=hello"], env=env, check=True, timeout=10
    )
    theirs = sock.recv(4096).split(b"\n")
    Notifier(address).ready(status="hello")
    ours = sock.recv(4096).split(b"\n")
    # systemd-notify also sends MAINPID=; every field we send must appear identically.
    assert set(ours) <= set(theirs)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=40), max_size=4))
def test_format_state_never_splits_a_field(fields: dict[str, str]) -> None:
    try:
        payload = format_state(fields)
    except ValueError:
        return
    assert payload.count(b"\n") == max(len(fields) - 1, 0)


def test_keep_alive_pings_at_half_period_only_while_healthy(
    path_socket: tuple[socket.socket, str],
) -> None:
    sock, address = path_socket
    notifier = Notifier(address, watchdog_usec=100_000)  # WatchdogSec=0.1 -> ping every 50 ms
    healthy = True

    async def scenario() -> None:
        nonlocal healthy
        task = asyncio.create_task(keep_alive(notifier, healthy=lambda: healthy))
        await asyncio.sleep(0.3)
        healthy = False
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    sock.settimeout(0.2)
    pings = []
    try:
        while True:
            pings.append(sock.recv(64))
    except TimeoutError:
        pass
    assert set(pings) == {b"WATCHDOG=1"}
    assert 3 <= len(pings) <= 10  # ~6 in 0.3 s (10 = the datagram queue's capacity here)


def test_keep_alive_returns_without_watchdog() -> None:
    asyncio.run(asyncio.wait_for(keep_alive(Notifier("/nonexistent")), timeout=1))
