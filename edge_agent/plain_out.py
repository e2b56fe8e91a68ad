"""Plain form out of frozen dataclasses: dicts, lists and scalars for CBOR, JSON and TOML.

The other direction, with validation, is ``edge_agent.dataform.from_plain``. Each type is
compiled once into a converter (dataclasses get generated straight-line code per field).
"""

from __future__ import annotations

import dataclasses
import enum
import keyword
import operator
import types
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


# --- already in plain form ------------------------------------------------------------------

_SAME_SCALARS = frozenset({str, int, bool, bytes})  # kept as they are by from_plain and to_plain
_IS_PLAIN: dict[type, Callable[[Any], bool]] = {}


def is_plain_form(cls: type, plain: Mapping[str, Any]) -> bool:
    """True when ``plain``, which ``from_plain(cls, plain)`` accepted, is already what
    ``to_plain`` gives for the object built from it: no default left out (to_plain writes
    it), no explicit None (to_plain drops it), no integer where a float is kept. False means
    "not known to be": use ``to_plain``."""
    check = _IS_PLAIN.get(cls)
    if check is None:
        check = _IS_PLAIN[cls] = _plain_form_check(cls)
    return check(plain)


def _plain_form_check(cls: type) -> Callable[[Any], bool]:
    hints = typing.get_type_hints(cls)
    lines = ["def check(value):"]
    namespace: dict[str, Any] = {"is_plain_form": is_plain_form, "float": float}
    for i, f in enumerate(dataclasses.fields(cls)):
        name = repr(f.name)
        default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        lines += [f"    if {name} in value:", f"        v = value[{name}]"]
        lines.append("        if v is None:\n            return False")
        test = _value_test(_optional_inner(hints[f.name]), "v", namespace, f"t{i}")
        if test is not None:
            lines.append(f"        if not ({test}):\n            return False")
        if default is dataclasses.MISSING or default is not None:
            lines.append("    else:\n        return False")
    lines.append("    return True")
    return typing.cast(Callable[[Any], bool], _generate(lines, "check", namespace))


def _optional_inner(hint: Any) -> Any:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and _NONE in args:
        rest = [a for a in args if a is not _NONE]
        return rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]  # noqa: UP007
    return hint


def _value_test(hint: Any, var: str, namespace: dict[str, Any], tag: str) -> str | None:
    """A Python expression true when the value ``var`` (accepted for ``hint``) converts back to
    itself; None when it always does."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in _SAME_SCALARS or origin is typing.Literal:
        return None
    if hint is float:
        return f"type({var}) is float"
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        namespace[tag] = hint
        return f"is_plain_form({tag}, {var})"
    if origin is tuple:
        items = list(args[:1]) if len(args) == 2 and args[1] is Ellipsis else list(args)
        tests = [_value_test(a, "x", namespace, f"{tag}_{j}") for j, a in enumerate(items)]
        if all(t is None for t in tests):
            return None
        if len(items) == 1 and len(args) == 2:
            return f"all({tests[0]} for x in {var})"
        return "False"  # fixed tuples with converted items: not needed by any model yet
    if origin is dict and args[0] is str:
        test = _value_test(args[1], "x", namespace, f"{tag}_v")
        return None if test is None else f"all({test} for x in {var}.values())"
    if origin in (typing.Union, types.UnionType) and set(args) <= _SAME_SCALARS | {float}:
        # an int stays an int unless float comes before int among the members
        if float not in args or (int in args and args.index(int) < args.index(float)):
            return None
        return f"type({var}) is not int"
    return "False"  # anything else (Any, paths, enums, other unions): not known to be
