"""The one chemistry vocabulary: tokens, protocol codes, plausibility and triage thresholds.

Every part of the agent names a chemistry with a token from ``CHEMISTRIES``: the GB/T 27930
BRM decoder, the SunSpec 802 ``Typ`` mapping, GB/T 34014 label codes (``codes/tables.py``),
pack profiles (``battery_type``), the weight-vs-energy bands and the triage thresholds. A test
keeps those users inside this table.

Numbers are wide on purpose. Specific energy is pack level (cells + housing + BMS): it catches
a wrong pack on the scale, not a 10 % difference (LFP ~90-160 Wh/kg, NCM ~140-260 Wh/kg
published pack data). ``cell_voltage_v`` is what a cell of that chemistry can physically show
(beyond it the number is a decoding or BMS error, not a cell state). ``deep_discharge_v`` is
the cell voltage below which the pack counts as deeply discharged (SP 376 note d, damaged):
typical maker minimum discharge voltages (LFP 2.0-2.5 V, layered-oxide cathodes 2.5-3.0 V,
LTO 1.5 V, NiMH 0.9-1.0 V, lead-acid 1.75 V per cell); site policy, not an ADR number.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chemistry:
    """One chemistry token and what the agent knows about it."""

    token: str
    name: str
    specific_energy_wh_per_kg: tuple[float, float]
    cell_voltage_v: tuple[float, float]
    deep_discharge_v: float | None = None  # None: no chemistry-specific threshold
    lithium_ion: bool = False
    gbt27930_code: int | None = None  # BRM battery type byte (standards.md 2.3)
    sunspec_typ: int | None = None  # SunSpec 802 Typ enum


_TABLE = (
    Chemistry("lead_acid", "lead-acid", (15.0, 50.0), (0.0, 3.0), 1.75, False, 0x01, 1),
    Chemistry("nimh", "nickel-metal hydride", (25.0, 90.0), (0.0, 2.0), 0.9, False, 0x02, 2),
    Chemistry("nicd", "nickel-cadmium", (20.0, 70.0), (0.0, 2.0), 0.9, False, None, 3),
    Chemistry("lfp", "lithium iron phosphate", (70.0, 200.0), (0.0, 4.5), 2.0, True, 0x03),
    Chemistry("lmo", "lithium manganese oxide", (60.0, 200.0), (0.0, 5.0), 2.5, True, 0x04),
    Chemistry("lco", "lithium cobalt oxide", (80.0, 250.0), (0.0, 5.0), 2.5, True, 0x05),
    Chemistry("ncm", "ternary (NCM)", (100.0, 300.0), (0.0, 5.0), 2.5, True, 0x06),
    Chemistry("nca", "nickel cobalt aluminium", (100.0, 300.0), (0.0, 5.0), 2.5, True),
    Chemistry("polymer", "lithium-ion polymer", (80.0, 300.0), (0.0, 5.0), 2.5, True, 0x07),
    Chemistry("lto", "lithium titanate", (30.0, 120.0), (0.0, 3.5), 1.5, True, 0x08),
    # SunSpec 802 only says "lithium-ion": cathode unknown, so the lowest non-LTO threshold
    Chemistry(
        "lithium_ion",
        "lithium-ion (cathode unknown)",
        (30.0, 300.0),
        (0.0, 5.0),
        2.0,
        True,
        None,
        4,
    ),
    Chemistry("nas", "sodium-sulfur", (60.0, 200.0), (0.0, 2.6), None, False, None, 9),
    Chemistry("flow", "flow battery", (5.0, 60.0), (0.0, 2.5), None, False, None, 10),
    Chemistry("other", "other or unknown", (25.0, 300.0), (0.0, 5.0), None, False, 0xFF, 99),
)
CHEMISTRIES: dict[str, Chemistry] = {c.token: c for c in _TABLE}
DEFAULT_BAND = CHEMISTRIES["other"].specific_energy_wh_per_kg
WIDEST_CELL_VOLTAGE_V = (0.0, max(c.cell_voltage_v[1] for c in _TABLE))

GBT27930_CODES: dict[int, str] = {
    c.gbt27930_code: c.token for c in _TABLE if c.gbt27930_code is not None
}
SUNSPEC_TYP: dict[int, str] = {c.sunspec_typ: c.token for c in _TABLE if c.sunspec_typ is not None}
LITHIUM_ION_FAMILY = frozenset(c.token for c in _TABLE if c.lithium_ion)
UNCONFIRMED_PREFIX = "unconfirmed:"  # GB/T 34014 letters whose meaning no source confirms


def chemistry(token: str | None) -> Chemistry | None:
    """The table row of a definite token; None for unknown, "other" and unconfirmed ones."""
    if not token or token == "other":  # noqa: S105 - a chemistry token, not a secret
        return None
    return CHEMISTRIES.get(token)


def is_definite(token: str | None) -> bool:
    """True for a known chemistry token other than "other" and "unconfirmed:X"."""
    return chemistry(token) is not None


def energy_band(token: str | None) -> tuple[float, float]:
    """Plausible pack specific energy band (Wh/kg) for a chemistry token."""
    row = chemistry(token)
    return row.specific_energy_wh_per_kg if row else DEFAULT_BAND


def cell_voltage_band(token: str | None) -> tuple[float, float]:
    """Physically possible cell voltage (V); the widest band when the chemistry is unknown."""
    row = chemistry(token)
    return row.cell_voltage_v if row else WIDEST_CELL_VOLTAGE_V


def deep_discharge_v(token: str | None, default: float) -> float:
    """Deep-discharge cell voltage of a chemistry, ``default`` when it has none or is unknown."""
    row = chemistry(token)
    return row.deep_discharge_v if row and row.deep_discharge_v is not None else default


def same_chemistry(a: str, b: str) -> bool | None:
    """True/False when both tokens are known; None when either is unknown or 'other'."""
    if not is_definite(a) or not is_definite(b):
        return None
    if "lithium_ion" in (a, b):  # the family token matches any lithium-ion chemistry
        return a in LITHIUM_ION_FAMILY and b in LITHIUM_ION_FAMILY
    return a == b


def resolve(label: str | None, bms: str | None) -> tuple[str | None, str]:
    """The chemistry to use and where it came from ("label", "bms", "both" or "").

    A definite token beats an indefinite one ("unconfirmed:X", "other", the lithium-ion family
    beats nothing but those): an unconfirmed label letter never overrides the BMS. When both
    are definite and differ the label is kept (the mismatch is a failed check, never a guess).
    """
    if label and bms:
        if label == bms:
            return label, "both"
        if is_definite(label) and is_definite(bms):
            if "lithium_ion" in (label, bms) and same_chemistry(label, bms):
                specific = bms if label == "lithium_ion" else label
                return specific, "label" if specific == label else "bms"
            return label, "label"
        if is_definite(bms):
            return bms, "bms"
        return label, "label"
    if label:
        return label, "label"
    if bms:
        return bms, "bms"
    return None, ""
