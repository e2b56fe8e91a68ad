"""The field kit: a whole simulated station as separate processes, and the agent config that matches it.

Each simulator runs as its own ``edge-agent sim ...`` child process (the BMS on slcan over a pty
null modem or Modbus TCP/RTU, the node firmware under the MicroPython unix port behind a pty);
the label camera is a folder of rendered (or recorded) photos; the MQTT broker is embedded
(amqtt, MQTT 3.1.1) or given. A recorded CAN session can stand in for the live BMS
(``bms.can.replay``). The written TOML is an ordinary agent config: ``selftest``, ``run`` and
``identify`` use it unchanged.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import tomli_w

from edge_agent.errors import EdgeAgentError, SimulatorError
from edge_agent.sim.fieldkit_dock import ControlFifo, node_commands, render_pack_labels

log = logging.getLogger(__name__)

BmsKind = Literal["gbt27930", "uds", "dbc", "sunspec", "regmap"]
CAN_KINDS = ("gbt27930", "uds", "dbc")
# --bms -> (pack profile, simulator kind flag)
PROFILES: dict[str, str] = {
    "gbt27930": "gbt27930-generic",
    "uds": "uds-generic",
    "dbc": "tesla-model3",
    "sunspec": "sunspec-battery",
    "regmap": "byd-batterybox",
}
SITE, STATION = "fieldkit-site", "fieldkit-1"
START_TIMEOUT_S = 30.0
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, kw_only=True)
class FieldKitSpec:
    """What to simulate and where to put it."""

    workdir: Path
    config_out: Path
    bms: BmsKind = "gbt27930"
    modbus: Literal["tcp", "rtu"] = "tcp"
    broker: str = "embedded"  # or HOST:PORT
    replay_can: Path | None = None
    labels: Path | None = None


@dataclass
class Part:
    """One running part of the field kit: a child process or an in-process service."""

    name: str
    where: str
    proc: subprocess.Popen[str] | None = None
    log_path: Path | None = None
    exited: bool = False
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def plain(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {"name": self.name, "where": self.where, "pid": self.proc.pid if self.proc else None}


@dataclass
class FieldKit:
    """Start with :meth:`start`, stop with :meth:`stop` (also a context manager)."""

    spec: FieldKitSpec
    parts: list[Part] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    _broker: Any = None
    _control: ControlFifo | None = None

    def __enter__(self) -> FieldKit:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def state_path(self) -> Path:
        """fieldkit.json in the workdir: the config path and every part's pid and address."""
        return self.spec.workdir / "fieldkit.json"

    @property
    def control_path(self) -> Path:
        """The named pipe that docks and undocks the simulated pack."""
        return self.spec.workdir / "control"

    def control(self, line: str) -> None:
        """Execute one control line (``dock [KG]``, ``undock`` or a node simulator command)."""
        node = next((p for p in self.parts if p.name == "node"), None)
        if node is None or node.proc is None or node.proc.stdin is None or node.exited:
            raise SimulatorError("the node simulator is not running")
        try:
            for command in node_commands(line):
                node.proc.stdin.write(command + "\n")
            node.proc.stdin.flush()
        except OSError as exc:
            raise SimulatorError(f"node simulator does not take commands: {exc}") from None
        log.info("field kit control: %s", line)
        print(f"control: {line}", flush=True)

    def start(self) -> None:
        """Start every part and write the config; on any failure stop what already runs."""
        spec = self.spec
        if spec.bms not in PROFILES:
            raise SimulatorError(f"unknown --bms {spec.bms!r}; one of {', '.join(PROFILES)}")
        self._validate()
        try:
            spec.workdir.mkdir(parents=True, exist_ok=True)
            # a stale state file would tell waiters the field kit is up before it is
            self.state_path.unlink(missing_ok=True)
            (spec.workdir / "logs").mkdir(exist_ok=True)
            (spec.workdir / "data").mkdir(exist_ok=True)
        except OSError as exc:
            raise SimulatorError(f"cannot create field kit workdir {spec.workdir}: {exc}") from None
        try:
            self.config = self._base_config()
            self._start_bms()
            self._start_node()
            self._camera()
            self._start_broker()
            self._keys()
            self._control = ControlFifo(self.control_path, self.control)
            self.parts.append(Part(name="control", where=f"echo dock|undock > {self.control_path}"))
            self._write()
        except BaseException:
            self.stop()
            raise

    def _validate(self) -> None:
        """Refuse bad options before anything is started."""
        spec = self.spec
        if spec.replay_can is not None:
            if spec.bms not in CAN_KINDS:
                raise SimulatorError("--replay-can needs a CAN BMS (--bms gbt27930, uds or dbc)")
            if not spec.replay_can.is_file():
                raise SimulatorError(f"CAN recording not found: {spec.replay_can}")
        if spec.labels is not None and not spec.labels.is_dir():
            raise SimulatorError(f"label photo folder not found: {spec.labels}")
        if spec.broker != "embedded":
            broker_address(spec.broker)

    # --- parts ---------------------------------------------------------------------------

    def _base_config(self) -> dict[str, Any]:
        w = self.spec.workdir
        return {
            "station": {
                "site": SITE,
                "station": STATION,
                "data_dir": str(w / "data"),
                "bms": {"timeout_s": 5.0, "retries": 0, "required": True},
                "label": {"timeout_s": 5.0, "retries": 0},
                "weight": {"timeout_s": 6.0, "retries": 0},
            },
            "signing": {"key_dir": str(w / "keys")},
            "bms": {"profile": PROFILES[self.spec.bms], "timeout_s": 5.0},
        }

    def _start_bms(self) -> None:
        from edge_agent.bms.profile import load_profile

        spec, bms = self.spec, self.config["bms"]
        profile = load_profile(PROFILES[spec.bms])
        if spec.replay_can is not None:
            path = spec.replay_can.resolve()
            bms["can"] = {"interface": "virtual", "channel": "fieldkit-replay", "replay": str(path)}
            self.parts.append(Part(name="bms-can", where=f"replay of {path}"))
            return
        if spec.bms in CAN_KINDS:
            args = ["bms-can", "--protocol", spec.bms, "--pty-pair"]
            args += ["--bitrate", str(profile.bitrate)]
            if spec.bms == "dbc":
                args += ["--profile", profile.name]
            part, first = self._spawn("bms-can", args, lambda line: "--channel " in line)
            agent_end = first.rsplit("--channel ", 1)[1].strip()
            self._wait_line(part, lambda line: line.startswith("ready:"))
            part.where = f"slcan {agent_end} at {profile.bitrate} bit/s ({spec.bms})"
            bms["can"] = {
                "interface": "slcan",
                "channel": agent_end,
                "bitrate": profile.bitrate,
                "open_delay_s": 0.0,
            }
            return
        args = ["bms-modbus", "--kind", spec.bms]
        args += ["--tcp", "127.0.0.1:0"] if spec.modbus == "tcp" else ["--rtu-pty"]
        part, url = self._spawn(
            "bms-modbus", args, lambda line: line.startswith(("tcp://", "rtu://"))
        )
        url = url.strip()
        part.where = f"{url} ({spec.bms})"
        bms["modbus"] = {"url": url, "device_id": 1, "timeout_s": 1.0, "retries": 1}

    def _start_node(self) -> None:
        node_dir = self.spec.workdir / "node"
        args = ["node", "--role", "scale+sensors", "--workdir", str(node_dir)]
        part, port = self._spawn("node", args, lambda line: bool(line.strip()))
        port = os.path.abspath(port.strip())  # keep the stable link name, not /dev/pts/N
        part.where = f"{port} (node firmware, MicroPython unix port)"
        self.config["nodes"] = {"ports": [port], "hello_timeout_s": 5.0, "stable_timeout_s": 6.0}

    def _camera(self) -> None:
        if self.spec.labels is not None:
            folder = self.spec.labels.resolve()
            where = f"{folder} (recorded photos)"
        else:
            folder = self.spec.workdir / "camera"
            code = render_pack_labels(folder)
            where = f"{folder} (rendered labels, code {code})"
        self.parts.append(Part(name="camera", where=where))
        self.config["label"] = {"source": str(folder), "backend": "files"}

    def _start_broker(self) -> None:
        mqtt: dict[str, Any] = {"client_id": STATION, "topic_prefix": "battrace/v1"}
        if self.spec.broker == "embedded":
            from edge_agent.sim.broker import EmbeddedBroker

            self._broker = EmbeddedBroker()
            self._broker.start()
            host, port = self._broker.host, self._broker.port
            # amqtt speaks MQTT 3.1.1 only and stalls on an MQTT 5 CONNECT with a Will
            mqtt["protocol"] = "3.1.1"
            where = f"{host}:{port} (embedded amqtt, MQTT 3.1.1)"
        else:
            host, port = broker_address(self.spec.broker)
            where = f"{host}:{port} (given broker)"
        mqtt.update(host=host, port=port)
        self.config["uplink"] = {"mqtt": mqtt}
        self.parts.append(Part(name="broker", where=where))

    def _keys(self) -> None:
        from edge_agent.signing.keys import PUBLIC_KEY_FILE, init_keys
        from edge_agent.signing.trust import TrustStore

        key_dir = self.spec.workdir / "keys"
        if not (key_dir / PUBLIC_KEY_FILE).exists():
            init_keys(key_dir, "ed25519")
        trust_path = self.spec.workdir / "trust.json"
        trust = TrustStore.load(trust_path, create=True)
        trust.add((key_dir / PUBLIC_KEY_FILE).read_bytes(), station=STATION, site=SITE)
        trust.save()
        self.parts.append(Part(name="key", where=f"{key_dir} (trust store {trust_path})"))

    def _write(self) -> None:
        out = self.spec.config_out
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(tomli_w.dumps(self.config), encoding="utf-8")
            state = {
                "pid": os.getpid(),
                "config": str(out.resolve()),
                "workdir": str(self.spec.workdir.resolve()),
                "trust": str((self.spec.workdir / "trust.json").resolve()),
                "control": str(self.control_path.resolve()),
                "parts": [p.plain() for p in self.parts],
            }
            tmp = self.state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
            os.replace(tmp, self.state_path)
        except OSError as exc:
            raise SimulatorError(f"cannot write the field kit config {out}: {exc}") from None

    # --- child processes -----------------------------------------------------------------

    def _spawn(self, name: str, sim_args: list[str], ready: Any) -> tuple[Part, str]:
        log_path = self.spec.workdir / "logs" / f"{name}.log"
        command = [sys.executable, "-m", "edge_agent", "sim", *sim_args]
        with open(log_path, "w", encoding="utf-8") as err:
            proc = subprocess.Popen(  # our own CLI with fixed arguments
                command,
                stdin=subprocess.PIPE,  # the node simulator reads commands; EOF is harmless
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                start_new_session=True,  # a Ctrl-C on the field kit terminal reaches only the kit
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - one async-signal-safe libc call
            )
        part = Part(name=name, where="starting", proc=proc, log_path=log_path)
        self.parts.append(part)
        threading.Thread(
            target=_pump,
            args=(proc.stdout, part.lines, log_path),
            name=f"edge-agent-fieldkit-{name}",
            daemon=True,
        ).start()
        return part, self._wait_line(part, ready)

    def _wait_line(self, part: Part, ready: Any) -> str:
        lines = part.lines
        deadline = time.monotonic() + START_TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise SimulatorError(
                    f"simulator {part.name} exited while starting; see {part.log_path}"
                )
            if ready(line):
                return line
        raise SimulatorError(f"simulator {part.name} not ready in {START_TIMEOUT_S:g} s")

    def poll(self) -> list[Part]:
        """Parts whose process ended since the last poll (logged once)."""
        ended = []
        for part in self.parts:
            if part.proc is not None and not part.exited and part.proc.poll() is not None:
                part.exited = True
                ended.append(part)
                log.warning("field kit part %s exited with %s", part.name, part.proc.returncode)
        return ended

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every child, wait, SIGKILL stragglers; stop the embedded broker."""
        if self._control is not None:
            self._control.close()
            self._control = None
        for part in self.parts:
            if part.proc is not None and part.proc.poll() is None:
                part.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for part in self.parts:
            if part.proc is None:
                continue
            try:
                part.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("field kit part %s did not stop; killing it", part.name)
                part.proc.kill()
                part.proc.wait()
            if part.proc.stdin is not None:
                part.proc.stdin.close()
        if self._broker is not None:
            try:
                self._broker.stop()
            except EdgeAgentError as exc:
                log.warning("embedded broker stop: %s", exc)
            self._broker = None


def _load_libc() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


# loaded in the parent: the pre-exec hook only makes one libc call (no dlopen after fork)
_LIBC = _load_libc()


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the field kit dies, even by SIGKILL (Linux prctl)."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def broker_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); SimulatorError otherwise."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise SimulatorError(f"--broker must be embedded or HOST:PORT, got {text!r}")
    return host, int(port_text)


def _pump(stream: IO[str] | None, lines: queue.Queue[str | None], log_path: Path) -> None:
    """Hand stdout lines to the starter and copy them to the part's log."""
    if stream is None:
        lines.put(None)
        return
    with open(log_path, "a", encoding="utf-8") as copy:
        for line in stream:
            copy.write(line)
            copy.flush()
            lines.put(line.rstrip("\n"))
    lines.put(None)
