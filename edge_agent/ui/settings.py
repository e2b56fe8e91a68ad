"""The ``[ui]`` config section: where the kiosk page listens, its PIN and default language."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from edge_agent.dataform import bounded, pattern

LANGUAGES = ("en", "zh_CN")


@dataclass(frozen=True, kw_only=True)
class UiSettings:
    """Kiosk page of ``edge-agent run``; ``enabled = false`` turns it off."""

    enabled: bool = True
    host: str = "127.0.0.1"
    # 8080 by default; 0 picks a free port (logged), for tests and a second agent on a laptop
    port: int = bounded(0, 65535, default=8080)
    # required when host is not a loopback address: the page asks for it once per browser
    pin: str | None = pattern(r"[0-9A-Za-z]{4,64}", default=None)
    language: str = pattern(r"en|zh_CN", default="en")

    @property
    def loopback(self) -> bool:
        """True when only this machine can reach the page."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False  # a host name may resolve anywhere
