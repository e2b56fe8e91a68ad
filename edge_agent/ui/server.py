"""The kiosk page: an aiohttp app beside the station service, and the attachment ``run`` uses.

Pages are rendered on the server (Jinja2) in the technician's language; the bench page's live
region re-renders when the station reports progress (server-sent events at ``/events``, one
small vanilla script). Every form posts and redirects; nothing changes state on GET.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from edge_agent.errors import EdgeAgentError
from edge_agent.model import IdentificationEvent
from edge_agent.station.corrections import CorrectionRequest
from edge_agent.ui import words
from edge_agent.ui.bench import BenchBoard, PackRecord
from edge_agent.ui.delivery import delivery_state
from edge_agent.ui.i18n import HTML_LANG, N_, Catalog, catalog
from edge_agent.ui.security import AUTH_COOKIE, Guard, check_bind, same_origin
from edge_agent.ui.settings import LANGUAGES, UiSettings
from edge_agent.ui.views import card, outline, pack_row, source_view

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
MAX_BODY = 16 * 1024  # every form is small; more is refused with 413
MAX_FIELD = 500
LANG_COOKIE = "kiosk_lang"
SSE_PING_S = 15.0
TECHNICIAN = re.compile(r"[^\x00-\x1f]{1,64}")
# keys of the attachment's app
KIOSK: web.AppKey[Kiosk] = web.AppKey("kiosk")

Identify = Callable[[], Awaitable[Any]]


class Refused(web.HTTPException):
    """A request refused with a page that says why (nothing changed)."""

    def __init__(self, status: int, message: str) -> None:
        self.status_code = status
        super().__init__(text=message, content_type="text/plain")


class Kiosk:
    """One running kiosk page for one station agent."""

    def __init__(self, agent: Any, settings: UiSettings, *, identify: Identify) -> None:
        self.agent = agent
        self.settings = settings
        self.identify = identify
        self.guard = Guard(settings)
        self.board = BenchBoard(data_dir=agent.config.station.data_dir)
        self.selftest: list[dict[str, Any]] | None = None
        self.scale_message = ""
        self.port = 0
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._envs = {lang: self._env(catalog(lang)) for lang in LANGUAGES}
        self.app = self._build()

    def _env(self, cat: Catalog) -> jinja2.Environment:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            extensions=["jinja2.ext.i18n"],
            undefined=jinja2.StrictUndefined,
        )
        env.install_gettext_translations(cat, newstyle=True)  # type: ignore[attr-defined]
        env.globals["num"] = cat.number
        return env

    # --- lifecycle -------------------------------------------------------------------------

    def _build(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._middleware])
        app[KIOSK] = self
        r = app.router
        r.add_get("/", self.bench_page)
        r.add_get("/live", self.live)
        r.add_get("/events", self.events)
        r.add_post("/identify", self.post_identify)
        r.add_post("/observe", self.post_observe)
        r.add_post("/dismiss", self.post_dismiss)
        r.add_post("/technician", self.post_technician)
        r.add_get("/packs", self.packs_page)
        r.add_get("/packs/{event_id}", self.pack_page)
        r.add_post("/packs/{event_id}/correct", self.post_correct)
        r.add_get("/photo/{event_id}", self.photo)
        r.add_get("/health", self.health_page)
        r.add_post("/health/selftest", self.post_selftest)
        r.add_get("/scale", self.scale_page)
        r.add_post("/scale/{step}", self.post_scale)
        r.add_post("/lang", self.post_lang)
        r.add_get("/login", self.login_page)
        r.add_post("/login", self.post_login)
        r.add_static("/static", HERE / "static", append_version=True)
        return app

    async def start(self) -> int:
        """Listen; the port (the configured one, or the one picked for port 0)."""
        self.agent.add_progress_listener(self.board.on_progress)
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        try:
            await site.start()
        except OSError:
            await self.stop()
            raise
        server = site._server  # the bound socket tells the port picked for port 0
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.port
        return self.port

    async def stop(self) -> None:
        """Close the page and its event streams."""
        self.agent.remove_progress_listener(self.board.on_progress)
        self._closing = True
        self.board.changed()  # wakes streams so they notice the shutdown
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- guard -----------------------------------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        path = request.path
        public = path.startswith("/static/") or path == "/login"
        if not public and not self.guard.authorised(request.cookies.get(AUTH_COOKIE)):
            if request.method == "GET" and path in ("/", "/packs", "/health", "/scale"):
                raise web.HTTPSeeOther("/login")
            raise Refused(401, "PIN required: open /login")
        if request.method == "POST":
            if not same_origin(
                request.host, request.headers.get("Origin"), request.headers.get("Sec-Fetch-Site")
            ):
                raise Refused(403, "refused: the form was posted from another site")
            form = await request.post()
            for value in form.values():
                if isinstance(value, str) and len(value) > MAX_FIELD:
                    raise Refused(413, f"refused: a field is longer than {MAX_FIELD} characters")
                if not isinstance(value, str):
                    raise Refused(400, "refused: files are not accepted")
            token = form.get("csrf")
            if path != "/login" and not self.guard.csrf_ok(
                token if isinstance(token, str) else None
            ):
                raise Refused(403, "refused: the form is stale or forged; reload the page")
        response = await handler(request)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
        )
        return response

    # --- rendering -------------------------------------------------------------------------

    def language(self, request: web.Request) -> str:
        """The page's language: the browser's choice on this page, else the station's."""
        chosen = request.cookies.get(LANG_COOKIE)
        return chosen if chosen in LANGUAGES else self.settings.language

    def render(self, request: web.Request, template: str, **context: Any) -> web.Response:
        """A page in the request's language."""
        lang = self.language(request)
        cat = catalog(lang)
        env = self._envs[lang]
        cfg = self.agent.config.station
        html = env.get_template(template).render(
            lang=lang,
            html_lang=HTML_LANG[lang],
            languages=LANGUAGES,
            csrf=self.guard.csrf_token,
            station=cfg.station,
            site=cfg.site,
            path=request.path,
            technician=self.agent.bench.technician or "",
            **self._live_context(cat),
            **context,
        )
        return web.Response(text=html, content_type="text/html", charset="utf-8")

    def _live_context(self, cat: Catalog) -> dict[str, Any]:
        b = self.board
        current = card(b.current, cat) if b.current is not None else None
        photo = b.photo(b.current.event_id) if b.current is not None else None
        label = b.current.readings.label if b.current is not None else None
        if current is not None:
            current["delivery"] = self._delivery(b.current.event_id, cat) if b.current else None
        return {
            "version": b.version,
            "state": b.state,
            "state_word": words.word(words.STATES, b.state, cat.gettext),
            "failure": b.detail,
            "sources": [source_view(s.name, s.status, s.reading, cat) for s in b.sources.values()],
            "current": current,
            "outline": outline(photo, label),
            "buttons": [
                {
                    "token": t,
                    "word": cat.gettext(words.OBSERVATION_WORDS[t]),
                    "pending": t in self.agent.bench.observations,
                    "on_current": b.current is not None and t in b.current.observations,
                }
                for t in words.BUTTONS
            ],
        }

    def _delivery(self, event_id: str, cat: Catalog) -> dict[str, str]:
        state = delivery_state(self.agent, event_id)
        return {
            "state": state.state,
            "word": words.word(words.DELIVERY, state.state, cat.gettext),
            "reason": state.reason,
        }

    # --- bench -----------------------------------------------------------------------------

    async def bench_page(self, request: web.Request) -> web.Response:
        """The bench: state, sources, result card, observation buttons."""
        return self.render(request, "bench.html")

    async def live(self, request: web.Request) -> web.Response:
        """The bench page's live region alone (re-read after every event)."""
        return self.render(request, "live.html")

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: one ``version`` message after every change, pings between."""
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        queue = self.board.subscribe()
        try:
            await response.write(f"retry: 1000\ndata: {self.board.version}\n\n".encode())
            while not self._closing:
                try:
                    version = await asyncio.wait_for(queue.get(), SSE_PING_S)
                except TimeoutError:
                    await response.write(b": ping\n\n")
                    continue
                if self._closing:
                    break
                await response.write(f"id: {version}\ndata: {version}\n\n".encode())
        except (ConnectionError, asyncio.CancelledError):
            pass  # the tab closed or the page is stopping
        finally:
            self.board.unsubscribe(queue)
        return response

    async def post_identify(self, request: web.Request) -> web.Response:
        """Start an identification of the pack on the bench (as a docking would)."""
        try:
            await self.identify()
        except EdgeAgentError as exc:
            raise Refused(409, str(exc)) from None
        raise web.HTTPSeeOther("/")

    async def post_observe(self, request: web.Request) -> web.Response:
        """An observation button: for the next pack, or (after a result) a correction."""
        form = await request.post()
        token = str(form.get("what", ""))
        if token not in words.BUTTONS:
            raise Refused(400, "refused: unknown observation")
        current = self.board.current
        if self.board.state == "result" and current is not None:
            observed = list(current.observations)
            if token in observed:
                observed.remove(token)
            else:
                observed.append(token)
            await self._correct(
                current.event_id,
                [
                    CorrectionRequest(
                        name="observations",
                        value=" ".join(observed),
                        reason="observed at the bench after the identification",
                    )
                ],
            )
        else:
            self.agent.bench.toggle(token)
            self.board.changed()
        raise web.HTTPSeeOther("/")

    async def post_dismiss(self, request: web.Request) -> web.Response:
        """The technician is done with this pack: back to idle."""
        self.board.dismiss()
        raise web.HTTPSeeOther("/")

    async def post_technician(self, request: web.Request) -> web.Response:
        """Who works at the bench (recorded with observations and corrections)."""
        form = await request.post()
        value = str(form.get("technician", "")).strip()
        if value and not TECHNICIAN.fullmatch(value):
            raise Refused(400, "refused: the technician id is 1..64 characters")
        self.agent.bench.technician = value or None
        self.board.changed()
        raise web.HTTPSeeOther(str(form.get("back", "/")) if form.get("back") == "/packs" else "/")

    # --- today's packs and corrections -----------------------------------------------------

    async def packs_page(self, request: web.Request) -> web.Response:
        """Today's packs, newest first, searchable by code."""
        cat = catalog(self.language(request))
        query = request.query.get("q", "")[:64]
        rows = []
        for record in self.board.search(query):
            row = pack_row(record, cat)
            row["delivery"] = self._delivery(record.event_id, cat)
            rows.append(row)
        return self.render(request, "packs.html", rows=rows, query=query)

    def _record(self, event_id: str) -> tuple[PackRecord, IdentificationEvent]:
        record = self.board.find(event_id)
        event = self.board.event(record) if record is not None else None
        if record is None or event is None:
            raise web.HTTPNotFound(text="no such event today")
        return record, event

    async def pack_page(self, request: web.Request) -> web.Response:
        """One event with its correction form."""
        cat = catalog(self.language(request))
        record, event = self._record(request.match_info["event_id"])
        c = card(event, cat)
        c["delivery"] = self._delivery(event.event_id, cat)
        c["corrected_by"] = record.corrected_by or ""
        fields = [(k, cat.gettext(v)) for k, v in words.CORRECTABLE.items() if k != "observations"]
        dispositions = [(k, cat.gettext(v)) for k, v in words.DISPOSITION.items()]
        photo = self.board.photo(event.event_id)
        return self.render(
            request,
            "pack.html",
            pack=c,
            fields=fields,
            dispositions=dispositions,
            pack_outline=outline(photo, event.readings.label),
            error=request.query.get("error", "")[:300],
        )

    async def post_correct(self, request: web.Request) -> web.Response:
        """A correction: a new signed event that references the original."""
        event_id = request.match_info["event_id"]
        form = await request.post()
        name = str(form.get("name", ""))
        value = str(form.get("value", ""))
        if name == "triage.disposition":
            value = str(form.get("disposition", ""))
        reason = str(form.get("reason", ""))
        if name not in words.CORRECTABLE:
            raise Refused(400, "refused: this field cannot be corrected")
        new_id = await self._correct(
            event_id, [CorrectionRequest(name=name, value=value, reason=reason)], page=True
        )
        raise web.HTTPSeeOther(f"/packs/{new_id}")

    async def _correct(
        self, event_id: str, requests: list[CorrectionRequest], *, page: bool = False
    ) -> str:
        record, event = self._record(event_id)
        if record.corrected_by:
            # correct the newest version, so one pack has one line of corrections
            raise Refused(409, "refused: this event was already corrected; correct the newer one")
        try:
            result = await self.agent.correct(
                event,
                requests,
                technician=self.agent.bench.technician,
                photo_jpeg=self.board.photo(event_id),
            )
        except EdgeAgentError as exc:
            if page:
                raise web.HTTPSeeOther(
                    f"/packs/{event_id}?" + _query(error=str(exc)[:300])
                ) from None
            raise Refused(400, f"refused: {exc}") from None
        return str(result.event.event_id)

    async def photo(self, request: web.Request) -> web.Response:
        """The label photo of a recent event."""
        data = self.board.photo(request.match_info["event_id"])
        if data is None:
            raise web.HTTPNotFound()
        return web.Response(body=data, content_type="image/jpeg")

    # --- health ----------------------------------------------------------------------------

    async def health_page(self, request: web.Request) -> web.Response:
        """Outbox, broker, nodes, clock, disk and the last self-test."""
        from edge_agent.station.boot import clock_state

        cat = catalog(self.language(request))
        _ = cat.gettext
        agent = self.agent
        lines: list[dict[str, str]] = []

        def line(title: str, ok: bool | None, detail: str, step: str = "") -> None:
            tone = "info" if ok is None else ("ok" if ok else "bad")
            lines.append({"title": _(title), "tone": tone, "detail": detail, "step": step})

        depth = agent.outbox.depth if agent.outbox is not None else 0
        line(
            N_("Outbox"),
            depth < 100,
            _(N_("{0} events waiting")).format(depth),
            "" if depth < 100 else _(N_("Check the broker connection; nothing is lost.")),
        )
        connected = bool(agent.publisher is not None and agent.publisher.link.connected)
        line(
            N_("Broker"),
            connected,
            _(N_("connected")) if connected else _(N_("not connected")),
            ""
            if connected
            else _(N_("Check the network and the broker; events wait in the outbox.")),
        )
        clock = clock_state()
        line(
            N_("Clock"),
            clock != "unsynced",
            {
                "synced": _(N_("synchronised")),
                "unsynced": _(N_("not synchronised")),
                "unknown": _(N_("unknown")),
            }[clock],
            "" if clock != "unsynced" else _(N_("Check time synchronisation (NTP).")),
        )
        try:
            usage = shutil.disk_usage(agent.config.station.data_dir)
            free = usage.free / max(usage.total, 1) * 100
            line(
                N_("Disk"),
                free >= 10,
                _(N_("{0} % free")).format(cat.number(free, 0)),
                "" if free >= 10 else _(N_("Free space on the data disk.")),
            )
        except OSError as exc:
            line(N_("Disk"), False, str(exc))
        if agent.nodes is not None:
            for node in agent.nodes.status():
                ok = node.connected and not node.lost
                line(N_("Node"), ok, f"{node.node_id} ({node.role})")
        return self.render(request, "health.html", lines=lines, selftest=self.selftest)

    async def post_selftest(self, request: web.Request) -> web.Response:
        """Run the self-test checks that do not open the buses the service owns."""
        from edge_agent.selftest import CheckContext, run_selftest

        ctx = CheckContext(config=self.agent.config)
        report = await asyncio.to_thread(
            run_selftest, ctx, only=["broker", "key", "clock", "disk"], timeout_s=10.0
        )
        self.selftest = [r.as_plain() for r in report.results]
        raise web.HTTPSeeOther("/health")

    # --- scale -----------------------------------------------------------------------------

    async def scale_page(self, request: web.Request) -> web.Response:
        """Tare and the guided two-point calibration."""
        return self.render(
            request,
            "scale.html",
            has_scale=self.agent.nodes is not None,
            message=self.scale_message,
        )

    async def post_scale(self, request: web.Request) -> web.Response:
        """Tare, zero point or span point, through the service's own node link."""
        step = request.match_info["step"]
        form = await request.post()
        if self.agent.nodes is None:
            raise Refused(409, "refused: no scale node is configured")
        args: dict[str, Any]
        if step == "tare":
            op, args = "tare", {"clear": False}
        elif step == "zero":
            op, args = "calibrate", {"point": "zero"}
        elif step == "span":
            try:
                kg = float(str(form.get("kg", "")).replace(",", "."))
            except ValueError:
                raise Refused(400, "refused: the reference mass is not a number") from None
            if not 0.1 <= kg <= 10000:
                raise Refused(400, "refused: the reference mass must be 0.1..10000 kg")
            op, args = "calibrate", {"point": "span", "kg": kg}
        else:
            raise web.HTTPNotFound()
        try:
            ack = await self.agent.nodes.find("scale").command(
                op, args, timeout=self.agent.config.nodes.command_timeout_s
            )
        except EdgeAgentError as exc:
            self.scale_message = f"{step}: {exc}"
        else:
            self.scale_message = f"{step}: {'ok' if ack.ok else 'refused'} {ack.result or ''}"
        raise web.HTTPSeeOther("/scale")

    # --- language and PIN ------------------------------------------------------------------

    async def post_lang(self, request: web.Request) -> web.Response:
        """Switch this browser's language."""
        form = await request.post()
        lang = str(form.get("lang", ""))
        if lang not in LANGUAGES:
            raise Refused(400, "refused: unknown language")
        back = str(form.get("back", "/"))
        response = web.HTTPSeeOther(back if back in ("/", "/packs", "/health", "/scale") else "/")
        response.set_cookie(LANG_COOKIE, lang, max_age=10 * 365 * 86400, samesite="Strict")
        raise response

    async def login_page(self, request: web.Request) -> web.Response:
        """The PIN form."""
        return self.render(
            request,
            "login.html",
            wrong=request.query.get("wrong") == "1",
            locked=self.guard.locked(),
        )

    async def post_login(self, request: web.Request) -> web.Response:
        """Check the PIN; set the cookie."""
        form = await request.post()
        cookie = self.guard.try_pin(str(form.get("pin", "")))
        if cookie is None:
            raise web.HTTPSeeOther("/login?wrong=1")
        response = web.HTTPSeeOther("/")
        response.set_cookie(AUTH_COOKIE, cookie, httponly=True, samesite="Strict")
        raise response


def _query(**params: str) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def kiosk_attachment(settings: UiSettings, *, console: Any = None) -> Any:
    """What ``run`` starts beside the station (None when the page is turned off).

    A non-loopback bind without a PIN stops the start (ConfigError); a port in use is logged
    and the station runs on without the page (the terminal view and the records do not need it).
    """
    if not settings.enabled:
        return None
    check_bind(settings)

    @asynccontextmanager
    async def attach(agent: Any, identify: Identify) -> AsyncIterator[Kiosk | None]:
        kiosk = Kiosk(agent, settings, identify=identify)
        try:
            port = await kiosk.start()
        except OSError as exc:
            log.error(
                "kiosk page not started: cannot listen on %s:%s: %s",
                settings.host,
                settings.port,
                exc,
            )
            if console is not None:
                console.print(f"[bold red]kiosk page not started:[/] {exc}")
            yield None
            return
        url = f"http://{settings.host}:{port}/"
        log.info("kiosk page at %s", url, extra={"url": url})
        if console is not None:
            console.print(f"kiosk page: {url}")
        try:
            yield kiosk
        finally:
            with contextlib.suppress(Exception):
                await kiosk.stop()

    return attach
