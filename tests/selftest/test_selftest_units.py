"""Runner, registry, CAN link parsing (fake sysfs), Modbus URL parsing, camera and host checks."""

from __future__ import annotations

import json
import select
import shutil
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.bms.modbus.link import parse_url as parse_modbus_url
from edge_agent.config import config_from_plain
from edge_agent.errors import ConfigError
from edge_agent.selftest import (
    CheckContext,
    Verdict,
    failed,
    get_check,
    passed,
    register_check,
    run_selftest,
    unregister_check,
)
from edge_agent.selftest.checks.camera import check_camera, frame_quality
from edge_agent.selftest.checks.can import (
    check_can,
    link_bitrate,
    parse_ip_link_json,
    socketcan_link,
)
from edge_agent.vision.settings import LabelSettings
from tests.conftest import require_real_part
from tests.support.hardware import fake_sysfs_can, ip_link_can_json, label_image


def _ctx(tmp: Path, **plain: object) -> CheckContext:
    return CheckContext(
        config=config_from_plain(plain), sysfs_root=tmp / "sys", run_root=tmp / "run"
    )


def _socketcan(
    tmp: Path,
    bitrate: int,
    *,
    ip_bitrate: int | None,
    operstate: str = "up",
    state: str = "ERROR-ACTIVE",
) -> CheckContext:
    fake_sysfs_can(tmp / "sys", "can0", operstate=operstate)
    config = config_from_plain(
        {"bms": {"can": {"interface": "socketcan", "channel": "can0", "bitrate": bitrate}}}
    )

    def ip_link(ifname: str) -> dict[str, object] | None:
        assert ifname == "can0"
        if ip_bitrate is None:
            return None
        found = parse_ip_link_json(ip_link_can_json(ifname, ip_bitrate, state))
        return dict(found) if found else None

    return CheckContext(config=config, sysfs_root=tmp / "sys", ip_link=ip_link)


def test_socketcan_wrong_bitrate_fails_with_network_file_step(tmp_path: Path) -> None:
    ctx = _socketcan(tmp_path, 250_000, ip_bitrate=500_000)
    out = socketcan_link(ctx, ctx.config.bms.can)
    assert out.verdict is Verdict.FAIL
    assert "500000 bit/s, config wants 250000" in out.detail
    assert "BitRate=250000" in out.next_step and "80-can0.network" in out.next_step
    # The whole CAN check stops at the link line and does not try to open the bus.
    lines = check_can(ctx)
    assert [(o.line, o.verdict) for o in lines] == [("link", Verdict.FAIL)]


def test_socketcan_right_bitrate_passes(tmp_path: Path) -> None:
    ctx = _socketcan(tmp_path, 500_000, ip_bitrate=500_000)
    out = socketcan_link(ctx, ctx.config.bms.can)
    assert out.verdict is Verdict.PASS and "up at 500000 bit/s, state ERROR-ACTIVE" in out.detail


def test_socketcan_down_missing_busoff_unknown(tmp_path: Path) -> None:
    down = _socketcan(tmp_path / "a", 250_000, ip_bitrate=250_000, operstate="down")
    out = socketcan_link(down, down.config.bms.can)
    assert out.verdict is Verdict.FAIL and "networkctl up can0" in out.next_step
    busoff = _socketcan(tmp_path / "b", 250_000, ip_bitrate=250_000, state="BUS-OFF")
    assert "termination" in socketcan_link(busoff, busoff.config.bms.can).next_step
    unknown = _socketcan(tmp_path / "c", 250_000, ip_bitrate=None)
    assert socketcan_link(unknown, unknown.config.bms.can).verdict is Verdict.WARN
    config = config_from_plain({"bms": {"can": {"interface": "socketcan", "channel": "can1"}}})
    missing = CheckContext(config=config, sysfs_root=tmp_path / "empty")
    out = socketcan_link(missing, config.bms.can)
    assert out.verdict is Verdict.FAIL and "dtoverlay" in out.next_step


def test_socketcan_vcan_passes_without_bitrate(tmp_path: Path) -> None:
    fake_sysfs_can(tmp_path / "sys", "vcan0", operstate="unknown")
    config = config_from_plain({"bms": {"can": {"interface": "socketcan", "channel": "vcan0"}}})
    vcan = '[{"ifname":"vcan0","operstate":"UNKNOWN","linkinfo":{"info_kind":"vcan"}}]'
    ctx = CheckContext(
        config=config, sysfs_root=tmp_path / "sys", ip_link=lambda _n: parse_ip_link_json(vcan)
    )
    out = socketcan_link(ctx, config.bms.can)
    assert out.verdict is Verdict.PASS and "virtual CAN (vcan)" in out.detail


