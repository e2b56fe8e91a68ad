"""A station agent with the kiosk page on a free port, sources that take a moment (so the page
can show progress), a real Mosquitto, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edge_agent.config import config_from_plain
from edge_agent.model import BmsReading, LabelReading, SensorReading, WeightReading
from edge_agent.station.agent import StationAgent
from edge_agent.station.workflow import IdentificationResult, Progress, StationSources
from edge_agent.ui.server import Kiosk
from edge_agent.ui.settings import UiSettings
from tests.conftest import require_real_part
from tests.support.mosquitto import MosquittoBroker
from tests.support.station import (
    StationFiles,
    healthy_readings,
    photo_jpeg,
    station_files,
    station_plain,
)

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SOURCE_DELAY_S = 0.4
CODE_CORNERS = ((20, 20), (100, 20), (100, 100), (20, 100))


def require_chromium() -> None:
    """Debian's Chromium (apt package chromium); CI fails without it."""
    require_real_part(Path(CHROMIUM).is_file() or shutil.which("chromium") is not None, "chromium")


def slow_sources(
    delay_s: float = SOURCE_DELAY_S, hold_bms: asyncio.Event | None = None
) -> StationSources:
    """The healthy LFP pack, each source answering after ``delay_s`` (the label first); with
    ``hold_bms`` the BMS answers only once that event is set (a test looks at the page first)."""
    r = healthy_readings()
    code = replace(r.label.codes[0], position=CODE_CORNERS)
    label = replace(r.label, codes=(code,))
    photo = photo_jpeg()
    assert r.sensors is not None

    async def read_bms(timeout: float) -> BmsReading:
        await asyncio.sleep(delay_s * 2)
        if hold_bms is not None:
            await hold_bms.wait()
        return r.bms

    async def read_label(timeout: float) -> tuple[LabelReading, bytes | None]:
        await asyncio.sleep(delay_s / 2)
        return label, photo

    async def read_weight(timeout: float) -> WeightReading:
        await asyncio.sleep(delay_s)
        return r.weight

    async def read_sensors(timeout: float) -> SensorReading:
        assert r.sensors is not None
        return r.sensors

    return StationSources(bms=read_bms, label=read_label, weight=read_weight, sensors=read_sensors)


@dataclass
class KioskBench:
    """What a browser test works with."""

    agent: StationAgent
    kiosk: Kiosk
    files: StationFiles
    url: str
    hold_bms: asyncio.Event | None = None
    results: list[IdentificationResult] = field(default_factory=list)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def dock(self) -> asyncio.Task[IdentificationResult]:
        """A docking, as the service's dock loop starts it."""
        task = asyncio.create_task(
            self.agent.identify(
                trigger="weight",
                observations=self.agent.bench.take(),
                technician=self.agent.bench.technician,
            )
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task


@asynccontextmanager
async def kiosk_bench(
    root: Path,
    broker: MosquittoBroker,
    *,
    ui: dict[str, Any] | None = None,
    hold_bms: bool = False,
) -> AsyncIterator[KioskBench]:
    """The agent, the page and its URL (``hold_bms``: the BMS answers on ``bench.hold_bms``)."""
    files = station_files(root)
    plain = station_plain(files, broker, station={"intake": {"technician": "T-007"}})
    config = config_from_plain(plain)
    settings = UiSettings(**{"port": 0, **(ui or {})})
    gate = asyncio.Event() if hold_bms else None
    async with StationAgent(config, sources=slow_sources(hold_bms=gate)) as agent:
        bench: KioskBench | None = None

        async def identify() -> Any:
            assert bench is not None
            return bench.dock()

        kiosk = Kiosk(agent, settings, identify=identify)
        port = await kiosk.start()
        bench = KioskBench(agent, kiosk, files, f"http://127.0.0.1:{port}", gate)

        def keep(progress: Progress) -> None:
            if progress.step == "stored" and progress.result is not None:
                bench.results.append(progress.result)

        agent.add_progress_listener(keep)
        try:
            yield bench
        finally:
            if gate is not None:
                gate.set()
            if bench.tasks:
                await asyncio.wait(set(bench.tasks), timeout=10)
            await kiosk.stop()


@asynccontextmanager
async def browser_page(
    *, width: int = 800, height: int = 480, locale: str = "en-GB"
) -> AsyncIterator[Any]:
    """A fresh Chromium page (empty profile) at the given viewport."""
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            context = await browser.new_context(
                viewport={"width": width, "height": height},
                device_scale_factor=1,
                has_touch=True,
                locale=locale,
            )
            page = await context.new_page()
            page.set_default_timeout(10_000)
            yield page
            await context.close()
        finally:
            await browser.close()
