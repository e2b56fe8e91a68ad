"""Who may use the kiosk page: PIN on a reachable bind, forged and cross-site posts, sizes."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from edge_agent.errors import ConfigError
from edge_agent.ui.security import Guard, check_bind, same_origin
from edge_agent.ui.server import kiosk_attachment
from edge_agent.ui.settings import UiSettings
from tests.support.mosquitto import MosquittoBroker, mosquitto_broker
from tests.ui.kiosk_bench import browser_page, kiosk_bench

__all__ = ["mosquitto_broker"]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def post(
    url: str, fields: dict[str, str], headers: dict[str, str] | None = None
) -> tuple[int, str]:
    data = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST")
    try:
        with OPENER.open(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "bench-pc.local"])
def test_a_reachable_bind_without_a_pin_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match=r"ui\.pin") as caught:
        kiosk_attachment(UiSettings(host=host))
    assert caught.value.key_path == "ui.pin"
    check_bind(UiSettings(host=host, pin="4711"))  # with a PIN it may start
    check_bind(UiSettings(host="127.0.0.1"))
    check_bind(UiSettings(host="::1"))
    assert kiosk_attachment(UiSettings(enabled=False)) is None


def test_origin_rules() -> None:
    assert same_origin("127.0.0.1:8080", None, None)
    assert same_origin("127.0.0.1:8080", "http://127.0.0.1:8080", "same-origin")
    assert not same_origin("127.0.0.1:8080", "http://evil.example", None)
    assert not same_origin("127.0.0.1:8080", None, "cross-site")
    assert not same_origin("127.0.0.1:8080", "null", None)


def test_wrong_pins_lock_the_form() -> None:
    now = [0.0]
    guard = Guard(UiSettings(pin="4711"), clock=lambda: now[0])
    for _ in range(5):
        assert guard.try_pin("0000") is None
    assert guard.locked() and guard.try_pin("4711") is None  # even the right one, while locked
    now[0] = 31.0
    cookie = guard.try_pin("4711")
    assert cookie is not None and guard.authorised(cookie) and not guard.authorised("x" * 64)


def test_pin_form_in_the_browser(tmp_path: Path, mosquitto_broker: MosquittoBroker) -> None:
    async def main() -> None:
        async with (
            kiosk_bench(tmp_path, mosquitto_broker, ui={"pin": "4711"}) as bench,
            browser_page() as page,
        ):
            await page.goto(bench.url + "/")
            assert page.url.endswith("/login")
            await page.fill("#pin", "1234")
            await page.locator("#login").tap()
            await page.locator("#wrong-pin").wait_for()
            await page.fill("#pin", "4711")
            await page.locator("#login").tap()
            await page.locator("[data-state=idle]").wait_for()
            # without the cookie nothing answers but the login page
            status, _ = await asyncio.to_thread(post, bench.url + "/identify", {})
            assert status == 401
            status, _ = await asyncio.to_thread(post, bench.url + "/observe", {"what": "leak"})
            assert status == 401
            assert bench.agent.bench.observations == []

    asyncio.run(main())


def test_forged_cross_site_and_oversized_posts_change_nothing(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    async def main() -> None:
        async with kiosk_bench(tmp_path, mosquitto_broker) as bench:
            url = bench.url
            csrf = bench.kiosk.guard.csrf_token
            cases = [
                ({"what": "leak"}, {}, 403, "stale or forged"),  # no token
                ({"what": "leak", "csrf": "0" * 64}, {}, 403, "stale or forged"),
                (
                    {"what": "leak", "csrf": csrf},
                    {"Origin": "http://evil.example"},
                    403,
                    "another site",
                ),
                (
                    {"what": "leak", "csrf": csrf},
                    {"Sec-Fetch-Site": "cross-site"},
                    403,
                    "another site",
                ),
                ({"what": "leak", "csrf": csrf, "x": "y" * 600}, {}, 413, "longer than"),
                ({"what": "leak", "csrf": csrf, "x": "y" * 20_000}, {}, 413, ""),
                ({"what": "rm -rf", "csrf": csrf}, {}, 400, "unknown observation"),
            ]
            for fields, headers, want, says in cases:
                status, body = await asyncio.to_thread(post, url + "/observe", fields, headers)
                assert status == want, (fields.keys(), headers, body)
                assert says in body
            assert bench.agent.bench.observations == []
            status, _ = await asyncio.to_thread(
                post, url + "/technician", {"technician": "a\x01b", "csrf": csrf}
            )
            assert status == 400 and bench.agent.bench.technician == "T-007"
            # GET never changes state
            status = await asyncio.to_thread(get_status, url + "/observe?what=leak")
            assert status == 405 and bench.agent.bench.observations == []

    asyncio.run(main())


def get_status(url: str) -> int:
    try:
        with OPENER.open(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