def test_ip_link_parser_on_real_ip_output() -> None:
    tool = shutil.which("ip")
    require_real_part(tool is not None, "iproute2 `ip`")
    assert tool is not None
    real = subprocess.run(
        [tool, "-details", "-json", "link", "show", "dev", "lo"],
        check=False,
        capture_output=True,
        text=True,
    )
    require_real_part(real.returncode == 0, f"`ip -json` (iproute2 said: {real.stderr.strip()})")
    link = parse_ip_link_json(real.stdout)
    assert link is not None and link["ifname"] == "lo"
    assert link_bitrate(link) is None  # not a CAN link: no bittiming
    canned = parse_ip_link_json(ip_link_can_json("can0", 250_000))
    assert canned is not None and link_bitrate(canned) == 250_000


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.recursive(
            st.none() | st.integers() | st.text(max_size=5),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
        ).map(json.dumps),
    )
)
def test_ip_link_parser_never_crashes(text: str) -> None:
    link = parse_ip_link_json(text)
    if link is not None:
        rate = link_bitrate(link)
        assert rate is None or isinstance(rate, int)


def test_modbus_url_forms() -> None:
    tcp = parse_modbus_url("tcp://10.0.0.5:1502")
    assert (tcp.kind, tcp.host, tcp.port) == ("tcp", "10.0.0.5", 1502)
    rtu = parse_modbus_url("rtu:///dev/edge-rs485?baud=9600&parity=e")
    assert (rtu.kind, rtu.serial_port, rtu.baudrate, rtu.parity) == (
        "rtu",
        "/dev/edge-rs485",
        9600,
        "E",
    )
    for bad in [
        "",
        "http://x",
        "tcp://",
        "rtu:///dev/x?baud=fast",
        "rtu:///dev/x?parity=Q",
        "tcp://h:99999",
    ]:
        with pytest.raises(ConfigError):
            parse_modbus_url(bad)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_modbus_url_parser_only_raises_config_error(url: str) -> None:
    try:
        target = parse_modbus_url(url)
    except ConfigError:
        return
    assert target.kind in {"tcp", "rtu"}


def test_quality_gate_verdicts(tmp_path: Path) -> None:
    """The camera check judges frames with vision.quality, the station's own gate."""
    settings_ = LabelSettings(min_sharpness=60.0)
    sharp = cv2.imread(str(label_image(tmp_path / "s.png")))
    blurred = cv2.imread(str(label_image(tmp_path / "b.png", blur=6)))
    assert frame_quality(sharp, settings_).passed
    res = frame_quality(blurred, settings_)
    assert not res.passed and res.reasons == ("label out of focus",) and res.sharpness < 60
    dark = np.full((100, 100), 10, dtype=np.uint8)
    assert "too dark" in frame_quality(dark, settings_).reasons
    white = np.full((100, 100, 3), 255, dtype=np.uint8)
    assert "overexposed" in frame_quality(white, settings_).reasons


def test_camera_check_applies_every_label_threshold(tmp_path: Path) -> None:
    """Not only min_sharpness: the old adapter dropped the brightness and glare limits."""
    label_image(tmp_path / "cam" / "a.png")
    source = {"source": str(tmp_path / "cam"), "backend": "files"}
    assert check_camera(_ctx(tmp_path, label=source)).verdict is Verdict.PASS
    picky = _ctx(tmp_path, label={**source, "min_brightness": 250.0})
    out = check_camera(picky)
    assert out.verdict is Verdict.FAIL and out.detail.endswith("fails the quality gate: too dark")
    assert "focus" in out.next_step


def test_camera_check_reads_pgm_through_the_folder_camera(tmp_path: Path) -> None:
    """The Camera seam's files backend serves .pgm (the old check's own suffix list lost it)."""
    gray = cv2.imread(str(label_image(tmp_path / "label.png")), cv2.IMREAD_GRAYSCALE)
    (tmp_path / "cam").mkdir()
    assert cv2.imwrite(str(tmp_path / "cam" / "label-001.pgm"), gray)
    out = check_camera(_ctx(tmp_path, label={"source": str(tmp_path / "cam"), "backend": "files"}))
    assert out.verdict is Verdict.PASS, out
    assert out.detail.startswith(f"640x480 frame from label-001.pgm of 1 in {tmp_path / 'cam'}")


def test_camera_check_opens_what_the_station_opens(tmp_path: Path) -> None:
    """A folder with backend opencv: the station cannot open it, so the check fails too."""
    label_image(tmp_path / "cam" / "a.png")
    out = check_camera(_ctx(tmp_path, label={"source": str(tmp_path / "cam"), "backend": "opencv"}))
    assert out.verdict is Verdict.FAIL and "cannot open camera" in out.detail
    assert "label.source" in out.next_step
    auto = check_camera(_ctx(tmp_path, label={"source": str(tmp_path / "cam"), "backend": "auto"}))
    assert auto.verdict is Verdict.PASS and "a.png of 1 in" in auto.detail


