"""Kiosk page benchmarks (issue 16) in Debian's Chromium through Playwright, Mosquitto started here.

(1) result -> card painted: from the station's "stored" progress callback (the moment the
    workflow has the signed, committed result) to the result card painted in the bench page,
    over N identifications with instant in-memory sources; baseline: a bare EventSource page
    (aiohttp, same process, same browser, same run) that gets the same SSE message from the
    same callback and writes it into a div. Both ends are read in one clock: the page's
    ``performance.now()`` and the server's ``time.monotonic()`` (both CLOCK_MONOTONIC) are tied
    by the fastest of 20 clock fetches before and after each phase. "Painted" is the first
    task after the rendering step of the frame that shows the card (requestAnimationFrame, then
    a MessageChannel message); a MutationObserver notes when the card enters the DOM.
(2) first paint of the bench page (navigation start -> first-contentful-paint, Performance API,
    fresh browser context each time, page showing a result card); baseline: a static minimal
    HTML page served by aiohttp in the same run.
(3) memory of ``edge-agent run`` on the simulated bench (``sim fieldkit``: GB/T BMS on slcan,
    node firmware, camera folder) after N identifications asked over the control socket:
    ``VmRSS`` and ``VmHWM`` from /proc/<pid>/status, with ``[ui]`` on and a Chromium page
    following the bench page (and opening today's packs and health once) vs ``[ui] enabled =
    false``, same config otherwise; processes alternate, the median of the runs is shown. Then
    one UI-on run that starts with today's list at its cap (``MAX_TODAY`` events in the page's
    journal, as after a busy day or a restart late in it) and opens that list.

    python bench/bench_kiosk.py            # full run (3 runs; (1) 20, (3) 50 identifications a run)
    python bench/bench_kiosk.py --smoke    # quick check used by CI
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from bench.kiosk_pages import PROBE, Bare, bench_clock, now_ms  # noqa: E402
from bench.stats import pct  # noqa: E402
from edge_agent.config import config_from_plain  # noqa: E402
from edge_agent.event_codec import uuid7  # noqa: E402
from edge_agent.station.agent import StationAgent  # noqa: E402
from edge_agent.station.control import request_identify  # noqa: E402
from edge_agent.station.workflow import Progress  # noqa: E402
from edge_agent.ui.bench import JOURNAL, MAX_TODAY, PHOTOS  # noqa: E402
from edge_agent.ui.server import Kiosk  # noqa: E402
from edge_agent.ui.settings import UiSettings  # noqa: E402
from tests.support.fieldkit import agent_env, running_fieldkit  # noqa: E402
from tests.support.mosquitto import MosquittoBroker, free_port, mosquitto_available  # noqa: E402
from tests.support.station import instant_sources, station_files, station_plain  # noqa: E402
from tests.ui.kiosk_bench import CHROMIUM, FLAGS  # noqa: E402

VIEWPORT = {"width": 800, "height": 480}  # the bench touchscreen
GOAL_CARD_MS = 100.0
GOAL_FIRST_PAINT_MS = 1000.0
GOAL_RSS_MB = 150.0


@dataclass
class Latency:
    """Per identification, in ms from the stored callback (page clock)."""

    painted: list[float] = field(default_factory=list)
    received: list[float] = field(default_factory=list)  # first SSE message after stored
    requested: list[float] = field(default_factory=list)  # the /live fetch that brought the card
    fetched: list[float] = field(default_factory=list)  # its response end (kiosk only)
    in_dom: list[float] = field(default_factory=list)
    clock_rtt: list[float] = field(default_factory=list)
    clock_drift: list[float] = field(default_factory=list)


async def follow(
    browser: Any,
    url: str,
    watch: tuple[str, str],
    identify: Callable[[], Awaitable[str]],
    stored: dict[str, float],
    n: int,
    out: Latency,
) -> None:
    """Open ``url`` with the probe watching ``watch`` (selector, property); n identifications."""
    selector, prop = watch
    context = await browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    try:
        await context.add_init_script(
            PROBE.replace("SELECTOR", json.dumps(selector)).replace("el.KEY", f"el.{prop}")
        )
        page = await context.new_page()
        page.set_default_timeout(30_000)
        await page.goto(url)
        await page.wait_for_function("() => window.__probe.recv.length > 0")  # stream open
        before = await page.evaluate("n => window.__probe.calibrate(n)", 20)
        keys = []
        for _ in range(n):
            key = await identify()
            keys.append(key)
            await page.wait_for_function(
                "k => window.__probe.cards.some(c => c.key === k)", arg=key, polling=10
            )
        after = await page.evaluate("n => window.__probe.calibrate(n)", 20)
        probe = await page.evaluate(
            """() => ({recv: window.__probe.recv, cards: window.__probe.cards,
                live: performance.getEntriesByType("resource")
                    .filter(e => new URL(e.name).pathname === "/live").map(e => [e.startTime, e.responseEnd])})"""
        )
    finally:
        await context.close()
    offset = (before[0] + after[0]) / 2
    out.clock_rtt += [before[1], after[1]]
    out.clock_drift.append(abs(after[0] - before[0]))
    cards = {c["key"]: c for c in probe["cards"]}
    for key in keys:
        card, t0 = cards[key], stored[key] + offset
        out.painted.append(card["paint"] - t0)
        out.in_dom.append(card["dom"] - t0)
        out.received.append(min((r for r in probe["recv"] if r >= t0), default=card["dom"]) - t0)
        fetches = [f for f in probe["live"] if f[1] <= card["dom"]]
        if fetches:
            start, end = max(fetches, key=lambda f: f[1])
            out.requested.append(start - t0)
            out.fetched.append(end - t0)


async def first_paint(browser: Any, url: str) -> float:
    """Navigation start -> first-contentful-paint (ms) in a fresh context (cold cache)."""
    context = await browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    try:
        page = await context.new_page()
        await page.goto(url)
        handle = await page.wait_for_function(
            """() => { const p = performance.getEntriesByName("first-contentful-paint")[0];
                       return p ? p.startTime : null; }""",
            polling=10,
        )
        return float(await handle.json_value())
    finally:
        await context.close()


async def page_latency(
    work: Path, broker: MosquittoBroker, runs: int, n: int, paints: int
) -> tuple[Latency, Latency, list[float], list[float]]:
    """(1) and (2): an in-process station with the kiosk page and the bare baseline server."""
    from playwright.async_api import async_playwright

    files = station_files(work)
    config = config_from_plain(station_plain(files, broker))
    ours, bare_lat = Latency(), Latency()
    fp_ours: list[float] = []
    fp_bare: list[float] = []
    async with StationAgent(config, sources=instant_sources()) as agent:
        stored: dict[str, float] = {}

        def on_stored(progress: Progress) -> None:
            if progress.step == "stored" and progress.result is not None:
                stored[progress.result.event.event_id] = now_ms()

        bare = Bare()
        agent.add_progress_listener(on_stored)  # before the kiosk's board: timed first
        agent.add_progress_listener(bare.on_progress)

        async def nothing() -> None:
            return None

        kiosk = Kiosk(agent, UiSettings(port=0), identify=nothing)
        kiosk.app.router.add_get("/bench-clock", bench_clock)
        port = await kiosk.start()
        runner = web.AppRunner(bare.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        bare_port = free_port()
        await web.TCPSite(runner, "127.0.0.1", bare_port).start()

        async def identify() -> str:
            result = await agent.identify()
            if not (await agent.wait_published(result.event.event_id, 30)).delivered:
                raise RuntimeError("no PUBACK within 30 s")
            return result.event.event_id

        async def identify_bare() -> str:
            await identify()
            return str(bare.count)

        kiosk_url, bare_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                try:
                    await identify()  # warm: templates compiled, label photo cached
                    for _ in range(runs):  # alternate, so drift on the machine hits both
                        await follow(
                            browser, kiosk_url + "/", ("#card", "dataset.event"),
                            identify, stored, n, ours,
                        )  # fmt: skip
                        await follow(
                            browser, bare_url + "/", ("#out", "textContent"),
                            identify_bare, bare.stored, n, bare_lat,
                        )  # fmt: skip
                    for _ in range(runs * paints):
                        fp_ours.append(await first_paint(browser, kiosk_url + "/"))
                        fp_bare.append(await first_paint(browser, bare_url + "/static.html"))
                finally:
                    await browser.close()
        finally:
            await runner.cleanup()
            await kiosk.stop()
    return ours, bare_lat, fp_ours, fp_bare


# --- (3) memory of `edge-agent run` -------------------------------------------------------------


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MB (MiB, as the kernel counts kB)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def wait_socket(path: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until the service's control socket accepts a connection."""
    deadline = time.monotonic() + 60
    while True:
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(str(path))
                return
            except OSError:
                pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"run not ready (rc={proc.poll()}): {log.read_text()[-2000:]}")
        time.sleep(0.02)


