"""Modbus check: the configured device answers a holding-register read over the agent's
Modbus link (``bms.modbus.link``, TCP or RTU), the same link the pack profile's sources use."""

from __future__ import annotations

import asyncio
import logging

from edge_agent.bms.modbus.link import Endpoint, ModbusLink, parse_url
from edge_agent.bms.settings import ModbusSettings
from edge_agent.errors import ConfigError, ModbusConnectionError, ModbusError
from edge_agent.selftest.checks.bms import configured_profile
from edge_agent.selftest.model import CheckContext, Outcome, failed, passed, skipped, warned

log = logging.getLogger("edge_agent.selftest.modbus")

_SUNSPEC_MARKER = [0x5375, 0x6E53]  # "SunS"


def probe_register(ctx: CheckContext) -> int:
    """Explicit register, else the profile's first SunSpec base address, else 0."""
    if ctx.modbus_register is not None:
        return ctx.modbus_register
    profile = configured_profile(ctx.config)
    if profile is not None and profile.sunspec is not None and profile.sunspec.base_addresses:
        return profile.sunspec.base_addresses[0]
    return 0


def _where(endpoint: Endpoint) -> str:
    if endpoint.kind == "tcp":
        return f"{endpoint.host}:{endpoint.port}"
    return f"{endpoint.serial_port}@{endpoint.baudrate}"


def _wiring(endpoint: Endpoint) -> str:
    if endpoint.kind == "tcp":
        return "check the device's IP address and port, and that it is powered and on this network"
    return "check A/B polarity, 120 ohm termination, common ground, baud rate/parity and device id"


async def read_probe(settings: ModbusSettings, address: int) -> list[int]:
    """Two holding registers at ``address`` over the agent's Modbus link; ModbusError if not."""
    async with ModbusLink(settings) as link:
        return await link.read(address, 2)


def check_modbus(ctx: CheckContext) -> Outcome:
    """Read two holding registers; an exception reply still proves the device answers."""
    settings = ctx.config.bms.modbus
    if not settings.url:
        return skipped("bms.modbus.url not set")
    try:
        endpoint = parse_url(settings.url)
    except ConfigError as exc:
        return failed(
            str(exc), "fix bms.modbus.url (tcp://host:port or rtu:///dev/ttyUSB0?baud=19200)"
        )
    where, wiring = _where(endpoint), _wiring(endpoint)
    address = probe_register(ctx)
    try:
        regs = asyncio.run(read_probe(settings, address))
    except ModbusConnectionError as exc:
        if exc.address is None:  # raised by connect, before any register was asked for
            return failed(f"cannot connect to {where}", wiring)
        log.warning("modbus probe of %s failed: %s", where, exc)
        return failed(f"no answer from device {settings.device_id} at {where}: {exc}", wiring)
    except ModbusError as exc:
        if exc.exception_code is None:
            log.warning("modbus probe of %s failed: %s", where, exc)
            return failed(f"no answer from device {settings.device_id} at {where}: {exc}", wiring)
        return warned(
            f"device {settings.device_id} at {where} answers, "
            f"but register {address} gives exception {exc.exception_code}",
            "the device is alive; check the pack profile's register map",
        )
    if address == 40000 and regs != _SUNSPEC_MARKER:
        return warned(
            f"device answers, but no SunSpec marker at 40000 ({regs})", "check the pack profile"
        )
    return passed(f"device {settings.device_id} at {where}: register {address} = {regs}")
