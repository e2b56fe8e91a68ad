"""Run ``edge-agent sim fieldkit`` as a subprocess and drive the agent CLI against its config.

Usage::

    with running_fieldkit(tmp, "--broker", f"127.0.0.1:{port}") as kit:
        rc, doc = kit.selftest()
        variant = kit.variant({"bms": {"can": {"bitrate": 500000}}})
        rc, doc = kit.selftest(config=variant)
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 90.0


def agent_env() -> dict[str, str]:
    """The environment for agent subprocesses: this checkout first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("EDGE_AGENT_CONFIG", None)
    return env


def agent(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``edge-agent ARGS`` in a subprocess and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=agent_env(),
        cwd=ROOT,
        check=False,
    )


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge plain config dicts (``over`` wins)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class FieldKitProcess:
    """A running ``sim fieldkit`` child, its written config and its state file."""

    proc: subprocess.Popen[str]
    workdir: Path
    config: Path
    output: Path

    @property
    def state(self) -> dict[str, Any]:
        """fieldkit.json: config path, trust store and every part's pid and address."""
        data: dict[str, Any] = json.loads((self.workdir / "fieldkit.json").read_text())
        return data

    def part(self, name: str) -> dict[str, Any]:
        """One part's entry of fieldkit.json."""
        for part in self.state["parts"]:
            if part["name"] == name:
                return dict(part)
        raise KeyError(name)

    def plain_config(self) -> dict[str, Any]:
        """The written config as plain data."""
        return tomllib.loads(self.config.read_text(encoding="utf-8"))

    def variant(self, overrides: dict[str, Any], name: str = "variant") -> Path:
        """Write a copy of the kit config with ``overrides`` deep-merged in."""
        path = self.workdir / f"{name}.toml"
        path.write_text(tomli_w.dumps(merge(self.plain_config(), overrides)), encoding="utf-8")
        return path

    def selftest(self, config: Path | None = None, *extra: str) -> tuple[int, dict[str, Any]]:
        """``edge-agent --config FILE selftest --json``: exit code and the parsed document."""
        out = agent(
            "--config",
            str(config or self.config),
            "selftest",
            "--json",
            "--frame-window",
            "0.5",
            *extra,
        )
        try:
            doc: dict[str, Any] = json.loads(out.stdout)
        except ValueError:
            raise AssertionError(
                f"selftest printed no JSON: {out.stdout!r} {out.stderr!r}"
            ) from None
        return out.returncode, doc

    def stop_part(self, name: str, timeout: float = 15.0) -> None:
        """SIGTERM one simulator child of the kit and wait until it is gone."""
        pid = int(self.part(name)["pid"])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            # a child of the kit becomes a zombie until the kit polls it: that is gone enough
            if _is_zombie(pid):
                return
            time.sleep(0.05)
        raise AssertionError(f"kit part {name} (pid {pid}) did not stop")

    def control(self, line: str) -> None:
        """Write one line to the kit's control pipe (``dock``, ``undock``, node commands)."""
        with open(self.state["control"], "w", encoding="utf-8") as pipe:
            pipe.write(line + "\n")

    def log(self) -> str:
        """The kit's own output so far."""
        return self.output.read_text(errors="replace") if self.output.exists() else ""


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


@contextlib.contextmanager
def running_fieldkit(tmp: Path, *args: str) -> Iterator[FieldKitProcess]:
    """Start ``edge-agent sim fieldkit`` with ``args``, wait for it, SIGTERM it at the end."""
    tmp.mkdir(parents=True, exist_ok=True)
    workdir, config, output = tmp / "fieldkit", tmp / "agent.toml", tmp / "fieldkit.out"
    with open(output, "w", encoding="utf-8") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edge_agent",
                "sim",
                "fieldkit",
                "--config-out",
                str(config),
                "--workdir",
                str(workdir),
                *args,
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            env=agent_env(),
            cwd=ROOT,
        )
    kit = FieldKitProcess(proc=proc, workdir=workdir, config=config, output=output)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while "field kit ready" not in kit.log():
            if proc.poll() is not None:
                raise AssertionError(f"sim fieldkit exited with {proc.returncode}:\n{kit.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"sim fieldkit not ready:\n{kit.log()}")
            time.sleep(0.05)
        yield kit
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def verdicts(doc: dict[str, Any]) -> dict[str, str]:
    """check name -> verdict of a selftest JSON document."""
    return {c["name"]: c["verdict"] for c in doc["checks"]}


def line(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """One line of a selftest JSON document."""
    for check in doc["checks"]:
        if check["name"] == name:
            return dict(check)
    raise KeyError(name)


def blocking(doc: dict[str, Any]) -> list[str]:
    """Names of required lines that FAILed."""
    return [c["name"] for c in doc["checks"] if c["required"] and c["verdict"] == "FAIL"]


class EventCatcher:
    """An MQTT 3.1.1 subscriber (works with amqtt and Mosquitto) keeping every signed event."""

    def __init__(self, host: str, port: int, prefix: str = "battrace/v1") -> None:
        import threading

        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.events: list[bytes] = []
        self._cond = threading.Condition()
        subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="fieldkit-test", protocol=paho.MQTTv311
        )
        self.client.on_connect = lambda c, *_: c.subscribe(f"{prefix}/#", qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        if not subscribed.wait(15):
            self.close()
            raise AssertionError(f"could not subscribe at {host}:{port}")

    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        if msg.topic.endswith("/event"):
            with self._cond:
                self.events.append(bytes(msg.payload))
                self._cond.notify_all()

    def wait_event(self, timeout: float = 20.0, *, count: int = 1) -> bytes:
        """The ``count``-th signed event received (AssertionError after ``timeout``)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.events) >= count, timeout):
                raise AssertionError(f"{len(self.events)} events arrived, waited for {count}")
            return self.events[count - 1]

    def close(self) -> None:
        """Disconnect."""
        self.client.loop_stop()
        self.client.disconnect()
