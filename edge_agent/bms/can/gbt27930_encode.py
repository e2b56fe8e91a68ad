"""Encoders of the BMS-side GB/T 27930 messages (used by the simulator and round-trip tests)."""

from __future__ import annotations

import datetime

from edge_agent.bms.can import gbt27930 as gbt


def _u16(value: float | None, scale: float, offset: float = 0.0) -> bytes:
    if value is None:
        return b"\xff\xff"  # not available
    raw = round((value - offset) / scale)
    return max(0, min(0xFFFF, raw)).to_bytes(2, "little")


def _text(value: str | None, size: int) -> bytes:
    if value is None:
        return b"\xff" * size
    raw = value.encode("ascii")[:size]
    return raw + b"\xff" * (size - len(raw))


def encode_bhm(max_charge_voltage_v: float) -> bytes:
    """BHM payload."""
    return _u16(max_charge_voltage_v, 0.1)


def encode_brm(brm: gbt.Brm, *, length: int = 49) -> bytes:
    """BRM payload in its 8-, 41- or 49-byte form (other lengths truncate/pad, for faults)."""
    major, _, minor = brm.protocol_version.lstrip("V").partition(".")
    out = bytearray((int(major), int(minor or 0) & 0xFF, int(minor or 0) >> 8))
    out.append(gbt.BATTERY_TYPE_CODES.get(brm.battery_type, 0xFF))
    out += _u16(brm.rated_capacity_ah, 0.1) + _u16(brm.rated_voltage_v, 0.1)
    out += _text(brm.manufacturer, 4)
    if brm.serial is None:
        out += b"\xff" * 4
    elif brm.serial.isdigit() and len(brm.serial) != 4:
        out += int(brm.serial).to_bytes(4, "little")
    else:
        out += _text(brm.serial, 4)
    if brm.production_date:
        d = datetime.date.fromisoformat(brm.production_date)
        out += bytes((d.year - 1985, d.month, d.day))
    else:
        out += b"\xff\xff\xff"
    count = brm.charge_count
    out += b"\xff\xff\xff" if count is None else count.to_bytes(3, "little")
    out.append(0xFF if brm.vehicle_owned is None else int(brm.vehicle_owned))
    out.append(0xFF)
    out += _text(brm.vin, 17)
    out += bytes.fromhex(brm.software_version) if brm.software_version else b"\xff" * 8
    data = bytes(out[:length])
    return data + b"\xff" * (length - len(data))


def encode_bcp(bcp: gbt.Bcp) -> bytes:
    """BCP payload (13 bytes)."""
    return (
        _u16(bcp.max_cell_charge_voltage_v, 0.01)
        + _u16(bcp.max_charge_current_a, 0.1, -400.0)
        + _u16(bcp.rated_energy_kwh, 0.1)
        + _u16(bcp.max_charge_voltage_v, 0.1)
        + bytes((max(0, min(255, bcp.max_temperature_c + 50)),))
        + _u16(bcp.soc_pct, 0.1)
        + _u16(bcp.pack_voltage_v, 0.1)
    )


def encode_bcs(bcs: gbt.Bcs) -> bytes:
    """BCS payload (9 bytes)."""
    cell = (round(bcs.max_cell_voltage_v / 0.01) & 0x0FFF) | ((bcs.max_cell_group & 0xF) << 12)
    return (
        _u16(bcs.voltage_v, 0.1)
        + _u16(bcs.current_a, 0.1, -400.0)
        + cell.to_bytes(2, "little")
        + bytes((0xFF if bcs.soc_pct is None else bcs.soc_pct,))
        + bcs.remaining_min.to_bytes(2, "little")
    )


_FLAG_POS = {
    "cell_overvoltage": (5, 0, 1),
    "cell_undervoltage": (5, 0, 2),
    "soc_high": (5, 2, 1),
    "soc_low": (5, 2, 2),
    "overcurrent": (5, 4, 1),
    "current_unreliable": (5, 4, 2),
    "overtemperature": (5, 6, 1),
    "temperature_unreliable": (5, 6, 2),
    "insulation": (6, 0, 1),
    "insulation_unreliable": (6, 0, 2),
    "connector": (6, 2, 1),
    "connector_unreliable": (6, 2, 2),
}


def encode_bsm(bsm: gbt.Bsm) -> bytes:
    """BSM payload (7 bytes)."""
    out = bytearray(
        (
            bsm.max_voltage_cell - 1,
            0xFF if bsm.max_temperature_c is None else bsm.max_temperature_c + 50,
            bsm.max_temperature_probe - 1,
            0xFF if bsm.min_temperature_c is None else bsm.min_temperature_c + 50,
            bsm.min_temperature_probe - 1,
            0,
            0xC0,  # bits 7-8 reserved: filled with 1
        )
    )
    for token in bsm.faults:
        byte, shift, value = _FLAG_POS[token]
        out[byte] |= value << shift
    out[6] |= (1 if bsm.charge_allowed else 0) << 4
    return bytes(out)


def encode_bmv(cells: tuple[float, ...], group: int = 0) -> bytes:
    """BMV payload: 2 bytes per cell."""
    return b"".join(
        ((round(v / 0.01) & 0x0FFF) | ((group & 0xF) << 12)).to_bytes(2, "little") for v in cells
    )


def encode_bmt(temps: tuple[int, ...]) -> bytes:
    """BMT payload: 1 byte per probe."""
    return bytes(max(0, min(254, t + 50)) for t in temps)


def encode_bsd(bsd: gbt.Bsd) -> bytes:
    """BSD payload (7 bytes)."""
    return (
        bytes((bsd.end_soc_pct,))
        + _u16(bsd.min_cell_voltage_v, 0.01)
        + _u16(bsd.max_cell_voltage_v, 0.01)
        + bytes((bsd.min_temperature_c + 50, bsd.max_temperature_c + 50))
    )
