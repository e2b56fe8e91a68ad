"""The records HTTP API: ``records find`` as read-only, token-protected JSON over aiohttp.

Every query goes through ``records.Query`` and ``records.find`` (the same shape checks as the
command line, values only as bound parameters). Before that this module refuses what the
command line cannot receive: unknown or repeated parameters, oversized values, a malformed
``limit``. Answers are pages of at most ``MAX_PAGE`` events with a ``next_cursor`` (keyset
paging), so memory stays bounded whatever is stored. Only GET and HEAD are served.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from edge_agent.errors import ConfigError, IngestError, RecordsQueryError
from edge_agent.ingest.db import Database
from edge_agent.ingest.migrations import LATEST
from edge_agent.ingest.records import DISPOSITIONS, Query, find, with_links
from edge_agent.ingest.store import EventRow, EventStore
from edge_agent.private_files import read_private

log = logging.getLogger(__name__)

MAX_PAGE = 1000  # events per answer; the cursor pages on
DEFAULT_PAGE = 100
MAX_VALUE = 128  # characters of one parameter value (the longest valid one is 64)
MIN_TOKEN = 16
_MAX_TOKEN_FILE = 4096
_TOKEN = re.compile(r"[\x21-\x7e]+")  # visible ASCII: safe in an Authorization header
# the filters of GET /v1/events, in records.Query's names; GET /v1/packs/{pack_code} takes
# the same without pack_code
FILTERS = ("pack_code", "vin", "site", "station", "disposition", "since", "until")
PAGING = ("limit", "cursor")
EVENT_PARAMS = (*FILTERS, *PAGING)
PACK_PARAMS = tuple(p for p in EVENT_PARAMS if p != "pack_code")
PUBLIC_PATHS = frozenset({"/healthz"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def read_token(path: Path) -> str:
    """The bearer token from an owner-only file; ConfigError (exit status 2) otherwise."""

    def fail(problem: str) -> ConfigError:
        return ConfigError(f"{path}: {problem}", key_path="--token-file")

    data = read_private(path, _MAX_TOKEN_FILE, fail)
    try:
        token = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise fail("the token must be printable ASCII") from None
    if len(data) > _MAX_TOKEN_FILE or not _TOKEN.fullmatch(token or " "):
        raise fail("the token must be one line of printable ASCII without spaces")
    if len(token) < MIN_TOKEN:
        raise fail(f"the token is shorter than {MIN_TOKEN} characters")
    return token


def open_store(url: str) -> EventStore:
    """The event store for reading: never migrated here; PostgreSQL sessions read-only."""
    db = Database(url)
    try:
        if db.dialect == "postgresql":
            # defence in depth: this session cannot write even if a statement tried to
            db.query("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        try:
            version = int(db.query("SELECT MAX(version) FROM schema_version")[0][0] or 0)
        except IngestError:
            version = 0
        if version != LATEST:
            raise IngestError(
                f"database schema {version}, this program reads {LATEST}: "
                "run `edge-agent ingest migrate` first"
            )
    except BaseException:
        db.close()
        raise
    return EventStore(db, migrate=False)


class ApiError(web.HTTPException):
    """A JSON error answer: ``{"error": ..., "field": ...}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status_code = status
        body: dict[str, str] = {"error": message}
        if field:
            body["field"] = field
        super().__init__(
            text=json.dumps(body), content_type="application/json", headers=dict(headers or {})
        )


