"""The pack profile behind the CAN and Modbus checks: its transport and the BMS probe.

A GB/T 27930 or UDS BMS is silent until asked, so "no frames" cannot tell a wrong bitrate
from an empty dock. When ``station.bms.required`` is set (a bench with a pack or a BMS on the
test harness), the self-test asks the BMS through the configured pack profile, exactly as an
identification does; no answer is then a blocking failure.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from edge_agent.bms.profile import PackProfile, load_profile
from edge_agent.bms.registry import open_bms
from edge_agent.bms.settings import BmsSettings
from edge_agent.bms.source import BmsSource
from edge_agent.errors import EdgeAgentError
from edge_agent.model import BmsReading
from edge_agent.selftest.model import Outcome, SelftestConfig, Verdict, passed

log = logging.getLogger("edge_agent.selftest.bms")

Transport = Literal["can", "modbus"]

BMS_LINE = "bms"
PROBE_TIMEOUT_S = 5.0


def configured_profile(config: SelftestConfig) -> PackProfile | None:
    """The configured pack profile, or None when it cannot be loaded (logged)."""
    try:
        return load_profile(config.bms.profile, config.bms.profile_dirs)
    except EdgeAgentError as exc:
        log.info(
            "self-test: profile %r not loadable (%s); guessing the transport",
            config.bms.profile,
            exc,
        )
        return None


def bms_transport(config: SelftestConfig) -> Transport:
    """The profile's transport; without a profile, Modbus when bms.modbus.url is set, else CAN."""
    profile = configured_profile(config)
    if profile is not None:
        return profile.transport
    return "modbus" if config.bms.modbus.url else "can"


def can_required(config: SelftestConfig) -> bool:
    """Required rule: the pack is read over CAN."""
    return bms_transport(config) == "can"


def modbus_required(config: SelftestConfig) -> bool:
    """Required rule: the pack is read over Modbus."""
    return bms_transport(config) == "modbus"


def open_profile_source(profile: PackProfile, settings: BmsSettings) -> BmsSource:
    """The BMS source for the profile, opened exactly as the station opens it."""
    return open_bms(profile, settings)


async def _read_once(profile: PackProfile, settings: BmsSettings, timeout: float) -> BmsReading:
    async with open_profile_source(profile, settings) as source:
        return await source.read(timeout)


def _who(reading: BmsReading) -> str:
    """Who answered: the pack's identity fields, else the controller's (UDS ECU, SunSpec
    device), named as such so an ECU serial is never read as the pack's."""
    ident = reading.identity
    named = [
        ("manufacturer", ident.manufacturer),
        ("serial", ident.serial),
        ("vin", ident.vin),
    ]
    if ident.ecu is not None:
        named += [
            ("ECU supplier", ident.ecu.system_supplier_id),
            ("ECU part", ident.ecu.part_number),
            ("ECU serial", ident.ecu.serial),
        ]
    if ident.device is not None:
        named += [
            ("device", ident.device.manufacturer),
            ("device model", ident.device.model),
            ("device serial", ident.device.serial),
        ]
    parts = [
        f"{name} {value.value}"
        for name, value in named
        if value is not None and value.value not in (None, "")
    ]
    return ", ".join(parts) or "no identity fields"


def probe_can_bms(config: SelftestConfig) -> Outcome:
    """Read the BMS once through the configured profile; FAIL with a next step on no answer."""
    settings = config.bms.can
    profile = configured_profile(config)
    where = f"replay {settings.replay}" if settings.replay else f"{settings.channel}"
    if profile is None:
        return Outcome(
            verdict=Verdict.FAIL,
            detail=f"pack profile {config.bms.profile!r} cannot be loaded",
            next_step="check bms.profile and bms.profile_dirs (`edge-agent profiles list`)",
            line=BMS_LINE,
        )
    timeout = min(config.bms.timeout_s, PROBE_TIMEOUT_S)
    try:
        reading = asyncio.run(_read_once(profile, config.bms, timeout))
    except EdgeAgentError as exc:
        log.warning("self-test BMS probe on %s: %s", where, exc)
        reading = BmsReading(status="failed", problems=(str(exc),))
    if reading.status != "failed":
        return passed(
            f"{profile.name} answered on {where} at {profile.bitrate} bit/s: {_who(reading)}",
            line=BMS_LINE,
        )
    why = "; ".join(reading.problems) or "no answer"
    return Outcome(
        verdict=Verdict.FAIL,
        detail=(
            f"{profile.name}: no BMS answer on {where} at {profile.bitrate} bit/s "
            f"within {timeout:g} s ({why})"
        ),
        # the profile's bitrate is the one used on the bus (it wins over bms.can.bitrate)
        next_step=(
            f"check that the pack really talks at {profile.bitrate} bit/s (the bitrate of "
            f"profile {profile.name}; GB/T 27930 uses 250000), that the 12 V wake-up supply "
            "is on, and CAN-H/CAN-L and the 120 ohm termination"
        ),
        line=BMS_LINE,
        required=True,
    )
