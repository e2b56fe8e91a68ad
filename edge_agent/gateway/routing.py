"""Site topic names the gateway accepts and the upstream names it forwards to."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EVENT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class SiteTopic:
    """A parsed station topic: ``<prefix>/<site>/<station>/event``, ``.../key`` (key rotation
    statements) or ``.../evidence/<id>``."""

    site: str
    station: str
    kind: Literal["event", "evidence", "key"]
    event_id: str = ""


def subscriptions(prefix: str) -> list[str]:
    """Topic filters the gateway subscribes to on the site broker."""
    return [f"{prefix}/+/+/event", f"{prefix}/+/+/evidence/+", f"{prefix}/+/+/key"]


# a site has a few hundred stations, each repeating its topics (evidence ids do not repeat,
# but a bounded cache only forgets them)
@functools.lru_cache(maxsize=4096)
def parse_site_topic(prefix: str, topic: str) -> SiteTopic | None:
    """The parsed topic, or None when it is not a station event/evidence/key topic."""
    if not topic.startswith(prefix + "/"):
        return None
    parts = topic[len(prefix) + 1 :].split("/")
    if len(parts) < 3 or not _ID.fullmatch(parts[0]) or not _ID.fullmatch(parts[1]):
        return None
    if len(parts) == 3 and parts[2] in ("event", "key"):
        return SiteTopic(parts[0], parts[1], "event" if parts[2] == "event" else "key")
    if len(parts) == 4 and parts[2] == "evidence" and _EVENT_ID.fullmatch(parts[3]):
        return SiteTopic(parts[0], parts[1], "evidence", parts[3])
    return None


def upstream_topic(prefix: str, topic: SiteTopic) -> str:
    """Where an accepted event, evidence item or rotation statement is published upstream."""
    base = f"{prefix}/{topic.site}/{topic.station}"
    if topic.kind != "evidence":
        return f"{base}/{topic.kind}"
    return f"{base}/evidence/{topic.event_id}"


def receipt_topic(prefix: str, site: str, station: str) -> str:
    """Where the gateway publishes receipts for one station (on the site broker)."""
    return f"{prefix}/{site}/{station}/receipt"
