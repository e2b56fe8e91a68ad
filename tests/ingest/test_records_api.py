"""The records HTTP API over real SQLite and PostgreSQL stores, through a real aiohttp client."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.cli import main
from edge_agent.ingest.api import EVENT_PARAMS, PACK_PARAMS, RecordsApi, open_store, read_token
from edge_agent.ingest.db import Database
from edge_agent.ingest.records import Query, find, with_links
from edge_agent.ingest.store import EventRow, EventStore
from tests.ingest.helpers import correction_chain, rows, station_and_trust

TOKEN = "s3cret-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
INJECTIONS = (
    "' OR '1'='1",
    "x'; DROP TABLE events; --",
    "1 UNION SELECT cose FROM events",
    '"; DELETE FROM events WHERE "1"="1',
    "st01' --",
    "%' OR 1=1 --",
    "\x00",
    "../../etc/passwd",
)


class Client:
    """A running API and an aiohttp client on a loop in its own thread."""

    def __init__(self, api: RecordsApi) -> None:
        self.api = api
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = self._run(api.start())
        self.session: aiohttp.ClientSession = self._run(self._session())

    async def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    def _run(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=60)

    def request(
        self,
        path: str,
        params: Any = None,
        *,
        method: str = "GET",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Status and parsed JSON body (None for an empty one)."""

        async def go() -> tuple[int, Any]:
            url = f"http://127.0.0.1:{self.port}{path}"
            async with self.session.request(
                method, url, params=params, headers=AUTH if headers is None else headers
            ) as response:
                text = await response.text()
                return response.status, (json.loads(text) if text else None)

        result: tuple[int, Any] = self._run(go())
        return result

    def close(self) -> None:
        self._run(self.session.close())
        self._run(self.api.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def stored(db_url: str, tmp_path: Path) -> Iterator[tuple[str, list[EventRow]]]:
    """A migrated store with 7 events of two stations (one with a photo)."""
    st1, trust = station_and_trust(tmp_path)
    batch = rows(st1, trust, 5) + rows(st1, trust, 1, photo=True)
    st2, trust2 = station_and_trust(tmp_path / "b", name="st02")
    batch += rows(st2, trust2, 1)
    with Database(db_url) as db:
        EventStore(db).store(batch)
    yield db_url, batch


@pytest.fixture
def client(stored: tuple[str, list[EventRow]]) -> Iterator[Client]:
    store = open_store(stored[0])
    c = Client(RecordsApi(store, token=TOKEN, host="127.0.0.1", port=0))
    try:
        yield c
    finally:
        c.close()
        store.db.close()


def _counts(url: str) -> tuple[int, ...]:
    with Database(url) as db:
        return tuple(
            int(db.query(f"SELECT COUNT(*) FROM {t}")[0][0])
            for t in ("events", "evidence", "refusals", "schema_version")
        )


def _expected(url: str, query: Query, limit: int = 100) -> list[dict[str, Any]]:
    """What ``records find`` answers for the same query."""
    with Database(url) as db:
        store = EventStore(db, migrate=False)
        return with_links(store, find(store, query, limit=limit))


def test_queries_match_records_find(client: Client, stored: tuple[str, list[EventRow]]) -> None:
    url, batch = stored
    status, body = client.request("/v1/events")
    assert status == 200
    assert body["events"] == _expected(url, Query()) and len(body["events"]) == 7
    assert body["next_cursor"] is None
    for params, query in (
        ({"station": "st02"}, Query(station="st02")),
        ({"station": "st01", "site": "site-a"}, Query(station="st01", site="site-a")),
        ({"since": "2000-01-01", "until": "2100-12-31"}, Query(since="2000-01-01")),
        ({"until": "2000-01-01"}, Query(until="2000-01-01")),
        ({"disposition": batch[0].disposition}, Query(disposition=batch[0].disposition)),
    ):
        status, body = client.request("/v1/events", params)
        assert status == 200, (params, body)
        assert body["events"] == _expected(url, query), params
    pack = batch[0].pack_code
    assert pack is not None
    status, body = client.request(f"/v1/packs/{pack}")
    assert status == 200 and body["events"] == _expected(url, Query(pack_code=pack))
    assert body["events"] and all(e["pack_code"] == pack for e in body["events"])
    status, body = client.request("/v1/events", {"pack_code": pack})
    assert body["events"] == _expected(url, Query(pack_code=pack))
    # one event: summary, body, exact COSE bytes
    photo = batch[5]
    status, body = client.request(f"/v1/events/{photo.event_id}")
    assert status == 200
    assert body["event_id"] == photo.event_id and body["evidence"] == [photo.evidence[0].sha256]
    assert body["body"] == json.loads(photo.body_json)
    import base64

    assert base64.b64decode(body["cose_base64"]) == photo.cose
    status, body = client.request("/v1/events/01234567-89ab-7def-8123-456789abcdef")
    assert status == 404 and body["field"] == "event_id"
    # HEAD is served too
    assert client.request("/v1/events", method="HEAD")[0] == 200


def test_pages_follow_the_cursor(client: Client, stored: tuple[str, list[EventRow]]) -> None:
    url, _ = stored
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(10):
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        status, body = client.request("/v1/events", params)
        assert status == 200 and len(body["events"]) <= 3
        seen += body["events"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == _expected(url, Query())
    assert client.request("/v1/events", {"limit": "1000"})[0] == 200
    status, body = client.request("/v1/events", {"limit": "1001"})
    assert status == 400 and body["field"] == "limit"


def test_auth_is_required_except_healthz(client: Client) -> None:
    assert client.request("/healthz", headers={}) == (200, {"status": "ok"})
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-0123456789abcdef"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": "Bearer"},
    ):
        for path in ("/v1/events", "/v1/openapi.json", "/v1/packs/ABC", "/v1/events/x"):
            status, body = client.request(path, headers=headers)
            assert status == 401, (path, headers)
            assert "token" in body["error"]


