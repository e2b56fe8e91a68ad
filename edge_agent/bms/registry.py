"""The one registry of BMS methods, and ``open_bms``: the one way to get a ``BmsSource``.

A method name (``gbt27930``, ``uds``, ``dbc``, ``sunspec``, ``regmap``) maps to a ``BmsSource``
subclass written as an entry-point value (``module:Class``) and imported only when a profile
lists it. The built-in methods are the table below; other packages add methods through the
entry-point group ``edge_agent.bms_backends`` (as python-can's ``can.interface``). Built-in
names are reserved: an entry point of the same name is never consulted.

A profile's methods run in its order on one connection of its transport, through that
transport's composite source: the CAN composite shares one bus and one ``ReadingBuilder``
between its methods, the Modbus composite merges one reading per method.
"""

from __future__ import annotations

import importlib
import logging
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.bms.source import BmsSource
from edge_agent.errors import BmsBackendError, ConfigError, ProfileError

if TYPE_CHECKING:
    from edge_agent.bms.profile import PackProfile
    from edge_agent.bms.settings import BmsSettings
    from edge_agent.model import BmsReading

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "edge_agent.bms_backends"

# method name -> "module:Class" (entry-point syntax); imported only when used
BUILTIN_METHODS: dict[str, str] = {
    "gbt27930": "edge_agent.bms.can.gbt27930_source:GbtSource",
    "uds": "edge_agent.bms.can.uds_source:UdsSource",
    "dbc": "edge_agent.bms.can.dbc_source:DbcSource",
    "sunspec": "edge_agent.bms.modbus.sunspec_source:SunSpecSource",
    "regmap": "edge_agent.bms.modbus.regmap_source:RegisterMapSource",
}

# transport -> the composite that runs a profile's methods of that transport in order
COMPOSITES: dict[str, str] = {
    "can": "edge_agent.bms.can.profile_source:CanProfileSource",
    "modbus": "edge_agent.bms.modbus.profile_source:ModbusProfileSource",
}


def _entry_points() -> dict[str, metadata.EntryPoint]:
    """Installed third-party methods by name (built-in names excluded)."""
    found: dict[str, metadata.EntryPoint] = {}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in BUILTIN_METHODS:
            log.warning("entry point %s ignored: %r is a built-in BMS method", entry, entry.name)
            continue
        found.setdefault(entry.name, entry)
    return found


def known_methods() -> dict[str, str]:
    """Every method name with its ``module:Class``: built-in ones, then installed ones."""
    installed = {name: entry.value for name, entry in sorted(_entry_points().items())}
    return {**BUILTIN_METHODS, **installed}


def _import(target: str) -> object:
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


def method_class(name: str) -> type[BmsSource]:
    """Import and return the ``BmsSource`` class registered as method ``name``."""
    target = BUILTIN_METHODS.get(name, f"entry point {name!r} of {ENTRY_POINT_GROUP}")
    try:
        if name in BUILTIN_METHODS:
            loaded = _import(target)
        else:
            entries = _entry_points()
            if name not in entries:
                raise ConfigError(
                    f"unknown BMS method {name!r} (known: {', '.join(known_methods())})"
                )
            target = entries[name].value
            loaded = entries[name].load()
    except ConfigError:
        raise
    except Exception as exc:  # a plug-in may fail in any way while importing
        raise BmsBackendError(
            f"BMS method {name!r} ({target}) cannot be loaded: {type(exc).__name__}: {exc}",
            method=name,
            target=target,
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, BmsSource)):
        raise BmsBackendError(
            f"BMS method {name!r} ({target}) is not a BmsSource subclass",
            method=name,
            target=target,
        )
    return loaded


def profile_method_classes(profile: PackProfile) -> list[type[BmsSource]]:
    """The classes of ``profile``'s methods, in order, each checked against its transport."""
    classes: list[type[BmsSource]] = []
    for name in profile.methods:
        try:
            cls = method_class(name)
        except BmsBackendError:
            raise
        except ConfigError as exc:
            raise ProfileError(exc.problem, key_path=f"{profile.name}.methods") from None
        if cls.transport != profile.transport:
            raise ProfileError(
                f"method {name!r} is not a {_transport_title(profile.transport)} method "
                f"(it reads over {_transport_title(cls.transport)})",
                key_path=f"{profile.name}.methods",
            )
        classes.append(cls)
    if not classes:
        raise ProfileError(
            f"a {_transport_title(profile.transport)} profile needs at least one method",
            key_path=f"{profile.name}.methods",
        )
    return classes


def _transport_title(transport: str) -> str:
    return {"can": "CAN", "modbus": "Modbus"}.get(transport, transport)


def open_bms(
    profile: PackProfile, settings: BmsSettings, *, record: Path | None = None
) -> BmsSource:
    """A source that reads ``profile``'s methods in order through ``settings``' bus or device.

    ``record`` (CAN only) also writes the session to a python-can log file. Unknown or
    mismatched methods raise ``ProfileError``; a plug-in that cannot load, ``BmsBackendError``.
    """
    if profile.transport not in COMPOSITES:
        raise ProfileError(
            f"no BMS transport {profile.transport!r} (known: {', '.join(COMPOSITES)})",
            key_path=f"{profile.name}.transport",
        )
    composite = _import(COMPOSITES[profile.transport])
    assert isinstance(composite, type) and issubclass(composite, BmsSource)
    return composite.from_profile(profile, settings, record=record)


async def read_bms(
    profile: PackProfile, settings: BmsSettings, timeout: float, *, record: Path | None = None
) -> BmsReading:
    """Open ``profile``'s source, read it once within ``timeout`` seconds and close it."""
    async with open_bms(profile, settings, record=record) as source:
        return await source.read(timeout)
