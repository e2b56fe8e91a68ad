"""Chemistry tokens and the plausible pack-level specific energy per chemistry.

Bands are pack level (cells + housing + BMS), wide on purpose: they catch a wrong pack on the
scale or a wrong rated energy, not a 10 % difference. Sources: published pack data of LFP
(~90-160 Wh/kg) and NCM (~140-260 Wh/kg) traction packs; other chemistries are kept broad.
"""

from __future__ import annotations

# chemistry token -> (low, high) pack specific energy in Wh/kg
SPECIFIC_ENERGY_WH_PER_KG: dict[str, tuple[float, float]] = {
    "lfp": (70.0, 200.0),
    "ncm": (100.0, 300.0),
    "nca": (100.0, 300.0),
    "lmo": (60.0, 200.0),
    "lco": (80.0, 250.0),
    "lto": (30.0, 120.0),
    "nimh": (25.0, 90.0),
    "lead_acid": (15.0, 50.0),
    "polymer": (80.0, 300.0),
}
DEFAULT_BAND = (25.0, 300.0)

# GB/T 27930 BRM battery type byte -> token (standards.md 2.3)
GBT27930_BATTERY_TYPES: dict[int, str] = {
    0x01: "lead_acid",
    0x02: "nimh",
    0x03: "lfp",
    0x04: "lmo",
    0x05: "lco",
    0x06: "ncm",
    0x07: "polymer",
    0x08: "lto",
    0xFF: "other",
}


def energy_band(chemistry: str | None) -> tuple[float, float]:
    """Plausible pack specific energy band (Wh/kg) for a chemistry token."""
    if chemistry is None:
        return DEFAULT_BAND
    return SPECIFIC_ENERGY_WH_PER_KG.get(chemistry, DEFAULT_BAND)


# SunSpec model 802 (BatTyp) can only say "lithium_ion": the family, not the cathode
LITHIUM_ION_FAMILY = frozenset({"lfp", "ncm", "nca", "lmo", "lco", "lto", "polymer"})


def same_chemistry(a: str, b: str) -> bool | None:
    """True/False when both tokens are known; None when either is unknown or 'other'."""
    unknown = {"", "other"}
    if a in unknown or b in unknown or a.startswith("unconfirmed") or b.startswith("unconfirmed"):
        return None
    if "lithium_ion" in (a, b):  # the family token matches any lithium-ion chemistry
        return {a, b} <= LITHIUM_ION_FAMILY | {"lithium_ion"}
    return a == b