def test_only_get_and_head(client: Client, stored: tuple[str, list[EventRow]]) -> None:
    before = _counts(stored[0])
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for path in ("/v1/events", "/v1/events/x", "/healthz"):
            status, body = client.request(path, method=method)
            assert status == 405, (method, path)
            assert "read-only" in body["error"]
    assert _counts(stored[0]) == before


@pytest.mark.parametrize("field", [*EVENT_PARAMS])
def test_injection_in_every_parameter(
    client: Client, stored: tuple[str, list[EventRow]], field: str
) -> None:
    before = _counts(stored[0])
    for attempt in INJECTIONS:
        status, body = client.request("/v1/events", {field: attempt})
        assert status == 400, (field, attempt, body)
        assert body["field"] == field
    assert _counts(stored[0]) == before


def test_injection_in_path_segments(client: Client, stored: tuple[str, list[EventRow]]) -> None:
    before = _counts(stored[0])
    for attempt in INJECTIONS:
        quoted = attempt.replace("%", "%25").replace("'", "%27").replace(" ", "%20")
        for prefix, field in (("/v1/events/", "event_id"), ("/v1/packs/", "pack_code")):
            status, body = client.request(prefix + quoted)
            # "/" in a segment is another (unknown) path: 404, never a query
            assert status in (400, 404), (prefix, attempt, status)
            if status == 400:
                assert body["field"] == field
            else:
                assert "events" not in body
    assert _counts(stored[0]) == before


def test_garbage_unknown_and_oversized_parameters(client: Client) -> None:
    cases: list[tuple[Any, str]] = [
        ({"limit": "0"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "1e3"}, "limit"),
        ({"limit": "99999999999999999999"}, "limit"),
        ({"limit": ""}, "limit"),
        ({"cursor": "not-an-id"}, "cursor"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-40"}, "until"),
        ({"since": "2026-11-01T10:00:00"}, "since"),  # no UTC offset
        ({"disposition": "landfill"}, "disposition"),
        ({"vin": "A" * 33}, "vin"),
        ({"pack_code": "A" * 5000}, "pack_code"),
        ({"station": ""}, "station"),
        ({"table": "events"}, "table"),
        ({"event_id": "01234567-89ab-7def-8123-456789abcdef"}, "event_id"),
        ([("station", "st01"), ("station", "st02")], "station"),
    ]
    for params, field in cases:
        status, body = client.request("/v1/events", params)
        assert status == 400, (params, body)
        assert body["field"] == field, (params, body)
    status, body = client.request("/v1/packs/ABC", {"pack_code": "ABC"})
    assert status == 400 and body["field"] == "pack_code"
    status, body = client.request("/v1/events/x", {"limit": "1"})
    assert status == 400 and body["field"] == "limit"
    status, body = client.request("/v1/packs/" + "A" * 200)
    assert status == 400 and body["field"] == "pack_code"
    assert client.request("/v1/nothing")[0] == 404


def test_openapi_lists_every_route_and_parameter(client: Client) -> None:
    status, doc = client.request("/v1/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")
    routes = {
        r.resource.canonical
        for r in client.api.app.router.routes()
        if r.method == "GET" and r.resource is not None
    }
    assert set(doc["paths"]) == routes
    for path, item in doc["paths"].items():
        assert set(item) == {"get"}, path
    documented = {
        path: {p["name"] for p in item["get"].get("parameters", []) if p["in"] == "query"}
        for path, item in doc["paths"].items()
    }
    assert documented["/v1/events"] == set(EVENT_PARAMS)
    assert documented["/v1/packs/{pack_code}"] == set(PACK_PARAMS)
    assert documented["/v1/events/{event_id}"] == set()
    # every documented parameter is accepted; anything else is refused
    for path, names in documented.items():
        concrete = path.replace("{pack_code}", "ABC").replace(
            "{event_id}", "01234567-89ab-7def-8123-456789abcdef"
        )
        for name in names:
            value = "1" if name == "limit" else "2026-01-01" if name in ("since", "until") else None
            if value is not None:
                assert client.request(concrete, {name: value})[0] in (200, 404), (path, name)
        if path != "/healthz":
            assert client.request(concrete, {"nope": "1"})[0] == 400
    path_params = {
        path: {p["name"] for p in item["get"].get("parameters", []) if p["in"] == "path"}
        for path, item in doc["paths"].items()
    }
    for path, names in path_params.items():
        assert names == {part[1:-1] for part in path.split("/") if part.startswith("{")}


_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    params=st.dictionaries(
        st.sampled_from([*EVENT_PARAMS, "event_id", "x", "'"]), _TEXT, max_size=4
    )
)
def test_fuzz_query_parameters(client: Client, params: dict[str, str]) -> None:
    status, body = client.request("/v1/events", params)
    assert status in (200, 400), (params, status, body)
    if status == 200:
        assert isinstance(body["events"], list)
    else:
        assert body["error"] and "field" in body


