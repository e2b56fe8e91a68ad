"""Which BMS transport the configured pack profile uses (decides required checks)."""

from __future__ import annotations

import logging
from typing import Literal

from edge_agent.bms.profile import PackProfile, load_profile
from edge_agent.config import AgentConfig
from edge_agent.errors import EdgeAgentError

log = logging.getLogger("edge_agent.selftest")

Transport = Literal["can", "modbus"]


def configured_profile(config: AgentConfig) -> PackProfile | None:
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


def bms_transport(config: AgentConfig) -> Transport:
    """The profile's transport; without a profile, Modbus when bms.modbus.url is set, else CAN."""
    profile = configured_profile(config)
    if profile is not None:
        return profile.transport
    return "modbus" if config.bms.modbus.url else "can"


def can_required(config: AgentConfig) -> bool:
    """Required rule: the pack is read over CAN."""
    return bms_transport(config) == "can"


def modbus_required(config: AgentConfig) -> bool:
    """Required rule: the pack is read over Modbus."""
    return bms_transport(config) == "modbus"
