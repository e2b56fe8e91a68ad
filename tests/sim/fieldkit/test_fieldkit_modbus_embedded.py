"""`edge-agent sim fieldkit` with the embedded broker (amqtt, MQTT 3.1.1) and a Modbus BMS.

SunSpec over Modbus TCP: self-test green, identify verified, then the Modbus simulator stopped.
A vendor register map over Modbus RTU on a pty: self-test green.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.signing.events import verify_event
from edge_agent.signing.trust import TrustStore
from tests.support.fieldkit import (
    EventCatcher,
    FieldKitProcess,
    agent,
    blocking,
    line,
    running_fieldkit,
    verdicts,
)

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FieldKitProcess]:
    with running_fieldkit(tmp_path_factory.mktemp("fieldkit"), "--bms", "sunspec") as b:
        yield b


def test_embedded_broker_config_is_mqtt_311(kit: FieldKitProcess) -> None:
    plain = kit.plain_config()
    assert plain["uplink"]["mqtt"]["protocol"] == "3.1.1"
    assert plain["bms"]["profile"] == "sunspec-battery"
    assert plain["bms"]["modbus"]["url"].startswith("tcp://127.0.0.1:")
    assert "can" not in plain["bms"]
    assert "embedded amqtt" in kit.part("broker")["where"]


def test_selftest_all_required_pass(kit: FieldKitProcess) -> None:
    rc, doc = kit.selftest()
    seen = verdicts(doc)
    assert rc == 0, doc
    for name in ("modbus", "camera", "nodes", "scale", "broker", "key"):
        assert seen[name] == "PASS" and line(doc, name)["required"], (name, doc)
    assert not line(doc, "can.link")["required"]  # the pack is read over Modbus
    assert "can.bms" not in seen


def test_identify_publishes_a_verified_event(kit: FieldKitProcess) -> None:
    mqtt = kit.plain_config()["uplink"]["mqtt"]
    catcher = EventCatcher(mqtt["host"], mqtt["port"])
    try:
        out = agent("--config", str(kit.config), "identify", "--json", "--wait", "10")
        assert out.returncode == 0, out.stderr
        answer = json.loads(out.stdout)
        signed = catcher.wait_event()
    finally:
        catcher.close()
    verified = verify_event(signed, TrustStore.load(Path(kit.state["trust"])))
    assert verified.event.event_id == answer["event"]["event_id"]
    assert verified.kid.hex() == answer["event"]["kid"]
    bms = verified.event.readings.bms
    assert bms is not None and bms.transport == "modbus" and bms.methods == ("sunspec",)
    device = bms.identity.device  # SunSpec model 1 names the BMS device, not the pack
    assert device is not None and device.manufacturer is not None and device.manufacturer.value


def test_no_modbus_answer_after_the_simulator_stops(kit: FieldKitProcess) -> None:
    kit.stop_part("bms-modbus")
    rc, doc = kit.selftest()
    assert rc == 1 and blocking(doc) == ["modbus"], verdicts(doc)
    assert line(doc, "modbus")["next_step"]
    assert "bms-modbus stopped" in kit.log() or kit.proc.poll() is None


def test_regmap_over_modbus_rtu_on_a_pty(tmp_path: Path) -> None:
    with running_fieldkit(tmp_path, "--bms", "regmap", "--modbus", "rtu") as rtu:
        url = rtu.plain_config()["bms"]["modbus"]["url"]
        assert url.startswith("rtu:///dev/pts/") and "baud=" in url
        rc, doc = rtu.selftest(None, "--modbus-register", "102")  # the identity block
        assert rc == 0 and verdicts(doc)["modbus"] == "PASS", doc
        assert "register 102 = [" in line(doc, "modbus")["detail"]
        assert rtu.plain_config()["bms"]["profile"] == "byd-batterybox"
        children = [p["pid"] for p in rtu.state["parts"] if p["pid"]]
    # running_fieldkit sent SIGTERM: a clean stop of the kit and every simulator child
    assert rtu.proc.returncode == 0 and "field kit stopped" in rtu.log()
    assert len(children) == 2
    for pid in children:
        assert not Path(f"/proc/{pid}").exists(), f"simulator {pid} still running"


@pytest.mark.parametrize(("kind", "profile"), [("uds", "uds-generic"), ("dbc", "tesla-model3")])
def test_other_can_bms_kinds_pass(tmp_path: Path, kind: str, profile: str) -> None:
    with running_fieldkit(tmp_path, "--bms", kind) as other:
        assert other.plain_config()["bms"]["can"]["bitrate"] == 500000
        rc, doc = other.selftest(None, "--only", "can")
        assert rc == 0, doc
        bms = line(doc, "can.bms")
        assert bms["verdict"] == "PASS" and profile in bms["detail"], bms


def test_children_die_with_a_killed_bench(tmp_path: Path) -> None:
    with running_fieldkit(tmp_path, "--bms", "sunspec") as killed:
        children = [p["pid"] for p in killed.state["parts"] if p["pid"]]
        assert killed.state["pid"] == killed.proc.pid and len(children) == 2
        killed.proc.kill()  # no chance to clean up: the kernel's parent-death signal does it
        killed.proc.wait(10)
        deadline = time.monotonic() + 20
        while any(Path(f"/proc/{pid}").exists() for pid in children):
            assert time.monotonic() < deadline, "simulators outlived the killed kit"
            time.sleep(0.05)
