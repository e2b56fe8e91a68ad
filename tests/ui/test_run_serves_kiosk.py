"""``edge-agent run`` serves the kiosk page (a separate process, no sources fitted): the page
answers, Identify produces an event listed under today's packs; a reachable bind without a PIN
stops the start with a message naming ui.pin; with the page off, no web stack is loaded."""

from __future__ import annotations

import asyncio
import re
import signal
import time
import urllib.parse
import urllib.request
from pathlib import Path

from edge_agent.station.control import request_scale
from tests.station.procs import Service, run_cli
from tests.support.mosquitto import MosquittoBroker, free_port, mosquitto_broker
from tests.support.station import station_files, station_plain, write_config

__all__ = ["mosquitto_broker"]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def test_run_serves_the_page_and_identifies_from_it(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    files = station_files(tmp_path)
    port = free_port()
    plain = station_plain(files, mosquitto_broker, ui={"port": port, "language": "zh_CN"})
    config = write_config(tmp_path / "agent.toml", plain)
    service = Service(config, files.data_dir)
    try:
        service.wait_ready()
        url = f"http://127.0.0.1:{port}"
        page = _get(url + "/")
        assert '<html lang="zh-CN">' in page and "就绪" in page
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
        assert csrf is not None
        data = urllib.parse.urlencode({"csrf": csrf.group(1)}).encode()
        request = urllib.request.Request(url + "/identify", data=data, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200  # followed the redirect back to the bench page
        end = time.monotonic() + 30
        while True:
            packs = _get(url + "/packs")
            if "data-event=" in packs:
                break
            assert time.monotonic() < end, packs
            time.sleep(0.2)
        assert "无法诊断" in packs  # no BMS fitted: cannot be diagnosed
        assert (files.data_dir / "kiosk-today.jsonl").is_file()
        # scale commands go through the service, which says when it has no scale
        answer = asyncio.run(request_scale(files.data_dir / "agent.sock", "tare", {}, 5.0))
        assert answer["ok"] is False and "no scale node" in answer["error"]
        answer = asyncio.run(request_scale(files.data_dir / "agent.sock", "reboot", {}, 5.0))
        assert answer["ok"] is False and "tare, calibrate" in answer["error"]
        service.signal(signal.SIGTERM)
        assert service.wait() == 0
    finally:
        service.close()


def test_a_reachable_bind_without_a_pin_stops_run(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    files = station_files(tmp_path)
    plain = station_plain(files, mosquitto_broker, ui={"host": "0.0.0.0", "port": free_port()})
    config = write_config(tmp_path / "agent.toml", plain)
    proc = run_cli(config, "run", timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "ui.pin" in proc.stderr
    assert not (files.data_dir / "agent.sock").exists()


def _mapped(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_run_with_the_page_off_loads_no_web_stack(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    # aiohttp, Jinja2 (MarkupSafe) and Babel cost a station ~14 MB; [ui] off must not load them
    # (nor pymodbus' simulator server, which loaded aiohttp when `sim` registered its commands)
    files = station_files(tmp_path)
    plain = station_plain(files, mosquitto_broker, ui={"enabled": False})
    service = Service(write_config(tmp_path / "agent.toml", plain), files.data_dir)
    try:
        service.wait_ready()
        maps = _mapped(service.proc.pid)
        assert "/aiohttp/" not in maps and "/markupsafe/" not in maps
        service.signal(signal.SIGTERM)
        assert service.wait() == 0
    finally:
        service.close()
    # and with the page on, the same check sees them (so it is not vacuous)
    plain = station_plain(files, mosquitto_broker, ui={"port": free_port()})
    service = Service(write_config(tmp_path / "agent-ui.toml", plain), files.data_dir)
    try:
        service.wait_ready()
        assert "/aiohttp/" in _mapped(service.proc.pid)
    finally:
        service.close()
