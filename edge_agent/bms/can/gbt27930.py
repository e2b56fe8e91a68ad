"""GB/T 27930-2015 messages: identifiers, encoders (charger side) and pure decoders (BMS side).

Byte order is little-endian; unused bytes are 0xFF. Scaling and offsets follow
reference/standards.md section 2. Every decoder takes the raw payload and either returns a
frozen dataclass or raises ``FrameError``; it never raises anything else on arbitrary input.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from edge_agent.bms.can.j1939_tp import make_id
from edge_agent.bms.chemistry import GBT27930_CODES
from edge_agent.errors import FrameError

CHARGER = 0x56
BMS = 0xF4

# PGN -> (name, priority)
PGNS: dict[int, tuple[str, int]] = {
    0x2600: ("CHM", 6),
    0x2700: ("BHM", 6),
    0x0100: ("CRM", 6),
    0x0200: ("BRM", 7),
    0x0600: ("BCP", 7),
    0x0700: ("CTS", 6),
    0x0800: ("CML", 6),
    0x0900: ("BRO", 4),
    0x0A00: ("CRO", 4),
    0x1000: ("BCL", 6),
    0x1100: ("BCS", 7),
    0x1200: ("CCS", 6),
    0x1300: ("BSM", 6),
    0x1500: ("BMV", 7),
    0x1600: ("BMT", 7),
    0x1700: ("BSP", 7),
    0x1900: ("BST", 4),
    0x1A00: ("CST", 4),
    0x1C00: ("BSD", 6),
    0x1D00: ("CSD", 6),
    0x1E00: ("BEM", 2),
    0x1F00: ("CEM", 2),
}
PGN_BY_NAME = {name: pgn for pgn, (name, _) in PGNS.items()}

# battery type byte -> chemistry token, from the one chemistry table
BATTERY_TYPES = dict(GBT27930_CODES)
BATTERY_TYPE_CODES = {v: k for k, v in BATTERY_TYPES.items()}


def can_id(name: str, *, source: int, dest: int) -> int:
    """29-bit identifier of GB/T message ``name`` from ``source`` to ``dest``."""
    pgn = PGN_BY_NAME[name]
    return make_id(PGNS[pgn][1], pgn, dest, source)


def _u16(b: bytes, i: int) -> int:
    return b[i] | (b[i + 1] << 8)


def _scaled(b: bytes, i: int, scale: float, offset: float = 0.0) -> float | None:
    """A scaled 16-bit field; None when it is 0xFFFF ("not available")."""
    raw = _u16(b, i)
    return None if raw == 0xFFFF else round(raw * scale + offset, 1)


def _need(name: str, data: bytes, n: int) -> None:
    if len(data) < n:
        raise FrameError(f"{name}: needs {n} bytes, got {len(data)}", frame=bytes(data))


def _ascii(raw: bytes) -> str | None:
    """Printable ASCII with 0xFF/NUL/space padding removed; None when empty or not text."""
    text = raw.rstrip(b"\xff\x00 ").lstrip(b"\x00 ")
    if not text or any(c < 0x20 or c > 0x7E for c in text):
        return None
    return text.decode("ascii")


# --- charger -> BMS -------------------------------------------------------------------------


def encode_chm(version: tuple[int, int] = (1, 1)) -> bytes:
    """CHM: protocol version, V1.1 = 01 01 00."""
    return bytes((version[0], version[1] & 0xFF, version[1] >> 8))


def encode_crm(recognised: bool, charger_number: int = 1, region: bytes = b"\xff\xff\xff") -> bytes:
    """CRM: 0x00 not recognised / 0xAA recognised, charger number, region code."""
    return (
        bytes((0xAA if recognised else 0x00,)) + charger_number.to_bytes(4, "little") + region[:3]
    )


# --- BMS -> charger -------------------------------------------------------------------------


@dataclass(frozen=True)
class Bhm:
    """Vehicle handshake."""

    max_charge_voltage_v: float


@dataclass(frozen=True)
class Brm:
    """BMS and vehicle identification (8, 41 or 49 bytes; optional fields may be None)."""

    protocol_version: str
    battery_type: str
    rated_capacity_ah: float
    rated_voltage_v: float
    manufacturer: str | None = None
    serial: str | None = None
    production_date: str | None = None
    charge_count: int | None = None
    vehicle_owned: bool | None = None
    vin: str | None = None
    software_version: str | None = None
    length: int = 0
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Bcp:
    """Battery charging parameters (None: the field was 0xFFFF, "not available")."""

    max_cell_charge_voltage_v: float
    max_charge_current_a: float
    rated_energy_kwh: float | None
    max_charge_voltage_v: float
    max_temperature_c: int
    soc_pct: float | None
    pack_voltage_v: float | None


@dataclass(frozen=True)
class Bcs:
    """Charging total status (None: the field was all ones, "not available")."""

    voltage_v: float | None
    current_a: float | None
    max_cell_voltage_v: float
    max_cell_group: int
    soc_pct: int | None
    remaining_min: int


@dataclass(frozen=True)
class Bsm:
    """Battery status: extremes and 2-bit alarm flags. A temperature is None when its byte is
    0xFF, J1939's "not available" (it would otherwise read as 205 degC)."""

    max_voltage_cell: int
    max_temperature_c: int | None
    max_temperature_probe: int
    min_temperature_c: int | None
    min_temperature_probe: int
    faults: tuple[str, ...]
    charge_allowed: bool


