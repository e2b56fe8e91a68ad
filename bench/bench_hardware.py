"""Benchmarks of the hardware area: self-test wall time and sd_notify cost, each with a baseline.

    python bench/bench_hardware.py            # full run
    python bench/bench_hardware.py --smoke    # quick check that it works (CI)

1. self-test: the concurrent runner against real local parts (pymodbus TCP server, python-can
   virtual bus with a sender, an image folder camera, a key dir, disk, clock), baseline: the same
   check functions called one after another.
2. sd_notify: Notifier.watchdog() datagrams to a bound unix socket, baseline: raw sendto() on a
   pre-connected socket (what a hand-written notifier that keeps its socket open would cost).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_agent.config import config_from_plain
from edge_agent.sd_notify import Notifier
from edge_agent.selftest import CheckContext, get_check, run_selftest
from tests.support.hardware import (
    can_sender,
    key_dir,
    label_image,
    modbus_tcp_server,
    unique_channel,
)

CHECKS = ["can", "modbus", "camera", "key", "clock", "disk"]


def median_s(func: Callable[[], object], runs: int) -> float:
    """Median wall time of `runs` calls."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_selftest(runs: int, window_s: float) -> tuple[float, float]:
    """(concurrent, sequential) median seconds for one self-test pass."""
    with tempfile.TemporaryDirectory() as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        server = stack.enter_context(modbus_tcp_server())
        channel = unique_channel()
        stack.enter_context(can_sender(channel))
        label_image(tmp / "camera" / "label.png")
        keys = key_dir(tmp / "keys")
        config = config_from_plain(
            {
                "station": {"data_dir": str(tmp)},
                "signing": {"key_dir": str(keys)},
                "bms": {
                    "can": {"interface": "virtual", "channel": channel},
                    "modbus": {"url": f"tcp://127.0.0.1:{server.port}", "retries": 0},
                },
                "label": {"source": str(tmp / "camera"), "backend": "files"},
                "uplink": {"mqtt": {"host": ""}},
            }
        )
        ctx = CheckContext(config=config, frame_window_s=window_s)

        def concurrent() -> None:
            report = run_selftest(ctx, only=CHECKS)
            assert report.exit_code == 0, report.as_plain()

        def sequential() -> None:
            for name in CHECKS:
                get_check(name).func(ctx)

        return median_s(concurrent, runs), median_s(sequential, runs)


def bench_notify(runs: int, count: int) -> tuple[float, float]:
    """(ours, raw sendto) median seconds per datagram."""
    with tempfile.TemporaryDirectory() as tmp_name:
        address = str(Path(tmp_name) / "notify.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sink:
            sink.bind(address)
            notifier = Notifier(address)

            # Drain in a thread, as systemd would: the datagram queue is short (max_dgram_qlen).
            stop = threading.Event()

            def drain() -> None:
                sink.settimeout(0.05)
                while not stop.is_set():
                    try:
                        sink.recv(64)
                    except TimeoutError:
                        continue

            reader = threading.Thread(target=drain, name="notify-drain", daemon=True)
            reader.start()

            def ours() -> None:
                for _ in range(count):
                    assert notifier.watchdog()

            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as raw:
                raw.connect(address)

                def baseline() -> None:
                    for _ in range(count):
                        raw.send(b"WATCHDOG=1")

                try:
                    return median_s(ours, runs) / count, median_s(baseline, runs) / count
                finally:
                    stop.set()
                    reader.join(timeout=5)


def main(argv: list[str] | None = None) -> int:
    """Run both benchmarks and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="few short runs: checks that it works")
    args = parser.parse_args(argv)
    runs = 3 if args.smoke else 7
    window = 0.1 if args.smoke else 0.5
    count = 200 if args.smoke else 2000
    conc, seq = bench_selftest(runs, window)
    ours, raw = bench_notify(runs, count)
    rows = [
        ("selftest pass (6 checks)", conc * 1e3, "ms", "sequential checks", seq * 1e3),
        ("sd_notify WATCHDOG=1", ours * 1e6, "us", "raw send() on open socket", raw * 1e6),
    ]
    print(f"median of {runs} runs; CAN frame window {window} s; {count} datagrams per notify run")
    print(f"{'measure':<26} {'ours':>10} {'baseline':>10}  {'ratio':>6}  baseline is")
    for name, value, unit, base_name, base in rows:
        print(
            f"{name:<26} {value:>8.2f}{unit} {base:>8.2f}{unit}  {value / base:>6.2f}  {base_name}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
