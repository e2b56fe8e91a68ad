"""Plain form out of frozen dataclasses: dicts, lists and scalars for CBOR, JSON and TOML.

The other direction, with validation, is ``edge_agent.dataform.from_plain``. Each type is
compiled once into a converter (dataclasses get generated straight-line code per field).
"""

from __future__ import annotations

import dataclasses
import enum
import keyword
import operator
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

_NONE = type(None)
_PASS = frozenset({str, int, float, bool, bytes, _NONE})  # to_plain returns these unchanged

# --- to_plain -------------------------------------------------------------------------------

_TO_PLAIN: dict[type, Callable[[Any], Any]] = {}


def to_plain(obj: Any) -> Any:
    """Convert dataclasses, enums, tuples and paths to dicts, lists and scalars; drop None."""
    tp = type(obj)
    if tp in _PASS:
        return obj
    conv = _TO_PLAIN.get(tp)
    if conv is None:
        conv = _TO_PLAIN[tp] = _to_plain_for(tp)
    return conv(obj)


def _to_plain_for(tp: type) -> Callable[[Any], Any]:
    # the same tests in the same order as on every call before, decided once per type
    if dataclasses.is_dataclass(tp) and not issubclass(tp, type):
        return _dataclass_to_plain(tp)
    if issubclass(tp, enum.Enum):
        return operator.attrgetter("value")
    if issubclass(tp, tuple | list):
        return _seq_to_plain
    if issubclass(tp, Mapping):
        return lambda obj: {str(k): to_plain(v) for k, v in obj.items()}
    if issubclass(tp, Path):
        return str
    return lambda obj: obj


def _seq_to_plain(obj: Any) -> list[Any]:
    if _PASS.issuperset(map(type, obj)):  # e.g. 108 cell voltages: one C-level pass
        return list(obj)
    return [v if type(v) in _PASS else to_plain(v) for v in obj]


def _dataclass_to_plain(tp: type) -> Callable[[Any], Any]:
    # generated straight-line code: no loop, no per-field tuple, nested converters looked up
    # by the value's own type (so any value, whatever the hint says, converts as before)
    lines = ["def convert(obj):", "    out = {}"]
    for f in dataclasses.fields(tp):
        name = f.name
        get = f"obj.{name}" if _plain_name(name) else f"getattr(obj, {name!r})"
        lines += [
            f"    v = {get}",
            "    if v is not None:",
            "        t = type(v)",
            "        if t in PASS:",
            f"            out[{name!r}] = v",
            "        else:",
            "            c = KNOWN.get(t)",
            f"            out[{name!r}] = c(v) if c is not None else to_plain(v)",
        ]
    lines.append("    return out")
    return typing.cast(
        Callable[[Any], Any],
        _generate(lines, "convert", {"PASS": _PASS, "KNOWN": _TO_PLAIN, "to_plain": to_plain}),
    )


def _plain_name(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("__")


def _generate(lines: list[str], name: str, namespace: dict[str, Any]) -> Any:
    """Compile generated source (built only from field names, never from data)."""
    exec("\n".join(lines), namespace)  # noqa: S102
    return namespace[name]