def test_token_file_must_be_owner_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'ingest.sqlite3'}"
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    os.chmod(token, 0o600)
    assert read_token(token) == TOKEN
    argv = ["records", "serve", "--database", url, "--token-file", str(token), "--port", "0"]
    for mode, problem in ((0o640, "mode 0640"), (0o604, "mode 0604")):
        os.chmod(token, mode)
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert problem in err and err.count("\n") == 1
    os.chmod(token, 0o600)
    token.write_text("short")
    assert main(argv) == 2 and "shorter" in capsys.readouterr().err
    token.unlink()
    assert main(argv) == 2 and "not found" in capsys.readouterr().err


def test_records_serve_command(stored: tuple[str, list[EventRow]], tmp_path: Path) -> None:
    """``edge-agent records serve`` answers with the token, stops cleanly on SIGTERM."""
    import signal
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    from tests.support.gateway import free_port

    url, batch = stored
    token = tmp_path / "api-token"
    token.write_text(TOKEN + "\n")
    os.chmod(token, 0o600)
    port = free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "edge_agent", "records", "serve", "--database", url),
            *("--token-file", str(token), "--bind", "127.0.0.1", "--port", str(port)),
        ],
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                    assert json.load(response) == {"status": "ok"}
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.05)
        request = urllib.request.Request(f"{base}/v1/events?station=st02", headers=AUTH)
        with urllib.request.urlopen(request, timeout=10) as response:
            events = json.load(response)["events"]
        assert [e["event_id"] for e in events] == [batch[-1].event_id]
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/v1/events", timeout=10)
        assert refused.value.code == 401
        refused.value.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        if proc.stderr:
            proc.stderr.close()


def test_unmigrated_database_is_refused(tmp_path: Path) -> None:
    from edge_agent.errors import IngestError

    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    with pytest.raises(IngestError, match="ingest migrate"):
        open_store(url)


def test_corrections_are_linked_as_in_records_find(db_url: str, tmp_path: Path) -> None:
    # before: the API's lines always said corrected_by null, even for a corrected event
    station, trust = station_and_trust(tmp_path)
    chain = correction_chain(station, trust)
    a, b, c, d, _ = (r.event_id for r in chain)
    with Database(db_url) as db:
        EventStore(db).store(chain)
    store = open_store(db_url)
    client = Client(RecordsApi(store, token=TOKEN, host="127.0.0.1", port=0))
    try:
        status, body = client.request(f"/v1/packs/{chain[0].pack_code}")
        assert status == 200
        assert body["events"] == _expected(db_url, Query(pack_code=chain[0].pack_code))
        assert [x["corrected_by"] for x in body["events"]] == [d, c, None, None, None]
        status, body = client.request(f"/v1/events/{b}")
        assert (status, body["corrects"], body["corrected_by"]) == (200, a, c)
    finally:
        client.close()
        store.db.close()
