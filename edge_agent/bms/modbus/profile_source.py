"""The Modbus composite: a profile's methods (``sunspec``, ``regmap``, ...) on one device, merged.

``bms.registry.open_bms`` returns it for Modbus profiles.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edge_agent.bms.profile import PackProfile
from edge_agent.bms.registry import profile_method_classes
from edge_agent.bms.settings import BmsSettings
from edge_agent.bms.source import BmsSource
from edge_agent.errors import ConfigError, ProfileError
from edge_agent.model import BmsIdentity, BmsReading, BmsState, ReadingStatus


def _sources(profile: PackProfile, settings: BmsSettings) -> list[BmsSource]:
    if profile.transport != "modbus":
        raise ProfileError(
            f"profile {profile.name!r} is for {profile.transport}, not modbus",
            key_path=profile.name,
        )
    return [cls.from_profile(profile, settings) for cls in profile_method_classes(profile)]


def _merge(first: object, second: object) -> object:
    """Fields of ``first`` win; ``second`` fills what is absent (None or empty)."""
    updates = {
        k: v
        for k, v in vars(second).items()
        if v not in (None, ()) and getattr(first, k) in (None, ())
    }
    return replace(first, **updates)  # type: ignore[type-var]


def merge_readings(readings: list[BmsReading], profile: str) -> BmsReading:
    """One reading from several methods: earlier methods win per field, problems are joined."""
    identity, state = BmsIdentity(), BmsState()
    problems: list[str] = []
    for reading in readings:
        identity = _merge(identity, reading.identity)  # type: ignore[assignment]
        state = _merge(state, reading.state)  # type: ignore[assignment]
        problems.extend(reading.problems)
    statuses = {r.status for r in readings}
    status: ReadingStatus
    if statuses == {"ok"}:
        status = "ok"
    elif statuses == {"failed"}:
        status = "failed"
    else:
        status = "partial"
    return BmsReading(
        status=status,
        transport="modbus",
        methods=tuple(m for r in readings for m in r.methods),
        profile=profile,
        identity=identity,
        state=state,
        problems=tuple(problems),
    )


class ModbusProfileSource(BmsSource):
    """Runs a profile's Modbus methods one after the other on the same device and merges them."""

    name = "modbus"
    transport = "modbus"

    def __init__(self, profile: PackProfile, settings: BmsSettings) -> None:
        self.profile = profile
        self.modbus = settings.modbus
        self.sources = _sources(profile, settings)

    @classmethod
    def from_profile(
        cls, profile: PackProfile, settings: BmsSettings, *, record: Path | None = None
    ) -> ModbusProfileSource:
        """The composite for ``profile`` on ``settings.modbus`` (no session recording)."""
        if record is not None:
            raise ConfigError("only a CAN session can be recorded", key_path="--record")
        return cls(profile, settings)

    async def _read_internal(self, timeout: float) -> BmsReading:
        share = timeout / len(self.sources)
        readings = [await source.read(share) for source in self.sources]
        if len(readings) == 1:
            return replace(readings[0], duration_ms=None)
        return merge_readings(readings, self.profile.name)