@dataclass(frozen=True)
class Bsd:
    """Charging statistics."""

    end_soc_pct: int
    min_cell_voltage_v: float
    max_cell_voltage_v: float
    min_temperature_c: int
    max_temperature_c: int


def decode_bhm(data: bytes) -> Bhm:
    """BHM: max allowed total charge voltage, 0.1 V/bit."""
    _need("BHM", data, 2)
    return Bhm(round(_u16(data, 0) * 0.1, 1))


def _version(raw: bytes) -> str:
    return f"V{raw[0]}.{raw[1] | (raw[2] << 8)}"


def _date(raw: bytes, problems: list[str]) -> str | None:
    if raw == b"\xff\xff\xff":
        return None
    try:
        return datetime.date(1985 + raw[0], raw[1], raw[2]).isoformat()
    except ValueError:
        problems.append(
            f"BRM production date invalid: year+1985={1985 + raw[0]} month={raw[1]} day={raw[2]}"
        )
        return None


def _serial(raw: bytes) -> str | None:
    if raw == b"\xff\xff\xff\xff":
        return None
    text = _ascii(raw)
    # maker-defined: printable text as is, otherwise the little-endian number
    return text if text is not None and len(text) == 4 else str(int.from_bytes(raw, "little"))


def decode_brm(data: bytes) -> Brm:
    """BRM in its 8-byte (mandatory only), 41-byte and 49-byte forms."""
    _need("BRM", data, 8)
    problems: list[str] = []
    n = len(data)
    if n not in (8, 41, 49):
        problems.append(f"BRM has unusual length {n} (expected 8, 41 or 49 bytes)")
    type_code = data[3]
    battery_type = BATTERY_TYPES.get(type_code)
    if battery_type is None:
        problems.append(f"BRM battery type code {type_code:#04x} unknown")
        battery_type = "other"
    fields: dict[str, object] = {}
    if n >= 12:
        fields["manufacturer"] = _ascii(data[8:12])
    if n >= 16:
        fields["serial"] = _serial(data[12:16])
    if n >= 19:
        fields["production_date"] = _date(data[16:19], problems)
    if n >= 22 and data[19:22] != b"\xff\xff\xff":
        fields["charge_count"] = int.from_bytes(data[19:22], "little")
    if n >= 23 and data[22] in (0, 1):
        fields["vehicle_owned"] = data[22] == 1
    if n >= 41:
        vin = _ascii(data[24:41])
        if vin is None and data[24:41].strip(b"\xff\x00"):
            problems.append("BRM VIN is not printable ASCII")
        fields["vin"] = vin
    if n >= 49 and data[41:49].strip(b"\xff"):
        # layout of the 8 software-version bytes is unconfirmed: keep them verbatim
        fields["software_version"] = data[41:49].hex().upper()
    return Brm(
        protocol_version=_version(data[0:3]),
        battery_type=battery_type,
        rated_capacity_ah=round(_u16(data, 4) * 0.1, 1),
        rated_voltage_v=round(_u16(data, 6) * 0.1, 1),
        length=n,
        problems=tuple(problems),
        **fields,  # type: ignore[arg-type]
    )


