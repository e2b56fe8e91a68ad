"""Self-test against real local parts: all pass, then each part broken in turn."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.selftest import Report, Verdict
from tests.selftest.local_parts import LocalParts, parts_fixture
from tests.support.hardware import label_image


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[LocalParts]:
    yield from parts_fixture(tmp_path)


def verdicts(report: Report) -> dict[str, str]:
    return {r.name: r.verdict.value for r in report.results}


def test_all_parts_up_pass_and_exit_zero(bench: LocalParts) -> None:
    report = bench.run()
    assert verdicts(report) == {
        "can.link": "PASS",
        "can.frames": "PASS",
        "modbus": "PASS",
        "camera": "PASS",
        "nodes": "PASS",
        "scale": "PASS",
        "broker": "PASS",
        "key": "PASS",
        "clock": "PASS",
        "disk": "PASS",
        "outbox": "PASS",
    }
    assert report.exit_code == 0
    assert "register 0 = [1000, 1001]" in report.result("modbus").detail
    assert "label-001.png" in report.result("camera").detail
    assert "as 'station'" in report.result("broker").detail
    assert "scale+sensors" in report.result("nodes").detail  # the node's hello, not a bare port
    assert "stable at 0.000 kg" in report.result("scale").detail
    frames = report.result("can.frames").detail
    assert "from 3 ids" in frames
    assert report.result("can.link").required and not report.result("modbus").required


def _expect_only_failure(
    report: Report, name: str, step_words: str, *, also: tuple[str, ...] = ()
) -> None:
    failing = [r.name for r in report.results if r.verdict is Verdict.FAIL]
    assert failing == [name, *also], verdicts(report)
    line = report.result(name)
    assert line.required
    assert step_words in line.next_step
    assert report.exit_code == 1


def test_no_modbus_answer(bench: LocalParts, tmp_path: Path) -> None:
    from tests.support.hardware import free_port

    config = bench.config(
        bms={"profile": "bench-modbus", "modbus": {"url": f"tcp://127.0.0.1:{free_port()}"}},
    )
    report = bench.run(config)
    _expect_only_failure(report, "modbus", "IP address")
    # With a Modbus pack the CAN lines stop being required.
    assert not report.result("can.link").required


def test_modbus_wrong_device_id_is_no_answer(bench: LocalParts) -> None:
    config = bench.config(bms={"profile": "bench-modbus", "modbus": {"device_id": 7}})
    report = bench.run(config, modbus_register=0)
    line = report.result("modbus")
    assert line.verdict in {Verdict.FAIL, Verdict.WARN}, line
    assert "device 7" in line.detail


def test_camera_missing(bench: LocalParts) -> None:
    report = bench.run(bench.config(label={"source": str(bench.tmp / "no-camera")}))
    _expect_only_failure(report, "camera", "label.source")
    assert "does not exist" in report.result("camera").detail


def test_camera_blurred_frame_fails_the_gate(bench: LocalParts) -> None:
    label_image(bench.tmp / "blurred" / "label.png", blur=6)
    report = bench.run(bench.config(label={"source": str(bench.tmp / "blurred")}))
    _expect_only_failure(report, "camera", "focus")
    detail = report.result("camera").detail
    assert "blurred" in detail or "out of focus" in detail  # basic gate / vision package's gate


def test_broker_down(bench: LocalParts) -> None:
    bench.broker.stop()
    report = bench.run()
    _expect_only_failure(report, "broker", "start the broker")


def test_broker_wrong_password(bench: LocalParts) -> None:
    report = bench.run(bench.config(uplink={"mqtt": {"password": "wrong"}}))
    _expect_only_failure(report, "broker", "password")
    assert "refused the credentials" in report.result("broker").detail


def test_key_world_readable(bench: LocalParts) -> None:
    (bench.tmp / "keys" / "station.key.pem").chmod(0o644)
    report = bench.run()
    _expect_only_failure(report, "key", "chmod 600")
    assert "0644" in report.result("key").detail


def test_key_missing_and_mismatched(bench: LocalParts, tmp_path: Path) -> None:
    from tests.support.hardware import key_dir

    other = key_dir(tmp_path / "other")
    (bench.tmp / "keys" / "station.pub.pem").write_bytes((other / "station.pub.pem").read_bytes())
    report = bench.run()
    _expect_only_failure(report, "key", "re-export")
    (bench.tmp / "keys" / "station.key.pem").unlink()
    _expect_only_failure(bench.run(), "key", "edge-agent keys init")


def test_node_unplugged(bench: LocalParts) -> None:
    report = bench.run(bench.config(nodes={"ports": [str(bench.tmp / "dev" / "edge-node-scale")]}))
    _expect_only_failure(report, "nodes", "plug the node", also=("scale",))
    assert report.result("scale").next_step == "fix the Nodes line first"


def test_node_glob_matching_nothing(bench: LocalParts) -> None:
    report = bench.run(bench.config(nodes={"ports": [str(bench.tmp / "dev" / "edge-node-*")]}))
    _expect_only_failure(report, "nodes", "udev", also=("scale",))


def test_disk_below_outbox_minimum(bench: LocalParts) -> None:
    report = bench.run(bench.config(uplink={"outbox": {"min_free_disk_bytes": 2**50}}))
    _expect_only_failure(report, "disk", "free space")


def test_can_bus_silent_warns_but_does_not_block(bench: LocalParts) -> None:
    report = bench.run(
        bench.config(bms={"can": {"channel": "selftest-silent-channel"}}), frame_window_s=0.3
    )
    assert report.result("can.frames").verdict is Verdict.WARN
    assert "12 V" in report.result("can.frames").next_step
    assert report.exit_code == 0


def test_cli_json_all_pass_then_broken(
    bench: LocalParts, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = bench.tmp / "edge-agent.toml"
    config_file.write_text(_toml(bench), encoding="utf-8")
    # The virtual CAN bus lives in this process, so run the CLI in-process.
    rc = main(["selftest", "--config", str(config_file), "--json", "--frame-window", "0.5"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["ok"] is True and doc["exit_code"] == 0
    assert {c["name"]: c["verdict"] for c in doc["checks"]}["broker"] == "PASS"
    bench.broker.stop()
    rc = main(["selftest", "--config", str(config_file), "--json", "--only", "broker"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert [(c["name"], c["verdict"]) for c in doc["checks"]] == [("broker", "FAIL")]
    assert doc["checks"][0]["next_step"].startswith("start the broker")


def test_cli_table_names_failing_line(
    bench: LocalParts, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = bench.tmp / "edge-agent.toml"
    config_file.write_text(_toml(bench), encoding="utf-8")
    (bench.tmp / "keys" / "station.key.pem").chmod(0o640)
    rc = main(["selftest", "--config", str(config_file), "--only", "key", "--only", "disk"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "Signing key" in out and "FAIL" in out and "chmod 600" in out
    assert "required check(s) failed: key" in out


def _toml(bench: LocalParts) -> str:
    p = bench.plain
    mqtt = p["uplink"]["mqtt"]
    return f"""
[station]
data_dir = "{p["station"]["data_dir"]}"
[signing]
key_dir = "{p["signing"]["key_dir"]}"
[bms]
profile = "bench-can"
profile_dirs = ["{p["bms"]["profile_dirs"][0]}"]
[bms.can]
interface = "virtual"
channel = "{bench.channel}"
[bms.modbus]
url = "{p["bms"]["modbus"]["url"]}"
timeout_s = 1.0
[label]
source = "{p["label"]["source"]}"
backend = "files"
[nodes]
ports = ["{bench.node_port}"]
[uplink.mqtt]
host = "{mqtt["host"]}"
port = {mqtt["port"]}
username = "{mqtt["username"]}"
password = "{mqtt["password"]}"
[uplink.outbox]
min_free_disk_bytes = 1024
"""
