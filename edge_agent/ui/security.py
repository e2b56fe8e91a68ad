"""Who may use the kiosk page: the bind rule, the PIN cookie, CSRF tokens and origin checks.

- A non-loopback bind needs ``ui.pin``; without it the page refuses to start.
- With a PIN, every request needs the cookie the PIN form sets (HttpOnly, SameSite=Strict);
  the cookie is an HMAC of the PIN, so changing the PIN logs every browser out.
- Every POST carries the page's CSRF token (a per-process secret's HMAC, in a hidden field)
  and is refused when ``Origin`` names another site or ``Sec-Fetch-Site`` says cross-site.
  Nothing changes state on GET.
- Five wrong PINs lock the form for 30 s.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import urlsplit

from edge_agent.errors import ConfigError
from edge_agent.ui.settings import UiSettings

AUTH_COOKIE = "kiosk_auth"
MAX_FAILURES = 5
LOCKOUT_S = 30.0


def check_bind(settings: UiSettings) -> None:
    """Refuse a bind other machines can reach unless a PIN protects it."""
    if not settings.loopback and not settings.pin:
        raise ConfigError(
            f"the kiosk page would listen on {settings.host}, which other machines can reach, "
            'without a PIN: set ui.pin (4..64 letters or digits) or ui.host = "127.0.0.1"',
            key_path="ui.pin",
        )


class Guard:
    """PIN cookie, CSRF token and origin checks of one running page."""

    def __init__(self, settings: UiSettings, *, clock: object = time.monotonic) -> None:
        self._pin = settings.pin
        self._secret = secrets.token_bytes(32)
        self._failures = 0
        self._locked_until = 0.0
        self._clock = clock

    @property
    def needs_pin(self) -> bool:
        """True when the page asks for a PIN."""
        return bool(self._pin)

    def _auth_value(self) -> str:
        assert self._pin is not None
        return hmac.new(self._pin.encode(), b"edge-agent kiosk", hashlib.sha256).hexdigest()

    def authorised(self, cookie: str | None) -> bool:
        """True when no PIN is set or the cookie proves it was entered."""
        if not self._pin:
            return True
        return cookie is not None and hmac.compare_digest(cookie, self._auth_value())

    def locked(self) -> bool:
        """True while wrong PINs keep the form closed."""
        return self._now() < self._locked_until

    def _now(self) -> float:
        return float(self._clock())  # type: ignore[operator]

    def try_pin(self, pin: str) -> str | None:
        """The cookie value for a right PIN; None for a wrong one (counted) or while locked."""
        if not self._pin or self.locked():
            return None
        if hmac.compare_digest(pin.encode(), self._pin.encode()):
            self._failures = 0
            return self._auth_value()
        self._failures += 1
        if self._failures >= MAX_FAILURES:
            self._failures, self._locked_until = 0, self._now() + LOCKOUT_S
        return None

    @property
    def csrf_token(self) -> str:
        """The token every form of this page carries."""
        return hmac.new(self._secret, b"csrf", hashlib.sha256).hexdigest()

    def csrf_ok(self, token: str | None) -> bool:
        """True when ``token`` is this page's token."""
        return token is not None and hmac.compare_digest(token, self.csrf_token)


def same_origin(host: str | None, origin: str | None, fetch_site: str | None) -> bool:
    """False when the browser says the request comes from another site."""
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    if origin is None or origin == "null":
        return origin is None  # "null": a sandboxed or file page, never ours
    return urlsplit(origin).netloc == (host or "")
