"""Modbus check: the configured device answers a holding-register read (TCP or RTU)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge_agent.errors import ConfigError
from edge_agent.selftest.checks.bms import configured_profile
from edge_agent.selftest.model import CheckContext, Outcome, failed, passed, skipped, warned

log = logging.getLogger("edge_agent.selftest.modbus")

_SUNSPEC_MARKER = [0x5375, 0x6E53]  # "SunS"


@dataclass(frozen=True, kw_only=True)
class ModbusTarget:
    """A parsed bms.modbus.url."""

    kind: str  # "tcp" or "rtu"
    host: str = ""
    port: int = 502
    device: str = ""
    baudrate: int = 19200
    parity: str = "N"


def parse_modbus_url(url: str) -> ModbusTarget:
    """``tcp://host:port`` or ``rtu:///dev/ttyX?baud=19200&parity=E``; ConfigError otherwise."""
    parts = urlsplit(url)
    try:
        if parts.scheme == "tcp" and parts.hostname:
            return ModbusTarget(kind="tcp", host=parts.hostname, port=parts.port or 502)
        if parts.scheme == "rtu" and parts.path:
            query = parse_qs(parts.query)
            baud = int(query.get("baud", ["19200"])[0])
            parity = query.get("parity", ["N"])[0].upper()
            if parity not in {"N", "E", "O"}:
                raise ValueError(f"parity {parity!r}")
            return ModbusTarget(kind="rtu", device=parts.path, baudrate=baud, parity=parity)
    except ValueError as exc:
        raise ConfigError(f"bad Modbus URL {url!r}: {exc}", key_path="bms.modbus.url") from None
    raise ConfigError(
        f"bad Modbus URL {url!r}: want tcp://host:port or rtu:///dev/tty", key_path="bms.modbus.url"
    )


def probe_register(ctx: CheckContext) -> int:
    """Explicit register, else the profile's first SunSpec base address, else 0."""
    if ctx.modbus_register is not None:
        return ctx.modbus_register
    profile = configured_profile(ctx.config)
    if profile is not None and profile.sunspec is not None and profile.sunspec.base_addresses:
        return profile.sunspec.base_addresses[0]
    return 0


def check_modbus(ctx: CheckContext) -> Outcome:
    """Read one holding register; an exception reply still proves the device answers."""
    settings = ctx.config.bms.modbus
    if not settings.url:
        return skipped("bms.modbus.url not set")
    try:
        target = parse_modbus_url(settings.url)
    except ConfigError as exc:
        return failed(
            str(exc), "fix bms.modbus.url (tcp://host:port or rtu:///dev/ttyUSB0?baud=19200)"
        )
    client: ModbusTcpClient | ModbusSerialClient
    if target.kind == "tcp":
        client = ModbusTcpClient(
            target.host, port=target.port, timeout=settings.timeout_s, retries=settings.retries
        )
        where = f"{target.host}:{target.port}"
        wiring = (
            "check the device's IP address and port, and that it is powered and on this network"
        )
    else:
        client = ModbusSerialClient(
            target.device,
            baudrate=target.baudrate,
            parity=target.parity,
            timeout=settings.timeout_s,
            retries=settings.retries,
        )
        where = f"{target.device}@{target.baudrate}"
        wiring = (
            "check A/B polarity, 120 ohm termination, common ground, baud rate/parity and device id"
        )
    address = probe_register(ctx)
    try:
        if not client.connect():
            return failed(f"cannot connect to {where}", wiring)
        reply = client.read_holding_registers(address, count=2, device_id=settings.device_id)
    except ModbusException as exc:
        log.warning("modbus probe of %s failed: %s", where, exc)
        return failed(f"no answer from device {settings.device_id} at {where}: {exc}", wiring)
    finally:
        client.close()  # type: ignore[no-untyped-call]
    if reply.isError():
        code = getattr(reply, "exception_code", "?")
        return warned(
            f"device {settings.device_id} at {where} answers, "
            f"but register {address} gives exception {code}",
            "the device is alive; check the pack profile's register map",
        )
    regs = list(reply.registers)
    if address == 40000 and regs != _SUNSPEC_MARKER:
        return warned(
            f"device answers, but no SunSpec marker at 40000 ({regs})", "check the pack profile"
        )
    return passed(f"device {settings.device_id} at {where}: register {address} = {regs}")
