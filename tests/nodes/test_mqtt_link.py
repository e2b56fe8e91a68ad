"""Wi-Fi node path: real firmware with its MQTT transport <-> real Mosquitto <-> MqttNodeLink."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.nodes.mqtt_link import MqttNodeLink
from edge_agent.nodes.readings import read_weight
from edge_agent.sim.node_sim import (
    FIRMWARE,
    SIM_COUNTS_PER_KG,
    SIM_OFFSET,
    board_file,
    micropython_path,
)
from tests.support.nodes import Mosquitto, require_micropython, wait_for

NODE = "e66141040327582a"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path)
    b.start()
    yield b
    b.stop()


def test_mqtt_node_weight_command_and_last_will(broker: Mosquitto, tmp_path: Path) -> None:
    require_micropython()
    board = tmp_path / "board"
    board.mkdir()
    (board / "calib.json").write_text(
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
    ctrl = tmp_path / "ctrl.json"
    ctrl.write_text(json.dumps({"weight_kg": 42.0, "gen": 1}))
    (board / "run.py").write_text(f"""
import node, store
from mqtt_link import Backoff, MqttTransport
from scale import CAL_DEFAULT
from umqtt.simple import MQTTClient
cfg = dict(node.CONFIG)
cfg.update({{"wdt_ms": 0, "role": "scale", "hb_ms": 500}})
cal = dict(CAL_DEFAULT)
cal.update(store.load("calib.json", {{}}))
tx = MqttTransport(MQTTClient("{NODE}", "127.0.0.1", {broker.port}, keepalive=30), "{NODE}",
                   backoff=Backoff(100, 800))
node.App(tx, cfg, cal).run()
""")
    env = {
        **os.environ,
        "MICROPYPATH": f"{FIRMWARE / 'hostsim'}:{FIRMWARE / 'app'}:.frozen",
        "NODE_SIM_CTRL": str(ctrl),
    }
    exe = micropython_path()
    assert exe is not None
    proc = subprocess.Popen(
        [exe, "run.py"], cwd=board, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )

    async def main() -> None:
        async with MqttNodeLink("127.0.0.1", broker.port, NODE, hello_timeout_s=15) as link:
            assert link.hello is not None and link.hello.role == "scale"
            await wait_for(lambda: link.node_online)
            r = await read_weight(link, timeout=10)
            assert r.status == "ok" and r.mass_kg == pytest.approx(42.0, abs=0.05)
            ack = await link.command("tare", timeout=8)
            assert ack.result["tare_g"] == 42000
            proc.kill()  # the node drops off without DISCONNECT: the broker sends its Will
            await wait_for(lambda: not link.node_online, timeout=60)
            assert link.last_error == "node offline (Last Will)"

    try:
        asyncio.run(main())
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
