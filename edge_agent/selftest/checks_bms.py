"""CAN check plus a BMS probe: when the station requires the BMS reading, the BMS must answer.

A GB/T 27930 or UDS BMS is silent until asked, so "no frames" cannot tell a wrong bitrate
from an empty dock. When ``station.bms.required`` is set (a bench with a pack or a BMS on the
test harness), the self-test asks the BMS through the configured pack profile, exactly as an
identification does; no answer is then a blocking failure. The probe runs in the ``can``
check's thread, after the frame window, because a serial CAN adapter has one reader.
"""

from __future__ import annotations

import asyncio
import logging

from edge_agent.config import AgentConfig
from edge_agent.errors import EdgeAgentError
from edge_agent.model import BmsReading
from edge_agent.selftest.bms_info import can_required, configured_profile
from edge_agent.selftest.can_check import check_can
from edge_agent.selftest.model import CheckContext, Outcome, Verdict, passed
from edge_agent.selftest.registry import register_check

log = logging.getLogger("edge_agent.selftest.bms")

BMS_LINE = "bms"
PROBE_TIMEOUT_S = 5.0


def bms_probe_wanted(config: AgentConfig) -> bool:
    """True when the station requires a BMS reading and reads it over CAN."""
    return config.station.bms.required and can_required(config)


def _who(reading: BmsReading) -> str:
    ident = reading.identity
    parts = [
        f"{name} {value.value}"
        for name, value in (
            ("manufacturer", ident.manufacturer),
            ("serial", ident.serial),
            ("vin", ident.vin),
        )
        if value is not None and value.value not in (None, "")
    ]
    return ", ".join(parts) or "no identity fields"


def probe_can_bms(config: AgentConfig) -> Outcome:
    """Read the BMS once through the configured profile; FAIL with a next step on no answer."""
    from edge_agent.bms import read_bms

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
        reading = asyncio.run(read_bms(profile, config.bms, timeout))
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


def check_can_and_bms(ctx: CheckContext) -> list[Outcome]:
    """The built-in CAN check, then the BMS probe when the station requires a BMS reading."""
    outcomes = list(check_can(ctx))
    if not bms_probe_wanted(ctx.config):
        return outcomes
    if any(o.verdict is Verdict.FAIL for o in outcomes):
        return outcomes  # the link itself is broken; the link line already says what to do
    outcomes.append(probe_can_bms(ctx.config))
    return outcomes


def register_bms_probe() -> None:
    """Install the CAN check with the BMS probe over the built-in ``can`` check."""
    register_check(
        "can",
        check_can_and_bms,
        title="CAN bus",
        required=can_required,
        timeout_s=10.0 + PROBE_TIMEOUT_S,
        replace=True,
    )
