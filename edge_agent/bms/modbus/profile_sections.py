"""Profile sections for the Modbus methods (SunSpec, register maps). Owned by the Modbus backend.

A register map in TOML, either as tables or as inline tables::

    [regmap]
    function = "holding"          # or "input"
    word_order = "big"            # 32-bit values: high word first ("little": low word first)
    [regmap.registers]
    soc = { address = 303, type = "u16", scale = 0.01, unit = "%", field = "state.soc" }
    [regmap.registers.serial]
    address = 150
    type = "string"
    count = 16
    field = "identity.serial"
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from edge_agent.dataform import bounded
from edge_agent.model import BmsIdentity, BmsState

RegisterType = Literal["u16", "i16", "u32", "i32", "f32", "string"]
WordOrder = Literal["big", "little"]
TYPE_WORDS = {"u16": 1, "i16": 1, "u32": 2, "i32": 2, "f32": 2}

# Targets a register may fill: every Value field of BmsIdentity/BmsState, plus the two arrays.
VALUE_TARGETS = frozenset(
    [f"identity.{f.name}" for f in dataclasses.fields(BmsIdentity)]
    + [
        f"state.{f.name}" for f in dataclasses.fields(BmsState) if "Value" in str(f.type)
    ]  # Value-typed
)
ARRAY_TARGETS = frozenset({"state.cell_voltages", "state.temperatures"})


@dataclass(frozen=True, kw_only=True)
class RegisterDef:
    """One value in a vendor register map and the BmsReading field it fills."""

    address: int = bounded(0, 0xFFFF)
    type: RegisterType = "u16"
    count: int = bounded(1, 125, default=1)  # registers of a string; elements of an array target
    word_order: WordOrder | None = None  # None: the map's default
    swap_bytes: bool = False  # strings stored low byte first
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    field: str
    not_implemented: int | None = None  # raw value that means "no value" (e.g. 65535)

    def __post_init__(self) -> None:
        if self.field not in VALUE_TARGETS | ARRAY_TARGETS:
            known = ", ".join(sorted(VALUE_TARGETS | ARRAY_TARGETS))
            raise ValueError(f"field {self.field!r} is not a BmsReading field (one of: {known})")
        if self.type == "string" and self.field in ARRAY_TARGETS:
            raise ValueError(f"{self.field} needs a numeric type, not string")
        if self.type != "string" and self.field not in ARRAY_TARGETS and self.count != 1:
            raise ValueError("count applies to strings and array fields only")
        if self.scale == 0:
            raise ValueError("scale must not be 0")
        if self.address + self.words > 0x10000:
            raise ValueError(f"register {self.address} + {self.words} words runs past 65535")
        if self.words > 125:
            raise ValueError(f"{self.words} registers exceed one Modbus read (125)")

    @property
    def words(self) -> int:
        """Registers this definition occupies."""
        return self.count if self.type == "string" else TYPE_WORDS[self.type] * self.count


@dataclass(frozen=True, kw_only=True)
class RegisterMapSection:
    """A declarative vendor register map: registers by name, read with coalesced requests."""

    function: Literal["holding", "input"] = "holding"
    word_order: WordOrder = "big"
    max_gap: int = bounded(0, 124, default=24)  # unread registers bridged to save a round trip
    registers: dict[str, RegisterDef] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.registers:
            raise ValueError("a register map needs at least one register")


@dataclass(frozen=True, kw_only=True)
class SunSpecSection:
    """SunSpec discovery parameters."""

    base_addresses: tuple[int, ...] = (40000, 0, 50000)
    max_models: int = bounded(1, 4096, default=512)  # a longer chain is treated as a loop

    def __post_init__(self) -> None:
        if not self.base_addresses or any(not 0 <= a <= 0xFFFD for a in self.base_addresses):
            raise ValueError("base_addresses must be a non-empty list of addresses 0..65533")