class RecordsApi:
    """The HTTP API over one event store."""

    def __init__(self, store: EventStore, *, token: str, host: str, port: int) -> None:
        self.store = store
        self.host = host
        self.port = port
        self._token = token.encode("ascii")
        self._runner: web.AppRunner | None = None
        self.app = self._build()

    def _build(self) -> web.Application:
        # GET requests carry no body: refuse one beyond a few bytes
        app = web.Application(client_max_size=1024, middlewares=[self._guard])
        r = app.router
        r.add_get("/healthz", self.healthz)
        r.add_get("/v1/openapi.json", self.openapi)
        r.add_get("/v1/events", self.events)
        r.add_get("/v1/events/{event_id}", self.event)
        r.add_get("/v1/packs/{pack_code}", self.pack)
        return app

    async def start(self) -> int:
        """Listen; the port (the one given, or the one picked for port 0)."""
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError:
            await self.stop()
            raise
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- guard -----------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            raise ApiError(405, "read-only API: GET or HEAD", headers={"Allow": "GET, HEAD"})
        if request.path not in PUBLIC_PATHS and not self._authorized(request):
            raise ApiError(
                401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
            )
        try:
            return await handler(request)
        except web.HTTPNotFound:
            raise ApiError(404, "no such resource") from None
        except RecordsQueryError as exc:
            raise ApiError(400, str(exc), field=_field_of(exc)) from None
        except IngestError as exc:
            log.warning("records API: %s", exc)
            raise ApiError(503, "database unavailable") from None

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        # compare_digest: the time taken does not tell how much of the token matched
        return hmac.compare_digest(given.strip().encode("utf-8", "replace"), self._token)

    # --- handlers --------------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        """Liveness, without auth and without touching the database."""
        return web.json_response({"status": "ok"})

    async def openapi(self, request: web.Request) -> web.Response:
        """The OpenAPI 3.1 document of this API."""
        _params(request.query, allowed=())
        return web.json_response(openapi_document())

    async def events(self, request: web.Request) -> web.Response:
        """Events matching the filters, one page."""
        params = _params(request.query, allowed=EVENT_PARAMS)
        return await self._page(params, {})

    async def pack(self, request: web.Request) -> web.Response:
        """The events of one pack code, one page."""
        params = _params(request.query, allowed=PACK_PARAMS)
        pack_code = _segment(request.match_info["pack_code"], "pack_code")
        return await self._page(params, {"pack_code": pack_code})

    async def event(self, request: web.Request) -> web.Response:
        """One stored event: its summary, verified body and exact COSE bytes (base64)."""
        _params(request.query, allowed=())
        event_id = _segment(request.match_info["event_id"], "event_id")
        rows = await asyncio.to_thread(find, self.store, Query(event_id=event_id), limit=1)
        if not rows:
            raise ApiError(404, "no stored event with this id", field="event_id")
        [line] = await asyncio.to_thread(with_links, self.store, rows)
        return web.json_response(detail(rows[0], line))

    async def _page(self, params: dict[str, str], fixed: dict[str, str]) -> web.Response:
        limit = _limit(params.pop("limit", None))
        cursor = params.pop("cursor", None)
        query = Query(**params, **fixed)
        rows = await asyncio.to_thread(find, self.store, query, limit=limit, after=cursor)
        next_cursor = rows[-1].event_id if len(rows) == limit else None
        lines = await asyncio.to_thread(with_links, self.store, rows)
        return web.json_response({"events": lines, "next_cursor": next_cursor})


