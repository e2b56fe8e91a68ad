"""MQTT transport of the firmware against a real Mosquitto: commands, outage with bounded
backoff while sampling continues, reconnect, Last Will."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from firmware.tests.conftest import APP, HOSTSIM, find_tool, require

NODE = "e66141040327582a"
BASE = f"battrace/nodes/{NODE}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    def __init__(self, tmp: Path) -> None:
        self.exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.port = free_port()
        self.conf = tmp / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    require(os.path.exists(shutil.which("mosquitto") or "/usr/sbin/mosquitto"), "mosquitto")
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


class Watcher:
    """paho subscriber collecting what the node publishes."""

    def __init__(self, port: int) -> None:
        self.msgs: list[tuple[str, bytes]] = []
        self.cond = threading.Condition()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.c.on_message = self._on
        self.c.on_connect = lambda c, *_: c.subscribe(f"{BASE}/#")
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on(self, c: object, u: object, m: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.msgs.append((m.topic, m.payload))
            self.cond.notify_all()

    def wait(self, pred: object, timeout: float = 15) -> tuple[str, bytes]:
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for item in self.msgs:
                    if pred(*item):  # type: ignore[operator]
                        self.msgs.remove(item)
                        return item
                left = end - time.monotonic()
                assert left > 0, f"timed out; seen {[t for t, _ in self.msgs][-10:]}"
                self.cond.wait(left)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def lines_of(payload: bytes) -> dict[str, object]:
    assert payload[:1] == b"@" and payload[-9:-8] == b"*"
    body = payload[1:-9]
    assert payload[-8:] == b"%08x" % zlib.crc32(body)
    return dict(json.loads(body))


def test_mqtt_transport_outage_backoff_and_last_will(broker: Broker, tmp_path: Path) -> None:
    exe = find_tool("micropython")
    require(exe is not None, "micropython")
    assert exe is not None
    script = tmp_path / "mqtt_node.py"
    script.write_text(f"""
import json, node
from mqtt_link import Backoff, MqttTransport
from scale import CAL_DEFAULT
from umqtt.simple import MQTTClient
cfg = dict(node.CONFIG)
cfg.update({{"wdt_ms": 0, "role": "scale", "hb_ms": 500}})
tx = MqttTransport(MQTTClient("{NODE}", "127.0.0.1", {broker.port}, keepalive=30), "{NODE}",
                   backoff=Backoff(100, 800))
app = node.App(tx, cfg, dict(CAL_DEFAULT))
app.run(run_ms=9000)
print(json.dumps({{"attempts": tx.attempts, "delay": tx.backoff.delay,
                  "samples": app.scale.samples, "connected": tx.connected}}))
""")
    watcher = Watcher(broker.port)
    env = {**os.environ, "MICROPYPATH": f"{HOSTSIM}:{APP}:.frozen"}
    node = subprocess.Popen(
        [exe, str(script)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        watcher.wait(lambda t, p: t == f"{BASE}/status" and p == b"online")
        _, hello = watcher.wait(lambda t, p: t == f"{BASE}/up" and b'"hello"' in p)
        assert lines_of(hello)["node"] == NODE
        cmd = json.dumps({"v": 1, "t": "cmd", "id": 5, "op": "identify", "args": {"s": 1}})
        framed = b"@" + cmd.encode() + b"*%08x" % zlib.crc32(cmd.encode())
        watcher.c.publish(f"{BASE}/cmd", framed)
        _, ack = watcher.wait(lambda t, p: t == f"{BASE}/up" and b'"ack"' in p)
        assert lines_of(ack)["id"] == 5 and lines_of(ack)["ok"] is True
        watcher.close()

        broker.stop()  # outage: the node must keep sampling and retry with bounded backoff
        time.sleep(2.5)
        broker.start()
        watcher = Watcher(broker.port)
        _, hello2 = watcher.wait(lambda t, p: t == f"{BASE}/up" and b'"hello"' in p)
        assert lines_of(hello2)["boot"] == lines_of(hello)["boot"]  # same boot, new session
        out, err = node.communicate(timeout=30)
        r = json.loads(out.strip().splitlines()[-1])
        assert r["connected"] is True and r["delay"] == 0
        assert r["attempts"] >= 4  # 100, 200, 400, 800, 800 ms ... during the 2.5 s outage
        assert r["samples"] > 400  # ~80 SPS for 9 s, outage included
        # the process ended without DISCONNECT: the broker publishes the Last Will
        watcher.wait(lambda t, p: t == f"{BASE}/status" and p == b"offline")
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
        watcher.close()
