"""Station processes for tests: ``edge-agent`` subcommands and simulators as real subprocesses."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from tests.conftest import ROOT


def cli_env() -> dict[str, str]:
    """The environment a spawned ``python -m edge_agent`` needs to import this tree."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120"}


def cli(config: Path, *args: str) -> list[str]:
    """argv of ``edge-agent --config CONFIG --log-format json ARGS``."""
    return [
        sys.executable,
        "-m",
        "edge_agent",
        "--config",
        str(config),
        "--log-format",
        "json",
        *args,
    ]


def run_cli(config: Path, *args: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    """Run one command to completion and capture its output."""
    return subprocess.run(
        cli(config, *args),
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
    )


class LineProcess:
    """A subprocess whose stdout lines are read on a thread (waits never block the test)."""

    def __init__(self, argv: Sequence[str], *, stdin: bool = False) -> None:
        self.argv = list(argv)
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.stderr: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        threading.Thread(target=self._pump, args=(self.proc.stdout, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, False), daemon=True).start()

    def _pump(self, stream: object, out: bool) -> None:
        for line in stream:  # type: ignore[attr-defined]
            if out:
                self.lines.put(line.rstrip("\n"))
            else:
                self.stderr.append(line)

    def line(self, timeout: float = 60.0) -> str:
        """The next stdout line; RuntimeError with the stderr when none comes."""
        end = time.monotonic() + timeout
        while True:
            try:
                return self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None or time.monotonic() > end:
                    raise RuntimeError(
                        f"{self.argv[3:]} gave no line (rc={self.proc.poll()}): {self.err()}"
                    ) from None

    def send(self, text: str) -> None:
        """Write one command line to stdin."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def err(self) -> str:
        """stderr so far (for assertion messages)."""
        return "".join(self.stderr)[-4000:]

    def signal(self, sig: int) -> None:
        """Send ``sig`` if still running."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        """Exit status (kills after ``timeout``)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise

    def close(self) -> None:
        """SIGTERM, then SIGKILL if it does not go."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def sim(*args: str) -> LineProcess:
    """``edge-agent sim ARGS`` (prints its address on the first line)."""
    return LineProcess([sys.executable, "-m", "edge_agent", "sim", *args], stdin=True)


class Service(LineProcess):
    """``edge-agent run`` with its control socket."""

    def __init__(self, config: Path, data_dir: Path) -> None:
        super().__init__(cli(config, "run"))
        self.socket = data_dir / "agent.sock"

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the control socket accepts connections (a killed predecessor's stale
        socket file exists but refuses them)."""
        end = time.monotonic() + timeout
        while True:
            with socket.socket(socket.AF_UNIX) as s:
                try:
                    s.connect(str(self.socket))
                    return
                except OSError:
                    pass
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"service not ready (rc={self.proc.poll()}): {self.err()}")
            time.sleep(0.02)