async def serve_forever(url: str, *, token: str, host: str, port: int) -> int:
    """Serve until SIGINT or SIGTERM; exit status 0."""
    import signal

    store = open_store(url)
    api = RecordsApi(store, token=token, host=host, port=port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        bound = await api.start()
        log.info(
            "records API on http://%s:%d/v1/ (plain HTTP: TLS belongs to a proxy)", host, bound
        )
        await stop.wait()
    finally:
        await api.stop()
        store.db.close()
    return 0


def detail(row: EventRow, line: dict[str, Any]) -> dict[str, Any]:
    """``GET /v1/events/{event_id}``: its find ``line``, receive time, kid, body, COSE bytes."""
    return {
        **line,
        "received_utc": row.received_utc,
        "kid": row.kid,
        "body": json.loads(row.body_json),
        "cose_base64": base64.b64encode(row.cose).decode("ascii"),
    }


def _params(query: Mapping[str, str], *, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query string as one value per known name; 400 for anything else."""
    seen: dict[str, str] = {}
    for name, value in query.items():
        if name not in allowed:
            raise ApiError(400, "unknown parameter", field=name[:64])
        if name in seen:
            raise ApiError(400, "parameter given more than once", field=name)
        if len(value) > MAX_VALUE:
            raise ApiError(400, f"longer than {MAX_VALUE} characters", field=name)
        seen[name] = value
    return seen


def _segment(value: str, name: str) -> str:
    if len(value) > MAX_VALUE:
        raise ApiError(400, f"longer than {MAX_VALUE} characters", field=name)
    return value


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_PAGE
    if not re.fullmatch(r"[0-9]{1,7}", text) or not 1 <= int(text) <= MAX_PAGE:
        raise ApiError(400, f"an integer 1..{MAX_PAGE}", field="limit")
    return int(text)


def _field_of(exc: RecordsQueryError) -> str:
    """The field a records error names (its messages start with ``field:``)."""
    name = str(exc).partition(":")[0]
    return name if name in (*EVENT_PARAMS, "event_id") else ""


# --- OpenAPI ---------------------------------------------------------------------------------

_STRING_PARAMS: dict[str, dict[str, Any]] = {
    "pack_code": {"type": "string", "pattern": "^[0-9A-Za-z]{1,64}$"},
    "vin": {"type": "string", "pattern": "^[0-9A-Za-z]{1,32}$"},
    "site": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
    "station": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
    "disposition": {"type": "string", "enum": list(DISPOSITIONS)},
    "since": {"type": "string", "description": "ISO date or UTC time, inclusive (event clock)"},
    "until": {"type": "string", "description": "ISO date (whole day) or UTC time, exclusive"},
    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
    "cursor": {"type": "string", "description": "next_cursor of the previous page"},
}
_EVENT_ID = {
    "type": "string",
    "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
}


def _query_params(names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [
        {"name": n, "in": "query", "required": False, "schema": _STRING_PARAMS[n]} for n in names
    ]


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "malformed or unknown parameter", 401: "missing or wrong token", 404: "not found"}
    ref = {"$ref": "#/components/schemas/Error"}
    return {
        str(c): {"description": text[c], "content": {"application/json": {"schema": ref}}}
        for c in codes
    }


def _ok(schema: str, text: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"200": {"description": text, "content": {"application/json": {"schema": ref}}}}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of every route and parameter."""
    summary_props = {
        "event_id": {"type": "string"},
        "event_utc": {"type": "string"},
        "site": {"type": "string"},
        "station": {"type": "string"},
        "pack_code": {"type": ["string", "null"]},
        "vin": {"type": ["string", "null"]},
        "disposition": {"type": "string"},
        "transport_class": {"type": "string"},
        "evidence": {"type": "array", "items": {"type": "string"}},
        "corrects": {"type": ["string", "null"]},
        "corrected_by": {"type": ["string", "null"]},
    }
    detail_props = {
        **summary_props,
        "received_utc": {"type": "string"},
        "kid": {"type": "string"},
        "body": {"type": "object"},
        "cose_base64": {"type": "string", "contentEncoding": "base64"},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "edge-agent records API", "version": "1"},
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {
                "get": {
                    "summary": "liveness (no token)",
                    "security": [],
                    "responses": _ok("Health", "the server runs"),
                }
            },
            "/v1/openapi.json": {
                "get": {
                    "summary": "this document",
                    "responses": {"200": {"description": "OpenAPI 3.1"}, **_errors(401)},
                }
            },
            "/v1/events": {
                "get": {
                    "summary": "stored events matching the filters (ANDed), in event-id order",
                    "parameters": _query_params(EVENT_PARAMS),
                    "responses": {**_ok("Page", "one page of events"), **_errors(400, 401)},
                }
            },
            "/v1/events/{event_id}": {
                "get": {
                    "summary": "one stored event with its verified body and COSE bytes",
                    "parameters": [
                        {"name": "event_id", "in": "path", "required": True, "schema": _EVENT_ID}
                    ],
                    "responses": {**_ok("Event", "the event"), **_errors(400, 401, 404)},
                }
            },
            "/v1/packs/{pack_code}": {
                "get": {
                    "summary": "the events of one pack code",
                    "parameters": [
                        {
                            "name": "pack_code",
                            "in": "path",
                            "required": True,
                            "schema": _STRING_PARAMS["pack_code"],
                        },
                        *_query_params(PACK_PARAMS),
                    ],
                    "responses": {**_ok("Page", "one page of events"), **_errors(400, 401)},
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Health": {"type": "object", "properties": {"status": {"const": "ok"}}},
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
                },
                "Summary": {"type": "object", "properties": summary_props},
                "Event": {"type": "object", "properties": detail_props},
                "Page": {
                    "type": "object",
                    "required": ["events", "next_cursor"],
                    "properties": {
                        "events": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Summary"},
                        },
                        "next_cursor": {"type": ["string", "null"]},
                    },
                },
            },
        },
    }
