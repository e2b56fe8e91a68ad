"""Profile sections for the Modbus methods (SunSpec, register maps). Owned by the Modbus backend."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class SunSpecSection:
    """SunSpec discovery parameters."""

    base_addresses: tuple[int, ...] = (40000, 0, 50000)


@dataclass(frozen=True, kw_only=True)
class RegisterMapSection:
    """A declarative vendor register map."""

    word_order: str = "big"
