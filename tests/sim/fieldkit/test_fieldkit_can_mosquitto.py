"""`edge-agent sim fieldkit` (GB/T 27930 BMS on slcan over a pty pair) with a real Mosquitto.

One kit for the module: self-test all green, an identification verified end to end, then each
part broken in turn (wrong bitrate, camera missing, key world-readable, broker down, node
unplugged - the last one is not repairable, so it runs last).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.event_codec import event_from_plain
from edge_agent.signing.events import verify_event
from edge_agent.signing.trust import TrustStore
from tests.support.fieldkit import (
    EventCatcher,
    FieldKitProcess,
    agent,
    agent_env,
    blocking,
    line,
    running_fieldkit,
    verdicts,
)
from tests.support.mosquitto import MosquittoBroker

PROFILE_DIR = Path(__file__).resolve().parents[3] / "edge_agent" / "bms" / "profiles"
pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    b = MosquittoBroker(tmp_path_factory.mktemp("mosquitto"), persistence=False)
    b.start()
    try:
        yield b
    finally:
        b.kill()


@pytest.fixture(scope="module")
def kit(
    tmp_path_factory: pytest.TempPathFactory, broker: MosquittoBroker
) -> Iterator[FieldKitProcess]:
    with running_fieldkit(
        tmp_path_factory.mktemp("fieldkit"), "--broker", f"{broker.host}:{broker.port}"
    ) as b:
        yield b


def test_written_config_describes_the_running_parts(
    kit: FieldKitProcess, broker: MosquittoBroker
) -> None:
    plain = kit.plain_config()
    assert plain["bms"]["profile"] == "gbt27930-generic"
    can = plain["bms"]["can"]
    assert (
        can["interface"] == "slcan" and can["bitrate"] == 250000 and Path(can["channel"]).exists()
    )
    assert Path(plain["nodes"]["ports"][0]).exists()
    assert plain["uplink"]["mqtt"]["port"] == broker.port
    assert plain["uplink"]["mqtt"].get("protocol", "auto") == "auto"  # Mosquitto speaks MQTT 5
    parts = {p["name"]: p for p in kit.state["parts"]}
    assert set(parts) == {"bms-can", "node", "camera", "broker", "key", "control"}
    for name in ("bms-can", "node"):
        os.kill(parts[name]["pid"], 0)  # a live process of its own
    assert "slcan" in kit.log() and "MicroPython" in kit.log()


def test_selftest_all_required_pass(kit: FieldKitProcess) -> None:
    rc, doc = kit.selftest()
    seen = verdicts(doc)
    assert rc == 0 and doc["ok"] is True, seen
    for name in ("can.link", "can.bms", "camera", "nodes", "scale", "broker", "key"):
        assert seen[name] == "PASS", (name, doc)
        assert line(doc, name)["required"] is True
    assert seen["modbus"] == "SKIP"
    assert "manufacturer CATL" in line(doc, "can.bms")["detail"]
    assert "stable at 0.000 kg" in line(doc, "scale")["detail"]
    assert "scale+sensors" in line(doc, "nodes")["detail"]
    assert [c for c in doc["checks"] if c["required"] and c["verdict"] != "PASS"] in (
        [],
        [line(doc, "disk")] if seen["disk"] == "WARN" else [],
    )


def test_identify_publishes_a_verified_event(kit: FieldKitProcess, broker: MosquittoBroker) -> None:
    catcher = EventCatcher(broker.host, broker.port)
    try:
        out = agent("--config", str(kit.config), "identify", "--json", "--wait", "10")
        assert out.returncode == 0, out.stderr
        answer = json.loads(out.stdout)
        signed = catcher.wait_event()
    finally:
        catcher.close()
    event = event_from_plain(answer["event"])
    assert answer["published"] is True
    trust = TrustStore.load(Path(kit.state["trust"]))
    verified = verify_event(signed, trust)
    assert verified.event.event_id == event.event_id
    assert verified.event.station == "fieldkit-1" and verified.event.site == "fieldkit-site"
    bms = verified.event.readings.bms
    assert bms is not None and bms.status == "ok"
    assert bms.identity.vin is not None and bms.identity.vin.value == "LSVAU2180N2183294"
    label = next(p for p in (kit.workdir / "camera").glob("manifest.json"))
    code = json.loads(label.read_text())[0]["code"]
    assert verified.event.pack.pack_code == code


def test_wrong_can_bitrate_fails_the_bms_line(kit: FieldKitProcess) -> None:
    # the station's pack profile says 500 kbit/s; the simulated pack talks at 250 kbit/s, and
    # the pty link (like a real bus) passes nothing between ends at different bitrates
    profiles = kit.workdir / "profiles"
    profiles.mkdir(exist_ok=True)
    text = (PROFILE_DIR / "gbt27930-generic.toml").read_text(encoding="utf-8")
    assert "bitrate = 250000" in text
    text = text.replace("bitrate = 250000", "bitrate = 500000")
    text = text.replace('name = "gbt27930-generic"', 'name = "gbt27930-500k"')
    (profiles / "gbt27930-500k.toml").write_text(text, encoding="utf-8")
    wrong = kit.variant(
        {"bms": {"profile": "gbt27930-500k", "profile_dirs": [str(profiles)]}}, "wrong-bitrate"
    )
    rc, doc = kit.selftest(wrong)
    assert rc == 1 and blocking(doc) == ["can.bms"], verdicts(doc)
    failing = line(doc, "can.bms")
    assert "no BMS answer" in failing["detail"] and "500000 bit/s" in failing["detail"]
    assert "talks at 500000 bit/s" in failing["next_step"] and "250000" in failing["next_step"]
    rc, doc = kit.selftest()  # the same kit with the right profile answers again
    assert rc == 0 and verdicts(doc)["can.bms"] == "PASS"


def test_camera_missing(kit: FieldKitProcess) -> None:
    gone = kit.variant({"label": {"source": str(kit.workdir / "no-camera")}}, "no-camera")
    rc, doc = kit.selftest(gone)
    assert rc == 1 and blocking(doc) == ["camera"], verdicts(doc)
    assert line(doc, "camera")["next_step"]


def test_key_world_readable(kit: FieldKitProcess) -> None:
    key = kit.workdir / "keys" / "station.key.pem"
    key.chmod(0o644)
    try:
        rc, doc = kit.selftest()
    finally:
        key.chmod(0o600)
    assert rc == 1 and blocking(doc) == ["key"], verdicts(doc)
    assert "chmod 600" in line(doc, "key")["next_step"]


def test_broker_down(kit: FieldKitProcess, broker: MosquittoBroker) -> None:
    broker.stop()
    try:
        rc, doc = kit.selftest(None, "--only", "broker")
    finally:
        broker.start()
    assert rc == 1 and blocking(doc) == ["broker"], verdicts(doc)
    assert line(doc, "broker")["next_step"].startswith("start the broker")
    rc, doc = kit.selftest(None, "--only", "broker")
    assert rc == 0 and verdicts(doc) == {"broker": "PASS"}


def test_run_serves_identify_over_its_control_socket(
    kit: FieldKitProcess, broker: MosquittoBroker, tmp_path: Path
) -> None:
    catcher = EventCatcher(broker.host, broker.port)
    out_path = tmp_path / "run.out"
    with open(out_path, "w", encoding="utf-8") as sink:
        service = subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "--config", str(kit.config), "run"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**agent_env(), "COLUMNS": "200"},
        )
    try:
        deadline = time.monotonic() + 60
        while "ready" not in out_path.read_text():
            assert service.poll() is None, out_path.read_text()
            assert time.monotonic() < deadline, out_path.read_text()
            time.sleep(0.05)
        out = agent("--config", str(kit.config), "identify", "--json", "--wait", "10")
        assert out.returncode == 0, out.stderr
        answer = json.loads(out.stdout)
        signed = catcher.wait_event()
        # docking the pack on the kit is a dock trigger: the service identifies by itself
        kit.control("dock")
        docked = catcher.wait_event(count=2)
    finally:
        kit.control("undock")
        catcher.close()
        service.send_signal(signal.SIGTERM)
        rc = service.wait(30)
    assert rc == 0
    trust = TrustStore.load(Path(kit.state["trust"]))
    verified = verify_event(signed, trust)
    assert verified.event.event_id == answer["event"]["event_id"]
    assert verified.event.trigger == "request"
    assert answer["event"]["event_id"] in out_path.read_text()  # the service printed it
    by_dock = verify_event(docked, trust).event
    assert by_dock.trigger in ("dock_switch", "weight") and by_dock.seq > verified.event.seq


def test_docked_pack_fails_scale_zero_then_identifies(kit: FieldKitProcess) -> None:
    kit.control("dock")
    try:
        rc, doc = kit.selftest(None, "--only", "nodes", "--only", "scale")
        assert rc == 1 and blocking(doc) == ["scale"], verdicts(doc)
        scale = line(doc, "scale")
        assert "455.000 kg" in scale["detail"]
        assert scale["next_step"] == "remove the load and tare: edge-agent node tare"
        out = agent("--config", str(kit.config), "identify", "--json", "--wait", "10")
        assert out.returncode == 0, out.stderr
        event = json.loads(out.stdout)["event"]
    finally:
        kit.control("undock")
    assert event["readings"]["weight"]["mass_kg"] == pytest.approx(455.0)
    checks = {c["name"]: c["status"] for c in event["checks"]}
    assert checks["weight_vs_energy"] == "pass", event["checks"]
    assert checks["label_vs_bms.battery_type"] == "pass"
    rc, doc = kit.selftest(None, "--only", "scale")
    assert rc == 0 and verdicts(doc) == {"scale": "PASS"}, doc


def test_node_unplugged_last(kit: FieldKitProcess) -> None:
    kit.stop_part("node")
    rc, doc = kit.selftest()
    assert rc == 1, verdicts(doc)
    assert blocking(doc) == ["nodes", "scale"]
    nodes = line(doc, "nodes")
    assert "no hello" in nodes["detail"]
    assert "plug the node" in nodes["next_step"] or "node list" in nodes["next_step"]
    assert line(doc, "scale")["next_step"] == "fix the Nodes line first"
