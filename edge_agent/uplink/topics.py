"""MQTT topic names (architecture.md) and validation of the ids that go into them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from edge_agent.errors import ConfigError

DEFAULT_PREFIX = "battrace/v1"
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Event ids are UUIDv7 text in practice; allow any id safe as one topic level.
_EVENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_PREFIX_LEVEL = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def check_id(value: str, what: str) -> str:
    """Return ``value`` if it is a valid site/station id (one topic level); else ConfigError."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ConfigError(f"{what} must match [A-Za-z0-9_-]{{1,64}}, got {value!r}", key_path=what)
    return value


def check_prefix(prefix: str) -> str:
    """Return the prefix without a trailing slash if each level is safe (no wildcards)."""
    levels = prefix.strip("/").split("/")
    if not prefix.strip("/") or not all(_PREFIX_LEVEL.fullmatch(level) for level in levels):
        raise ConfigError(f"topic prefix has an unsafe level: {prefix!r}", key_path="topic_prefix")
    return "/".join(levels)


class StationTopics:
    """Topic names of one station: ``<prefix>/<site>/<station>/{event,evidence/<id>,key,status}``."""

    def __init__(self, site: str, station: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.site = check_id(site, "site")
        self.station = check_id(station, "station")
        self.prefix = check_prefix(prefix)
        self.base = f"{self.prefix}/{self.site}/{self.station}"

    @property
    def event(self) -> str:
        """Topic of signed identification events."""
        return f"{self.base}/event"

    @property
    def status(self) -> str:
        """Retained birth/offline status topic (Last Will)."""
        return f"{self.base}/status"

    @property
    def key(self) -> str:
        """Topic of the station's signed key rotation statements (signing/rotation.py)."""
        return f"{self.base}/key"

    @property
    def receipt(self) -> str:
        """Topic of the gateway's signed receipts for this station (read only)."""
        return f"{self.base}/receipt"

    def evidence(self, event_id: str) -> str:
        """Topic of the label photo that belongs to ``event_id``."""
        if not _EVENT_ID.fullmatch(event_id):
            raise ConfigError(
                f"event id is not a safe topic level: {event_id!r}", key_path="event_id"
            )
        return f"{self.base}/evidence/{event_id}"


def parse_station_topic(topic: str, *, prefix: str = DEFAULT_PREFIX) -> tuple[str, str, str]:
    """Split a station topic into (site, station, kind): event, status, key or evidence."""
    head = check_prefix(prefix) + "/"
    if not topic.startswith(head):
        raise ValueError(f"topic outside prefix {prefix!r}: {topic!r}")
    parts = topic[len(head) :].split("/")
    if len(parts) == 3 and parts[2] in {"event", "status", "key"}:
        kind = parts[2]
    elif len(parts) == 4 and parts[2] == "evidence" and _EVENT_ID.fullmatch(parts[3]):
        kind = "evidence"
    else:
        raise ValueError(f"not a station topic: {topic!r}")
    check_id(parts[0], "site")
    check_id(parts[1], "station")
    return parts[0], parts[1], kind


@dataclass(frozen=True, slots=True)
class ReceiptTopics:
    """The receipt topics a listener reads: ``<prefix>/<site>/<station>/<suffix>``.

    A station reads its own (``site`` and ``station`` given); the gateway reads the ingest's
    receipts for every station (``None``: a ``+`` level, the ids come from the topic).
    """

    prefix: str = DEFAULT_PREFIX
    suffix: str = "receipt"
    site: str | None = None
    station: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", check_prefix(self.prefix))
        check_prefix(self.suffix)
        for what in ("site", "station"):
            value = getattr(self, what)
            if value is not None:
                check_id(value, what)

    @property
    def filter(self) -> str:
        """The subscription: the one topic, or a filter with ``+`` for the open levels."""
        return f"{self.prefix}/{self.site or '+'}/{self.station or '+'}/{self.suffix}"

    def parse(self, topic: str) -> tuple[str, str] | None:
        """(site, station) of a topic this filter matches, None for any other topic."""
        head, tail = f"{self.prefix}/", f"/{self.suffix}"
        if not (topic.startswith(head) and topic.endswith(tail)):
            return None
        levels = topic[len(head) : len(topic) - len(tail)].split("/")
        if len(levels) != 2 or not all(_ID.fullmatch(level) for level in levels):
            return None
        site, station = levels
        if self.site not in (None, site) or self.station not in (None, station):
            return None
        return site, station
