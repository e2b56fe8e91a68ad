"""The Modbus entry point of a pack profile: run its ``sunspec`` and/or ``regmap`` methods."""

from __future__ import annotations

from dataclasses import replace

from edge_agent.bms.modbus.regmap_source import RegisterMapSource
from edge_agent.bms.modbus.sunspec_source import SunSpecSource
from edge_agent.bms.profile import PackProfile
from edge_agent.bms.settings import ModbusSettings
from edge_agent.bms.source import BmsSource
from edge_agent.errors import ProfileError
from edge_agent.model import BmsIdentity, BmsReading, BmsState, ReadingStatus

MODBUS_METHODS = ("sunspec", "regmap")


def _sources(profile: PackProfile, modbus: ModbusSettings) -> list[BmsSource]:
    if profile.transport != "modbus":
        raise ProfileError(
            f"profile {profile.name!r} is for {profile.transport}, not modbus",
            key_path=profile.name,
        )
    sources: list[BmsSource] = []
    for method in profile.methods:
        if method == "sunspec":
            sources.append(SunSpecSource(modbus, profile.sunspec, profile=profile.name))
        elif method == "regmap":
            if profile.regmap is None:
                raise ProfileError(
                    "method 'regmap' needs a [regmap] section", key_path=profile.name
                )
            sources.append(RegisterMapSource(modbus, profile.regmap, profile=profile.name))
        else:
            raise ProfileError(
                f"method {method!r} is not a Modbus method {MODBUS_METHODS}", key_path=profile.name
            )
    if not sources:
        raise ProfileError("a Modbus profile needs at least one method", key_path=profile.name)
    return sources


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


async def read_bms(profile: PackProfile, modbus: ModbusSettings, timeout: float) -> BmsReading:
    """Read a pack's BMS over Modbus as ``profile`` says; never raises for device faults."""
    reading = await ModbusProfileSource(profile, modbus).read(timeout)
    return reading


class ModbusProfileSource(BmsSource):
    """Runs a profile's Modbus methods one after the other on the same device and merges them."""

    name = "modbus"
    transport = "modbus"

    def __init__(self, profile: PackProfile, modbus: ModbusSettings) -> None:
        self.profile = profile
        self.modbus = modbus
        self.sources = _sources(profile, modbus)

    async def _read_internal(self, timeout: float) -> BmsReading:
        share = timeout / len(self.sources)
        readings = [await source.read(share) for source in self.sources]
        if len(readings) == 1:
            return replace(readings[0], duration_ms=None)
        return merge_readings(readings, self.profile.name)