def test_camera_single_image_and_unreadable(tmp_path: Path) -> None:
    img = label_image(tmp_path / "one.jpg")
    assert check_camera(_ctx(tmp_path, label={"source": str(img)})).verdict is Verdict.PASS
    junk = tmp_path / "junk" / "x.png"
    junk.parent.mkdir()
    junk.write_bytes(b"not a png")
    out = check_camera(_ctx(tmp_path, label={"source": str(junk.parent), "backend": "files"}))
    assert out.verdict is Verdict.FAIL and "not a readable image" in out.detail


def test_registered_check_replaces_and_runs(tmp_path: Path) -> None:
    original = get_check("scale")
    register_check(
        "scale",
        lambda ctx: passed("zero 0.000 kg, stable"),
        title="Scale at zero",
        required=lambda cfg: bool(cfg.nodes.ports),
        replace=True,
    )
    try:
        report = run_selftest(_ctx(tmp_path, nodes={"ports": ["/dev/null"]}), only=["scale"])
        line = report.result("scale")
        assert (line.verdict, line.detail, line.required) == (
            Verdict.PASS,
            "zero 0.000 kg, stable",
            True,
        )
        assert get_check("scale").order == original.order  # keeps its place in the table
        with pytest.raises(ValueError):
            register_check("scale", lambda ctx: passed("x"), title="dup")
    finally:
        register_check(
            original.name,
            original.func,
            title=original.title,
            required=original.required,
            timeout_s=original.timeout_s,
            order=original.order,
            replace=True,
        )


def test_hung_check_times_out_and_crash_is_reported(tmp_path: Path) -> None:
    release = threading.Event()

    def hang(_ctx: CheckContext) -> object:
        release.wait(30)
        return passed("late")

    def crash(_ctx: CheckContext) -> object:
        raise RuntimeError("driver exploded")

    register_check("test-hang", hang, title="Hang", timeout_s=0.3)  # type: ignore[arg-type]
    register_check("test-crash", crash, title="Crash", timeout_s=5)  # type: ignore[arg-type]
    try:
        report = run_selftest(_ctx(tmp_path), only=["test-hang", "test-crash"])
    finally:
        release.set()
        unregister_check("test-hang")
        unregister_check("test-crash")
    hung = report.result("test-hang")
    assert hung.verdict is Verdict.FAIL and "no answer within 0.3 s" in hung.detail
    crashed = report.result("test-crash")
    assert crashed.verdict is Verdict.FAIL and "RuntimeError: driver exploded" in crashed.detail
    assert report.exit_code == 1


def test_checks_run_concurrently(tmp_path: Path) -> None:
    barrier = threading.Barrier(3, timeout=5)

    def meet(_ctx: CheckContext) -> object:
        barrier.wait()  # only returns when all three run at the same time
        return passed("met")

    names = [f"test-conc-{i}" for i in range(3)]
    for n in names:
        register_check(n, meet, title=n)  # type: ignore[arg-type]
    try:
        report = run_selftest(_ctx(tmp_path), only=names)
    finally:
        for n in names:
            unregister_check(n)
    assert [r.verdict for r in report.results] == [Verdict.PASS] * 3


def test_unknown_only_name_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown self-test check"):
        run_selftest(_ctx(tmp_path), only=["nope"])


def test_optional_failure_does_not_block(tmp_path: Path) -> None:
    register_check(
        "test-optional", lambda ctx: failed("bad", "fix"), title="Opt", required=lambda c: False
    )
    try:
        report = run_selftest(_ctx(tmp_path), only=["test-optional"])
    finally:
        unregister_check("test-optional")
    assert report.result("test-optional").verdict is Verdict.FAIL and report.exit_code == 0


def test_modbus_rtu_over_pty_null_modem(tmp_path: Path) -> None:
    from edge_agent.selftest.checks.modbus import check_modbus
    from tests.support.hardware import modbus_rtu_server, pty_null_modem

    with pty_null_modem() as (server_end, client_end):
        plain = {
            "bms": {
                "modbus": {"url": f"rtu://{client_end}?baud=19200", "timeout_s": 1.0, "retries": 0}
            }
        }
        ctx = CheckContext(config=config_from_plain(plain), modbus_register=0)
        silent = check_modbus(ctx)  # nothing on the other end yet
        assert silent.verdict is Verdict.FAIL and "A/B polarity" in silent.next_step
        with modbus_rtu_server(server_end):
            deadline = time.monotonic() + 20
            answer = check_modbus(ctx)
            while answer.verdict is not Verdict.PASS and time.monotonic() < deadline:
                answer = check_modbus(ctx)  # the server opens its port asynchronously
        assert answer.verdict is Verdict.PASS, answer
        assert answer.detail.endswith("register 0 = [1000, 1001]")
        assert "@19200" in answer.detail


