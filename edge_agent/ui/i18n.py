"""Message catalogs of the kiosk page (gettext .po files managed with Babel) and locale formats.

The catalogs live in ``ui/locale/<lang>/LC_MESSAGES/kiosk.po`` and are read at start with
Babel's ``read_po`` (no compile step, nothing to build). ``ui/babel.cfg`` drives
``pybabel extract``; the tests check that both catalogs hold the same keys, that every
translation is filled in and that every string the page uses is in them.
"""

from __future__ import annotations

import gettext
from datetime import datetime
from functools import cache
from pathlib import Path

from babel.dates import format_datetime, format_time
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from edge_agent.ui.settings import LANGUAGES

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "kiosk"
# the tag browsers and the page's lang attribute use
HTML_LANG = {"en": "en", "zh_CN": "zh-CN"}


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "translate later"
    """Mark a string for the catalog without translating it here."""
    return message


class Catalog(gettext.NullTranslations):
    """One language's messages from its .po file."""

    def __init__(self, language: str, messages: dict[str, str]) -> None:
        super().__init__()
        self.language = language
        self.messages = messages

    def gettext(self, message: str) -> str:
        """The translation, or the message itself when the catalog lacks it."""
        return self.messages.get(message) or message

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        """Chinese and our English strings use one form with the number in it."""
        return self.gettext(msgid1 if n == 1 else msgid2)

    def number(self, value: float, digits: int = 1) -> str:
        """A number formatted for the language."""
        pattern = "#,##0" + ("." + "#" * digits if digits else "")
        return str(format_decimal(value, format=pattern, locale=self.language))

    def time(self, moment: datetime) -> str:
        """Local time of day."""
        return str(format_time(moment.astimezone(), format="medium", locale=self.language))

    def datetime(self, moment: datetime) -> str:
        """Local date and time."""
        return str(format_datetime(moment.astimezone(), format="medium", locale=self.language))


def po_path(language: str) -> Path:
    """Where a language's catalog is."""
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def catalog(language: str) -> Catalog:
    """The catalog of ``language`` (one of LANGUAGES), read once."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; known: {', '.join(LANGUAGES)}")
    # Babel matches zh_CN by the string (a Locale object would silently give English)
    with po_path(language).open("rb") as fh:
        po = read_po(fh, locale=language, domain=DOMAIN)
    messages = {str(m.id): str(m.string) for m in po if m.id and isinstance(m.id, str) and m.string}
    return Catalog(language, messages)
