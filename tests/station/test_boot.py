"""Boot epoch persistence, per-boot sequence numbers and the clock state probe."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from edge_agent.errors import StationError
from edge_agent.station import boot


def test_boot_epoch_increments_durably(tmp_path: Path) -> None:
    assert [boot.next_boot_epoch(tmp_path / "d") for _ in range(3)] == [1, 2, 3]
    assert (tmp_path / "d" / boot.BOOT_FILE).read_text() == "3\n"


def test_unreadable_boot_epoch_is_a_station_error(tmp_path: Path) -> None:
    (tmp_path / boot.BOOT_FILE).write_text("seven\n")
    with pytest.raises(StationError, match=r"boot epoch file .* unreadable"):
        boot.next_boot_epoch(tmp_path)


def test_sequence_is_unique_across_threads() -> None:
    seq = boot.Sequence()
    got: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(500):
            n = seq.next()
            with lock:
                got.append(n)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 2001))


def test_clock_state_looks_up_libc_once() -> None:
    boot._libc.cache_clear()
    states = {boot.clock_state() for _ in range(20)}
    assert states <= {"synced", "unsynced", "unknown"} and len(states) == 1
    assert boot._libc.cache_info().misses <= 1  # no `ldconfig -p` subprocess per event
