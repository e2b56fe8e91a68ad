"""The kiosk page in Debian's Chromium against a running station agent (issue 16).

Dock -> live progress -> the result card; an observation changes the triage; a correction is
a second signed event that verifies and references the first; zh-CN leaves no English; the
layout fits 800x480 with touch targets >= 48 px; screenshots in both languages.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

from edge_agent.signing.events import verify_event
from tests.support.mosquitto import MosquittoBroker, mosquitto_broker
from tests.ui.kiosk_bench import browser_page, kiosk_bench

__all__ = ["mosquitto_broker"]
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "kiosk"
# Latin words allowed in the zh-CN page: units, standard abbreviations, codes
ALLOWED_LATIN = {"V", "mV", "kWh", "kg", "SOC", "SOH", "BMS", "PIN", "NTP", "VOC", "UN", "P", "SP"}
# ADR SP 376's lettered notes keep their letter in the Chinese text ("注 a")
ALLOWED_LATIN |= set("abcdef")


async def _card(page: Any) -> Any:
    card = page.locator("#card")
    await card.wait_for()
    return card


def test_dock_shows_progress_then_the_result_card(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    async def main() -> None:
        async with (
            kiosk_bench(tmp_path, mosquitto_broker, hold_bms=True) as bench,
            browser_page() as page,
        ):
            await page.goto(bench.url + "/")
            await page.locator("[data-state=idle]").wait_for()
            await page.locator("#live[data-stream=open]").wait_for(state="attached")
            job = bench.dock()
            # live progress: the label answers first while the BMS is still being read (it
            # answers only once the page has shown that)
            await page.locator("[data-state=reading]").wait_for()
            await page.locator("[data-source=label][data-status=ok]").wait_for()
            assert await page.locator("[data-source=bms][data-status=waiting]").count() == 1
            assert bench.hold_bms is not None
            bench.hold_bms.set()
            result = await job
            card = await _card(page)
            assert await card.get_attribute("data-event") == result.event.event_id
            assert await card.get_attribute("data-class") == "normal"
            assert await card.get_attribute("data-disposition") == "reuse_candidate"
            assert await page.locator("#packing").inner_text() == "P903"
            assert await page.locator("#pack-code").inner_text() == result.event.pack.pack_code
            text = await card.inner_text()
            assert "Intact" in text and "Second-life candidate" in text
            assert "Route to second-life grading." in text
            # the decoded code is outlined on the label photo
            points = await page.locator("polygon.decoded").get_attribute("points")
            assert points == "20,20 100,20 100,100 20,100"

    asyncio.run(main())


def test_observation_before_and_after_an_identification_feeds_triage(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    async def main() -> None:
        async with kiosk_bench(tmp_path, mosquitto_broker) as bench, browser_page() as page:
            await page.goto(bench.url + "/")
            # before: swelling marked for the next pack, then Identify
            await page.locator("button[data-what=swelling]").tap()
            await page.locator("button[data-what=swelling][aria-pressed=true]").wait_for()
            await page.locator("#identify").tap()
            card = await _card(page)
            await page.locator("#card[data-class=damaged_defective]").wait_for()
            first = bench.results[-1].event
            assert first.observations == ("swelling",)
            assert first.intake is not None and first.intake.observations is not None
            assert first.intake.observations[0].by == "T-007"
            assert "P908" in await card.inner_text()
            # after: odour on the result -> a new signed event, critical, that references it
            await page.locator("button[data-what=odour]").tap()
            await page.locator("#card[data-class=critical]").wait_for()
            second = bench.results[-1].event
            assert second.corrects == first.event_id
            assert second.observations == ("swelling", "odour")
            assert second.triage.transport_class == "critical"
            assert second.corrections is not None
            assert second.corrections[0].name == "observations"
            assert second.corrections[0].by == "T-007"

    asyncio.run(main())


def test_correction_is_a_second_signed_event_referencing_the_first(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    async def main() -> None:
        async with kiosk_bench(tmp_path, mosquitto_broker) as bench, browser_page() as page:
            first = (await bench.dock()).event
            await page.goto(bench.url + "/packs")
            await page.locator(f"tr[data-event='{first.event_id}'] a").tap()
            await page.select_option("#correct-name", "pack.battery_type")
            await page.fill("#correct-value", "ncm")
            await page.fill("#correct-reason", "label misprinted; NCM per the maker's sheet")
            await page.locator("#correct-submit").tap()
            await page.locator(f"#card[data-corrects='{first.event_id}']").wait_for()
            corrected = bench.results[-1]
            assert corrected.event.event_id != first.event_id
            verified = verify_event(corrected.message, bench.files.trust).event
            assert verified.corrects == first.event_id
            assert verified.pack.battery_type == "ncm"
            assert verified.pack.source["battery_type"] == "technician"
            assert verified.corrections is not None
            c = verified.corrections[0]
            assert (c.name, c.previous, c.value, c.by) == (
                "pack.battery_type",
                "lfp",
                "ncm",
                "T-007",
            )
            assert verified.seq > first.seq
            # the original is listed as corrected and can no longer be corrected itself
            await page.goto(bench.url + f"/packs/{first.event_id}")
            assert await page.locator("#correct-form").count() == 0
            assert await page.locator(".corrected").count() == 1
            # today's list shows both, each with its delivery state; search finds by code
            await page.goto(bench.url + "/packs?q=" + (first.pack.pack_code or "")[-8:])
            assert await page.locator("tbody tr").count() == 2
            states = await page.locator("td.delivery").evaluate_all(
                "els => els.map(e => e.dataset.delivery)"
            )
            assert set(states) <= {"stored", "sent"}
            await page.goto(bench.url + "/packs?q=ZZZZ")
            assert await page.locator("tbody tr").count() == 0

    asyncio.run(main())


def test_a_bad_correction_is_refused_with_a_message_and_nothing_signed(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    async def main() -> None:
        async with kiosk_bench(tmp_path, mosquitto_broker) as bench, browser_page() as page:
            first = (await bench.dock()).event
            await page.goto(bench.url + f"/packs/{first.event_id}")
            await page.select_option("#correct-name", "pack.pack_code")
            await page.fill("#correct-value", "NOT-A-CODE")
            await page.fill("#correct-reason", "retyped")
            await page.locator("#correct-submit").tap()
            await page.locator("#correct-error").wait_for()
            assert len(bench.results) == 1

    asyncio.run(main())


_LATIN_SCRIPT = """() => {
  const out = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) { out.push(node.textContent); return; }
    if (node.nodeType !== Node.ELEMENT_NODE) return;
    // signed text shown as it is (lang=en) and names and codes (translate=no) are data
    if (node.closest('[lang="en"], [translate="no"]') || ['SCRIPT', 'STYLE'].includes(node.tagName)) return;
    if (node.matches('input, select')) return;
    for (const child of node.childNodes) walk(child);
  };
  walk(document.body);
  for (const el of document.querySelectorAll('[placeholder]')) out.push(el.placeholder);
  for (const el of document.querySelectorAll('option')) out.push(el.textContent);
  return out.join(' ');
}"""


def english_words(text: str) -> list[str]:
    """Latin words that are not units, standard abbreviations or codes (which hold digits)."""
    words = []
    for token in re.findall(r"[A-Za-z][A-Za-z0-9_.\-/]*", text.replace("°C", "")):
        if any(ch.isdigit() for ch in token) or token in ALLOWED_LATIN:
            continue
        words.append(token)
    return words


def test_switching_to_zh_cn_leaves_no_english(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    async def main() -> None:
        async with kiosk_bench(tmp_path, mosquitto_broker) as bench, browser_page() as page:
            await page.goto(bench.url + "/")
            await page.locator("#lang-switch").tap()
            await page.locator("html[lang=zh-CN]").wait_for()
            await page.locator("button[data-what=leak]").tap()
            await page.locator("#identify").tap()
            await page.locator("#card[data-class=damaged_defective]").wait_for()
            for path in (
                "/",
                "/packs",
                f"/packs/{bench.results[-1].event.event_id}",
                "/health",
                "/scale",
            ):
                await page.goto(bench.url + path)
                text = await page.evaluate(_LATIN_SCRIPT)
                assert english_words(text) == [], (
                    f"{path}: untranslated {english_words(text)} in {text}"
                )
            await page.goto(bench.url + "/")
            assert "损坏或有缺陷" in await page.locator("#card").inner_text()
            # and back
            await page.locator("#lang-switch").tap()
            await page.locator("html[lang=en]").wait_for()

    asyncio.run(main())


def test_layout_fits_800x480_with_glove_sized_targets(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    async def main() -> None:
        async with kiosk_bench(tmp_path, mosquitto_broker) as bench:
            for width, height in ((800, 480), (1280, 800)):
                for lang in ("en", "zh_CN"):
                    async with browser_page(width=width, height=height) as page:
                        await page.goto(bench.url + "/")
                        if lang == "zh_CN":
                            await page.locator("#lang-switch").tap()
                            await page.locator("html[lang=zh-CN]").wait_for()
                        bench.kiosk.board.dismiss()
                        await page.locator("[data-state=idle]").wait_for()
                        await _shoot(page, f"bench-idle-{lang}-{width}x{height}")
                        await bench.dock()
                        await _card(page)
                        await _shoot(page, f"bench-result-{lang}-{width}x{height}")
                        scroll = await page.evaluate("document.documentElement.scrollWidth")
                        assert scroll <= width, f"{lang} {width}: page wider than the screen"
                        for button in await page.locator("button, a.button, nav a").all():
                            box = await button.bounding_box()
                            assert box is not None
                            assert box["height"] >= 48 and box["width"] >= 48, box
                        for button in await page.locator("button.obs").all():
                            box = await button.bounding_box()
                            assert box is not None and box["height"] >= 72
                        verdict = await page.locator("#transport").evaluate(
                            "e => parseFloat(getComputedStyle(e).fontSize)"
                        )
                        assert verdict >= 40  # readable from 1.5 m
                        await page.goto(bench.url + "/packs")
                        await _shoot(page, f"packs-{lang}-{width}x{height}")

    asyncio.run(main())


async def _shoot(page: Any, name: str) -> None:
    """Screenshots for docs/kiosk (written when EDGE_AGENT_SCREENSHOTS=1)."""
    data = await page.screenshot()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("EDGE_AGENT_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        (SHOTS / f"{name}.png").write_bytes(data)


def test_health_shows_outbox_broker_clock_disk_and_runs_the_self_test(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    async def main() -> None:
        async with kiosk_bench(tmp_path, mosquitto_broker) as bench, browser_page() as page:
            await page.goto(bench.url + "/health")
            text = await page.locator("ul.health").first.inner_text()
            for title in ("Outbox", "Broker", "Clock", "Disk"):
                assert title in text
            assert "0 events waiting" in text
            async with page.expect_navigation():
                await page.locator("#selftest").tap()
            lines = await page.locator("ul.selftest li").all_inner_texts()
            joined = "\n".join(lines)
            assert "Signing key" in joined and "PASS" in joined, joined
            assert any(line.startswith("PASS") and "broker" in line.lower() for line in lines)

    asyncio.run(main())