def page_files(data_dir: Path, journal: list[str] | None = None) -> None:
    """Start each run with the page's files of a fresh day (or with ``journal`` as today's)."""
    shutil.rmtree(data_dir / PHOTOS, ignore_errors=True)
    path = data_dir / JOURNAL
    path.unlink(missing_ok=True)
    if journal:
        path.write_text("".join(line + "\n" for line in journal), encoding="utf-8")


def full_day(lines: list[str], count: int) -> list[str]:
    """``count`` journal lines of today, copies of ``lines`` under fresh event ids."""
    out = []
    for i in range(count):
        entry = json.loads(lines[i % len(lines)])
        entry["event"]["event_id"] = uuid7(1_700_000_000_000 + i)
        out.append(json.dumps(entry))
    return out


async def run_memory(
    kit: Any, ui: bool, n: int, tag: str, journal: list[str] | None = None
) -> tuple[float, float]:
    """Start ``run`` on the field kit config, n identifications, then its (VmRSS, VmHWM)."""
    from playwright.async_api import async_playwright

    port = free_port()
    config = kit.variant({"ui": {"enabled": ui, "port": port}}, name=f"run-{tag}")
    data_dir = Path(kit.plain_config()["station"]["data_dir"])
    page_files(data_dir, journal)
    log = kit.workdir / f"run-{tag}.out"
    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "--config", str(config), "run"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**agent_env(), "COLUMNS": "160"},
        )
    try:
        wait_socket(data_dir / "agent.sock", proc, log)
        async with async_playwright() as pw:
            browser = page = None
            if ui:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                page = await browser.new_page(viewport=VIEWPORT)
                page.set_default_timeout(30_000)
                url = f"http://127.0.0.1:{port}"
                await page.goto(url + "/")
            for _ in range(n):
                answer = await request_identify(data_dir / "agent.sock", [], 15.0)
                if not answer.get("ok") or not answer.get("published"):
                    raise RuntimeError(f"identification failed: {answer.get('error')}")
                if page is not None:
                    await page.locator(f"#card[data-event='{answer['event_id']}']").wait_for()
            if page is not None and browser is not None:
                for path in ("/packs", "/health", "/"):
                    await page.goto(url + path)
                await page.locator("#card").wait_for()
                await browser.close()
        return memory_mb(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def rss_runs(
    work: Path, broker: MosquittoBroker, runs: int, n: int
) -> tuple[dict[bool, list[Any]], tuple[float, float]]:
    """(3): alternate UI off / on processes on one field kit; every run's (VmRSS, VmHWM); then
    one UI-on run that starts with today's list at its cap (a busy day, or a restart late in it)."""
    out: dict[bool, list[Any]] = {False: [], True: []}
    with running_fieldkit(work, "--broker", f"{broker.host}:{broker.port}") as kit:
        for i in range(runs):
            for ui in (False, True):
                out[ui].append(asyncio.run(run_memory(kit, ui, n, f"{i}-{int(ui)}")))
        data_dir = Path(kit.plain_config()["station"]["data_dir"])
        today = full_day((data_dir / JOURNAL).read_text().splitlines(), MAX_TODAY - n)
        busy = asyncio.run(run_memory(kit, True, n, "full-day", today))
    return out, busy


# --- report -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run (CI)")
    parser.add_argument("--runs", type=int, default=None, help="runs (phases, processes)")
    parser.add_argument("-n", type=int, default=None, help="identifications per phase in (1)")
    parser.add_argument("--paints", type=int, default=None, help="navigations per run in (2)")
    parser.add_argument("--rss-n", type=int, default=None, help="identifications per run in (3)")
    args = parser.parse_args()
    if not mosquitto_available():
        print("mosquitto binary not found (/usr/sbin/mosquitto)", file=sys.stderr)
        return 2
    if not Path(CHROMIUM).is_file():
        print(f"Chromium not found ({CHROMIUM}; apt-get install chromium)", file=sys.stderr)
        return 2
    runs = args.runs or (1 if args.smoke else 3)
    n = args.n or (5 if args.smoke else 20)
    paints = args.paints or (2 if args.smoke else 5)
    rss_n = args.rss_n or (2 if args.smoke else 50)  # 50: the page keeps 50 photos

    with tempfile.TemporaryDirectory(prefix="bench-kiosk-") as tmp:
        work = Path(tmp)
        broker = MosquittoBroker(work / "broker", persistence=False)
        broker.start()
        try:
            ours, bare, fp_ours, fp_bare = asyncio.run(
                page_latency(work / "page", broker, runs, n, paints)
            )
            memory, busy = rss_runs(work / "rss", broker, runs, rss_n)
        finally:
            broker.stop()

    med = statistics.median
    on_rss, on_hwm = (med(x) for x in zip(*memory[True], strict=True))
    off_rss, off_hwm = (med(x) for x in zip(*memory[False], strict=True))
    rows = [
        ("(1) result -> card painted, median ms", med(ours.painted), med(bare.painted)),
        ("(1) result -> card painted, p90 ms", pct(ours.painted, 0.9), pct(bare.painted, 0.9)),
        ("(2) first contentful paint, median ms", med(fp_ours), med(fp_bare)),
        (f"(3) run VmRSS after {rss_n} identifications, MB", on_rss, off_rss),
        ("(3) run VmHWM (peak), MB", on_hwm, off_hwm),
        (f"(3) VmRSS, today's list at its {MAX_TODAY} cap, MB", busy[0], off_rss),
        (f"(3) VmHWM, today's list at its {MAX_TODAY} cap, MB", busy[1], off_hwm),
    ]
    print(
        f"kiosk benchmarks ({'smoke' if args.smoke else 'full'}; Chromium "
        f"{VIEWPORT['width']}x{VIEWPORT['height']}; (1) {len(ours.painted)} identifications "
        f"each side in {runs} runs; (2) {len(fp_ours)} navigations each; (3) median of {runs} "
        f"run processes each; baselines: (1) bare EventSource page, (2) static minimal page, "
        f"both aiohttp in the same run; (3) the same run with [ui] enabled = false)"
    )
    print(f"{'figure':<48}{'kiosk':>10}{'baseline':>10}{'ratio':>8}")
    for name, mine, base in rows:
        print(f"{name:<48}{mine:>10.2f}{base:>10.2f}{mine / base:>8.2f}")
    print(
        f"(1) kiosk, median ms from stored: first SSE message {med(ours.received):.2f}, "
        f"/live requested {med(ours.requested):.2f}, answered {med(ours.fetched):.2f}, "
        f"card in the DOM {med(ours.in_dom):.2f}, painted {med(ours.painted):.2f}"
    )
    print(
        f"(1) baseline, median ms from stored: first SSE message {med(bare.received):.2f}, "
        f"text in the DOM {med(bare.in_dom):.2f}, painted {med(bare.painted):.2f}"
    )
    rtt = ours.clock_rtt + bare.clock_rtt
    drift = ours.clock_drift + bare.clock_drift
    print(
        f"(1) clock tie: fastest round trip median {med(rtt):.2f} ms (error <= half), "
        f"offset drift over a phase max {max(drift):.2f} ms"
    )
    print(
        "(3) per run (VmRSS, VmHWM) MB: ui on "
        + ", ".join(f"({a:.1f}, {b:.1f})" for a, b in memory[True])
        + "; ui off "
        + ", ".join(f"({a:.1f}, {b:.1f})" for a, b in memory[False])
    )
    goals = [
        (
            f"median result -> card painted under {GOAL_CARD_MS:.0f} ms",
            med(ours.painted) < GOAL_CARD_MS,
        ),
        (f"first paint under {GOAL_FIRST_PAINT_MS:.0f} ms", med(fp_ours) < GOAL_FIRST_PAINT_MS),
        (f"run VmRSS with the UI <= {GOAL_RSS_MB:.0f} MB", on_rss <= GOAL_RSS_MB),
        (f"run VmHWM with the UI <= {GOAL_RSS_MB:.0f} MB", on_hwm <= GOAL_RSS_MB),
        (f"run VmRSS with the UI, list at its cap <= {GOAL_RSS_MB:.0f} MB", busy[0] <= GOAL_RSS_MB),
    ]
    for text, met in goals:
        print(f"goal: {text}: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
