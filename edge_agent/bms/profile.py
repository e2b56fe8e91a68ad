"""Pack profiles: TOML files that choose and parameterise the BMS methods for a pack model.

Shipped profiles live in ``edge_agent/bms/profiles/``; users add their own directories through
``bms.profile_dirs``. A new pack model needs only a profile file (and, for DBC, the DBC file).
Method sections are defined by their backends (``can/profile_sections.py``,
``modbus/profile_sections.py``) so each backend owns its parameters.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edge_agent.bms.can.profile_sections import (
    DbcSection,
    GbtSection,
    UdsSection,
    check_can_sections,
)
from edge_agent.bms.chemistry import CHEMISTRIES
from edge_agent.bms.modbus.profile_sections import RegisterMapSection, SunSpecSection
from edge_agent.dataform import bounded, from_plain, pattern
from edge_agent.errors import ProfileError

SHIPPED_DIR = Path(__file__).parent / "profiles"


@dataclass(frozen=True, kw_only=True)
class ProfileLimits:
    """A profile's [limits]: plausible ranges of this pack model's values (None = unchecked).

    ``ReadingBuilder.build`` checks a reading against them: a value outside becomes a problem,
    a cell spread above ``max_cell_spread_v`` the fault ``cell_imbalance``.
    """

    pack_voltage_v: tuple[float, float] | None = None
    cell_voltage_v: tuple[float, float] | None = (2.0, 4.4)
    temperature_c: tuple[float, float] | None = (-30.0, 65.0)
    soc_pct: tuple[float, float] | None = (0.0, 100.0)
    max_cell_spread_v: float | None = None


@dataclass(frozen=True, kw_only=True)
class PackProfile:
    """One pack model's BMS protocol knowledge."""

    name: str = pattern(r"[a-z0-9][a-z0-9_.-]{0,63}")
    description: str = ""
    transport: Literal["can", "modbus"]
    methods: tuple[str, ...]
    bitrate: int = bounded(10_000, 1_000_000, default=250_000)
    manufacturer_codes: tuple[str, ...] = ()  # GB/T 34014 manufacturer codes this model carries
    battery_type: str = ""  # expected chemistry token
    limits: ProfileLimits = field(default_factory=ProfileLimits)
    gbt27930: GbtSection | None = None
    uds: UdsSection | None = None
    dbc: DbcSection | None = None
    sunspec: SunSpecSection | None = None
    regmap: RegisterMapSection | None = None
    # for the intake record: Regulation (EU) 2023/1542 category of this pack model, and what
    # its SOH value means ("soce": UN GTR 22 state of certified energy, "capacity": remaining
    # capacity of rated); empty = not stated by the profile (the event then says so)
    battery_category: Literal["", "ev", "industrial", "stationary", "lmt"] = ""
    soh_definition: Literal["", "soce", "capacity", "unspecified"] = ""
    path: str = ""  # where it was loaded from (filled by the loader)


def load_profile_file(path: Path) -> PackProfile:
    """Parse and validate one profile file; ProfileError names the file and key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"cannot read profile {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from None
    data["path"] = str(path)
    profile = from_plain(PackProfile, data, path=path.stem, error=ProfileError)
    for method in profile.methods:
        if getattr(profile, method, None) is None and method in {"dbc", "regmap"}:
            raise ProfileError(f"method {method!r} needs a [{method}] section", key_path=path.stem)
    for key_path, problem in check_can_sections(name=path.stem, uds=profile.uds, dbc=profile.dbc):
        raise ProfileError(problem, key_path=key_path)
    if profile.battery_type and profile.battery_type not in CHEMISTRIES:
        raise ProfileError(
            f"battery_type {profile.battery_type!r} is not in the chemistry table "
            f"(edge_agent/bms/chemistry.py: {', '.join(sorted(CHEMISTRIES))})",
            key_path=f"{path.stem}.battery_type",
        )
    return profile


def profile_dirs(extra: Iterable[Path] = ()) -> list[Path]:
    """Shipped directory first, then user directories (later ones override by name)."""
    return [SHIPPED_DIR, *(p.expanduser() for p in extra)]


def list_profiles(extra: Iterable[Path] = ()) -> dict[str, Path]:
    """Profile name -> file, user directories overriding shipped ones."""
    found: dict[str, Path] = {}
    for directory in profile_dirs(extra):
        if directory.is_dir():
            for file in sorted(directory.glob("*.toml")):
                found[file.stem] = file
    return found


def load_profile(name: str, extra: Iterable[Path] = ()) -> PackProfile:
    """Load a profile by name (file stem) or by path."""
    candidate = Path(name)
    if candidate.suffix == ".toml" and candidate.is_file():
        return load_profile_file(candidate)
    profiles = list_profiles(extra)
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise ProfileError(
            f"unknown pack profile {name!r} (known: {known})", key_path="bms.profile"
        )
    return load_profile_file(profiles[name])
