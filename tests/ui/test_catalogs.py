"""The kiosk's message catalogs: same keys in both, every translation filled in, every string
the page uses present, and the triage's sentences the page knows translated."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from edge_agent.ui import words
from edge_agent.ui.i18n import catalog, po_path
from edge_agent.ui.settings import LANGUAGES

UI = Path(words.__file__).parent


def _po(lang: str) -> dict[str, tuple[str, bool]]:
    with po_path(lang).open("rb") as fh:
        po = read_po(fh, locale=lang)
    return {str(m.id): (str(m.string), m.fuzzy) for m in po if m.id}


def test_both_catalogs_have_the_same_keys_all_translated() -> None:
    en, zh = _po("en"), _po("zh_CN")
    assert set(en) == set(zh)
    for lang, messages in (("en", en), ("zh_CN", zh)):
        empty = [k for k, (v, fuzzy) in messages.items() if not v or fuzzy]
        assert empty == [], f"{lang}: untranslated or fuzzy {empty}"
    # placeholders survive translation
    for key, (value, _) in zh.items():
        for mark in ("{0}", "{1}", "{2}", "%(station)s", "%(id)s"):
            assert (mark in key) == (mark in value), (key, value)


def test_every_string_the_page_uses_is_in_the_catalogs() -> None:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    used = {
        str(msg[2])
        for msg in extract_from_dir(
            str(UI), method_map, options_map=options, keywords={"_": None, "N_": None}
        )
    }
    assert len(used) > 150
    missing = used - set(_po("zh_CN"))
    assert missing == set(), f"run pybabel extract/update (edge_agent/ui/babel.cfg): {missing}"


def test_zh_catalog_loads_by_language_string() -> None:
    zh = catalog("zh_CN")
    assert zh.gettext("Intact") == "完好"
    assert zh.gettext("no such message") == "no such message"
    assert zh.number(1234.5, 1) == "1,234.5"
    assert catalog("en").gettext("Intact") == "Intact"
    assert set(LANGUAGES) == {"en", "zh_CN"}


def test_known_triage_sentences_are_translated() -> None:
    _ = catalog("zh_CN").gettext
    for sentence in (
        "SOH 92 % >= 70 %",
        "SOH 52 % below 70 %",
        "cell spread 150 mV above 100 mV",
        "swelling (SP 376 note c)",
        "solvent odour (electrolyte vapour present) (gas or venting (critical, standards.md 6.1))",
        "electrolyte leak (leaked or vented (SP 376 note a))",
        "label missing or unreadable (identity from the BMS only: relabel after review)",
        "sources disagree: label_vs_bms.manufacturer; weight_vs_energy",
        "Route to second-life grading.",
        "not intact: material recycling",
    ):
        text, known = words.reason_text(sentence, _)
        assert known, sentence
        latin = re.findall(r"[A-Za-z]+", text)
        assert set(latin) <= {"SOH", "mV", "BMS", "a", "c"}, text
    text, known = words.reason_text("BMS fault xyz: something new (basis)", _)
    assert not known and text == "BMS fault xyz: something new (basis)"