def test_clock_and_disk_and_key_dir_details(tmp_path: Path) -> None:
    from edge_agent.selftest.checks.clock import check_clock, kernel_clock_synchronised
    from edge_agent.selftest.checks.disk import check_disk
    from tests.support.hardware import key_dir

    flag = tmp_path / "run" / "systemd" / "timesync" / "synchronized"
    ctx = _ctx(tmp_path)
    without_flag = check_clock(ctx)
    assert without_flag.verdict in {Verdict.PASS, Verdict.WARN}
    assert isinstance(kernel_clock_synchronised(), bool | None)
    flag.parent.mkdir(parents=True)
    flag.touch()
    assert check_clock(ctx).detail == "systemd-timesyncd reports synchronised"
    later = _ctx(tmp_path, station={"data_dir": str(tmp_path / "not-yet" / "data")})
    out = check_disk(later)
    assert out.verdict is Verdict.WARN and "does not exist yet" in out.detail
    keys = key_dir(tmp_path / "keys")
    keys.chmod(0o777)
    from edge_agent.selftest.checks.key import check_signing_key

    loose = check_signing_key(_ctx(tmp_path, signing={"key_dir": str(keys)}))
    assert loose.verdict is Verdict.WARN and "chmod 700" in loose.next_step


def test_cli_top_level_config_reaches_selftest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge_agent.cli import main

    config = tmp_path / "c.toml"
    config.write_text(f"[uplink.outbox]\nmin_free_disk_bytes = {2**50}\n", encoding="utf-8")
    rc = main(["--config", str(config), "selftest", "--only", "disk", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1 and doc["checks"][0]["verdict"] == "FAIL"
    bad = tmp_path / "bad.toml"
    bad.write_text("[uplink.outbox]\nmin_free_disk_bytes = -1\n", encoding="utf-8")
    assert main(["selftest", "--config", str(bad)]) == 2  # ConfigError -> exit 2


def test_slcan_adapter_over_pty_gets_bitrate_and_frames(tmp_path: Path) -> None:
    """python-can's slcan driver on a pty; the test plays the adapter (ASCII slcan protocol)."""
    import os

    from tests.support.hardware import pty_null_modem

    with pty_null_modem() as (adapter_end, host_end):
        fd = os.open(adapter_end, os.O_RDWR | os.O_NOCTTY)
        stop = threading.Event()
        received = bytearray()

        def adapter() -> None:
            while not stop.is_set():
                try:
                    chunk = os.read(fd, 256) if select.select([fd], [], [], 0.01)[0] else b""
                except OSError:
                    break
                received.extend(chunk)
                if b"O\r" in received:  # channel opened: stream frames like a BMS would
                    os.write(fd, b"t18F8DEADBEEF00112233\r")

        thread = threading.Thread(target=adapter, name="fake-slcan-adapter", daemon=True)
        thread.start()
        try:
            plain = {"bms": {"can": {"interface": "slcan", "channel": host_end, "bitrate": 250000}}}
            ctx = CheckContext(config=config_from_plain(plain), frame_window_s=1.0)
            lines = check_can(ctx)
        finally:
            stop.set()
            thread.join(timeout=5)
            os.close(fd)
    assert [(o.line, o.verdict) for o in lines] == [
        ("link", Verdict.PASS),
        ("frames", Verdict.PASS),
    ], lines
    assert b"S5\r" in received  # slcan bitrate code 5 = 250 kbit/s was sent to the adapter
    assert "from 1 ids" in lines[1].detail


def test_cli_list_shows_required_per_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge_agent.cli import main

    config = tmp_path / "c.toml"
    config.write_text(
        '[bms]\nprofile = "sunspec-battery"\n[bms.modbus]\nurl = "tcp://127.0.0.1:1502"\n'
        '[uplink.mqtt]\nhost = ""\n',
        encoding="utf-8",
    )
    assert main(["selftest", "--config", str(config), "--list", "--json"]) == 0
    rows = {r["name"]: r["required"] for r in json.loads(capsys.readouterr().out)}
    # A Modbus profile + a Modbus URL: the pack is read over Modbus, not CAN; no broker host.
    assert rows["modbus"] is True and rows["can"] is False and rows["broker"] is False
    assert rows["key"] is True and rows["disk"] is True and rows["clock"] is False
