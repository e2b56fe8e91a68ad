"""Tare and calibration while ``edge-agent run`` owns the node link: from the kiosk page in
Chromium and from ``edge-agent node tare|calibrate``, which go through the service (issue 16:
before, the command line fought ``run`` for the port and timed out)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.station.procs import LineProcess, Service, run_cli, sim
from tests.support.mosquitto import MosquittoBroker, free_port, mosquitto_broker
from tests.support.nodes import require_micropython
from tests.support.station import station_files, station_plain, write_config
from tests.ui.kiosk_bench import browser_page

__all__ = ["mosquitto_broker"]


def test_calibration_flow_works_while_the_service_runs(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    require_micropython()
    node: LineProcess | None = None
    service: Service | None = None
    try:
        node = sim("node", "--role", "scale+sensors", "--workdir", str(tmp_path / "node"))
        node_port = node.line()
        files = station_files(tmp_path)
        port = free_port()
        plain = station_plain(
            files,
            mosquitto_broker,
            nodes={"ports": [node_port], "hello_timeout_s": 10.0, "command_timeout_s": 30.0},
            ui={"port": port},
        )
        config = write_config(tmp_path / "agent.toml", plain)
        service = Service(config, files.data_dir)
        service.wait_ready()

        async def page_flow() -> list[str]:
            messages = []
            async with browser_page() as page:
                await page.goto(f"http://127.0.0.1:{port}/scale")
                for button in ("#tare", "#zero"):
                    async with page.expect_navigation():
                        await page.locator(button).tap()
                    messages.append(await page.locator("#scale-message").inner_text())
                assert node is not None
                node.send("weight 20")  # the reference weight goes on
                assert node.line() == "ok"
                await page.fill("#span-kg", "20")
                async with page.expect_navigation():
                    await page.locator("#span").tap()
                messages.append(await page.locator("#scale-message").inner_text())
            return messages

        node.send("weight 0")
        assert node.line() == "ok"
        tare, zero, span = asyncio.run(page_flow())
        assert tare.startswith("tare: ok"), tare
        assert zero.startswith("zero: ok"), zero
        assert span.startswith("span: ok"), span
        # the command line goes through the running service, three times in a row
        for _ in range(3):
            done = run_cli(config, "node", "tare", timeout=60)
            assert done.returncode == 0, done.stderr
            answer = json.loads(done.stdout.strip().splitlines()[-1])
            assert answer["op"] == "tare" and answer["ok"] is True
            assert "node link open" not in done.stderr, done.stderr
        done = run_cli(config, "node", "calibrate", "--zero", timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.strip().splitlines()[-1])["ok"] is True
        # through the service only: it once ran again over the port beside the service (a
        # success returned 0, and ``0 or direct()`` opened the port)
        assert "node link open" not in done.stderr, done.stderr
    finally:
        if service is not None:
            service.close()
        if node is not None:
            node.close()
