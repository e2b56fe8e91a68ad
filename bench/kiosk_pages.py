"""The pages the kiosk benchmark drives: the probe injected into them, and the bare baseline server.

The probe notes when SSE messages arrive, when the watched element first shows a new key (a
MutationObserver) and when that is painted (requestAnimationFrame, then a MessageChannel
message: the first task after the frame's rendering step), all in ``performance.now()``; its
``calibrate`` ties that clock to the server's ``time.monotonic()`` through ``/bench-clock``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from edge_agent.station.workflow import Progress

# Injected before every page script (Playwright init script: CSP does not apply). Notes when
# SSE messages arrive, when the watched element first shows a new key, and when that is painted.
PROBE = r"""
(() => {
  const probe = window.__probe = {recv: [], cards: [], seen: {}};
  const Native = window.EventSource;
  if (Native) {
    const Probed = function (url, init) {
      const source = new Native(url, init);
      source.addEventListener("message", () => probe.recv.push(performance.now()));
      return source;
    };
    Probed.prototype = Native.prototype;
    window.EventSource = Probed;
  }
  const check = () => {
    const el = document.querySelector(SELECTOR);
    const key = el ? el.KEY : null;
    if (!key || key in probe.seen) return;
    const dom = performance.now();
    probe.seen[key] = dom;
    requestAnimationFrame(() => {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => probe.cards.push({key, dom, paint: performance.now()});
      channel.port2.postMessage(null);
    });
  };
  new MutationObserver(check).observe(
    document, {childList: true, subtree: true, characterData: true, attributes: true});
  probe.calibrate = async (n) => {  // page clock - server clock, from the fastest round trip
    let best = Infinity, offset = 0;
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const answer = await fetch("/bench-clock", {cache: "no-store"});
      const server = parseFloat(await answer.text());
      const t1 = performance.now();
      if (t1 - t0 < best) { best = t1 - t0; offset = (t0 + t1) / 2 - server; }
    }
    return [offset, best];
  };
})();
"""
BARE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>baseline</title></head>
<body><div id="out"></div><script>
new EventSource("/events").onmessage = function (e) {
  document.getElementById("out").textContent = e.data;
};
</script></body></html>
"""
STATIC_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>static</title></head>
<body><p>Bench ready</p></body></html>
"""


def now_ms() -> float:
    """The server side of the shared clock (CLOCK_MONOTONIC, as Chromium's performance.now)."""
    return time.monotonic() * 1e3


async def bench_clock(request: web.Request) -> web.Response:
    """The server clock for the page's calibration."""
    return web.Response(text=repr(now_ms()), headers={"Cache-Control": "no-store"})


class Bare:
    """The baseline server: a bare EventSource page, its SSE stream, a static page."""

    def __init__(self) -> None:
        self.count = 0
        self.stored: dict[str, float] = {}  # SSE data -> server ms at the stored callback
        self._queues: set[asyncio.Queue[int]] = set()
        self.app = web.Application()
        self.app.router.add_get("/", self._page(BARE_PAGE))
        self.app.router.add_get("/static.html", self._page(STATIC_PAGE))
        self.app.router.add_get("/events", self.events)
        self.app.router.add_get("/bench-clock", bench_clock)

    @staticmethod
    def _page(html: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(text=html, content_type="text/html", charset="utf-8")

        return handler

    def on_progress(self, progress: Progress) -> None:
        """A station progress listener, like the kiosk's board: one message per result."""
        if progress.step == "stored":
            self.count += 1
            self.stored[str(self.count)] = now_ms()
            for queue in self._queues:
                queue.put_nowait(self.count)

    async def events(self, request: web.Request) -> web.StreamResponse:
        """The kiosk's SSE framing (``id: N`` / ``data: N``), nothing else."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        queue: asyncio.Queue[int] = asyncio.Queue()
        self._queues.add(queue)
        try:
            await response.write(f"retry: 1000\ndata: {self.count}\n\n".encode())
            while True:
                version = await queue.get()
                await response.write(f"id: {version}\ndata: {version}\n\n".encode())
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._queues.discard(queue)
        return response