def decode_bcp(data: bytes) -> Bcp:
    """BCP: 13 bytes of charging parameters."""
    _need("BCP", data, 13)
    return Bcp(
        max_cell_charge_voltage_v=round(_u16(data, 0) * 0.01, 2),
        max_charge_current_a=round(_u16(data, 2) * 0.1 - 400.0, 1),
        rated_energy_kwh=_scaled(data, 4, 0.1),
        max_charge_voltage_v=round(_u16(data, 6) * 0.1, 1),
        max_temperature_c=data[8] - 50,
        soc_pct=_scaled(data, 9, 0.1),
        pack_voltage_v=_scaled(data, 11, 0.1),
    )


def decode_bcs(data: bytes) -> Bcs:
    """BCS: 9 bytes of measured charging status."""
    _need("BCS", data, 9)
    cell = _u16(data, 4)
    return Bcs(
        voltage_v=_scaled(data, 0, 0.1),
        current_a=_scaled(data, 2, 0.1, -400.0),
        max_cell_voltage_v=round((cell & 0x0FFF) * 0.01, 2),
        max_cell_group=cell >> 12,
        soc_pct=None if data[6] == 0xFF else data[6],
        remaining_min=_u16(data, 7),
    )


_BSM_FLAGS = (
    # (byte, shift, token for 01, token for 10)
    (5, 0, "cell_overvoltage", "cell_undervoltage"),
    (5, 2, "soc_high", "soc_low"),
    (5, 4, "overcurrent", "current_unreliable"),
    (5, 6, "overtemperature", "temperature_unreliable"),
    (6, 0, "insulation", "insulation_unreliable"),
    (6, 2, "connector", "connector_unreliable"),
)


#: every fault token ``decode_bsm`` can emit (the fault vocabulary must know each one)
BSM_FAULT_NAMES = frozenset(name for _, _, *names in _BSM_FLAGS for name in names)
NOT_AVAILABLE = 0xFF  # a one-byte value of all ones: "not available" (J1939, GB/T 27930 7.9)


def _temperature(byte: int) -> int | None:
    return None if byte == NOT_AVAILABLE else byte - 50


def decode_bsm(data: bytes) -> Bsm:
    """BSM: extremes plus the 2-bit alarm flags as stable fault tokens."""
    _need("BSM", data, 7)
    faults = []
    for byte, shift, high, low in _BSM_FLAGS:
        value = (data[byte] >> shift) & 3
        if value == 1:
            faults.append(high)
        elif value == 2:
            faults.append(low)
    return Bsm(
        max_voltage_cell=data[0] + 1,
        max_temperature_c=_temperature(data[1]),
        max_temperature_probe=data[2] + 1,
        min_temperature_c=_temperature(data[3]),
        min_temperature_probe=data[4] + 1,
        faults=tuple(faults),
        charge_allowed=((data[6] >> 4) & 3) == 1,
    )


def decode_bmv(data: bytes) -> tuple[float, ...]:
    """BMV: cell voltages, 2 bytes each, 0.01 V in bits 1-12 (group number dropped)."""
    if len(data) < 2 or len(data) % 2 or len(data) > 512:
        raise FrameError(f"BMV: length must be even and 2..512, got {len(data)}", frame=bytes(data))
    return tuple(round((_u16(data, i) & 0x0FFF) * 0.01, 2) for i in range(0, len(data), 2))


def decode_bmt(data: bytes) -> tuple[int, ...]:
    """BMT: one byte per temperature probe, -50 degC offset; 0xFF = no probe."""
    if not 1 <= len(data) <= 128:
        raise FrameError(f"BMT: length must be 1..128, got {len(data)}", frame=bytes(data))
    return tuple(b - 50 for b in data if b != 0xFF)


def decode_bsd(data: bytes) -> Bsd:
    """BSD: end-of-charge statistics."""
    _need("BSD", data, 7)
    return Bsd(
        end_soc_pct=data[0],
        min_cell_voltage_v=round(_u16(data, 1) * 0.01, 2),
        max_cell_voltage_v=round(_u16(data, 3) * 0.01, 2),
        min_temperature_c=data[5] - 50,
        max_temperature_c=data[6] - 50,
    )
