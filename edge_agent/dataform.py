"""Plain-data form of frozen dataclasses: to dicts/lists for CBOR, JSON and TOML, and back.

One mechanism serves the event model (CBOR/JSON), the configuration file (TOML) and pack
profiles, so validation rules and error messages are the same everywhere. Field metadata
adds constraints: ``bounded(lo, hi)``, ``pattern(regex)``, ``length(lo, hi)``.
A failure names the key path: ``uplink.mqtt.port: must be 1..65535, got 70000``.

Speed (docs/performance-dataform.md): each type is compiled once, cached by type, into a
converter that already knows hints and constraints, so a conversion does no ``typing``
introspection; dataclasses get generated straight-line code per field. Converters take
``(value, parent, key)`` and a scalar builds its key path only when it fails.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from edge_agent.dataform_fast import fast_path, plain_init
from edge_agent.errors import EdgeAgentError
from edge_agent.plain_out import _generate, to_plain

__all__ = ["DataFormError", "bounded", "from_plain", "length", "pattern", "to_plain"]

T = TypeVar("T")
_Key = str | int | None
_Conv = Callable[[Any, str, _Key], Any]
_NONE = type(None)


class DataFormError(EdgeAgentError, ValueError):
    """A plain value does not fit its declared type; ``key_path`` names where."""

    def __init__(self, message: str, *, key_path: str = "") -> None:
        self.key_path = key_path
        self.problem = message
        super().__init__(f"{key_path}: {message}" if key_path else message)


def bounded(lo: float | None = None, hi: float | None = None, **kw: Any) -> Any:
    """Field with an inclusive numeric range."""
    return dataclasses.field(metadata={"min": lo, "max": hi}, **kw)


def pattern(regex: str, **kw: Any) -> Any:
    """Text field that must match ``regex`` entirely."""
    return dataclasses.field(metadata={"pattern": re.compile(regex)}, **kw)


def length(lo: int = 0, hi: int | None = None, **kw: Any) -> Any:
    """Text, bytes or sequence field with a length range."""
    return dataclasses.field(metadata={"min_len": lo, "max_len": hi}, **kw)


# --- from_plain -----------------------------------------------------------------------------


def from_plain(
    cls: type[T], data: Any, *, path: str = "", error: type[Exception] | None = None
) -> T:
    """Build ``cls`` from plain data, validating types and field constraints."""
    plain_class = type(cls) is type  # not a union or alias: _converter keys those by members
    convert = _TOP.get(cls) if plain_class else None
    if convert is None:
        convert = _converter(cls, None)
        if plain_class:
            _TOP[cls] = convert
    try:
        return typing.cast(T, convert(data, path, None))
    except DataFormError as exc:
        if error is None or error is DataFormError:
            raise
        raise error(exc.problem, key_path=exc.key_path) from None  # type: ignore[call-arg]


_TOP: dict[Any, _Conv] = {}  # from_plain's converter per class (no typing call per use)


def _at(parent: str, key: _Key) -> str:
    if key is None:
        return parent
    if type(key) is int:
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else typing.cast(str, key)


def _describe(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print (sys.set_int_max_str_digits)
        text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(problem: str, parent: str, key: _Key) -> typing.NoReturn:
    raise DataFormError(problem, key_path=_at(parent, key))


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


_CACHE: dict[Any, _Conv] = {}


def _converter(tp: Any, meta: Mapping[str, Any] | None) -> _Conv:
    """The compiled converter for ``tp`` with field constraints ``meta``."""
    if meta:
        return _compile_safely(tp, meta)
    # unions compare equal whatever their member order (int | str == str | int), but the order
    # decides the error message, so it is part of the key
    key = (tp, typing.get_args(tp))
    try:
        conv = _CACHE.get(key)
    except TypeError:  # an unhashable type form: compile, don't cache
        return _compile_safely(tp, None)
    if conv is None:
        conv = _CACHE[key] = _compile_safely(tp, None)
    return conv


def _compile_safely(tp: Any, meta: Mapping[str, Any] | None) -> _Conv:
    try:
        return _compile(tp, meta)
    except Exception as exc:  # a malformed type fails when used, as it always did
        error = exc

        def broken(value: Any, parent: str, key: _Key) -> Any:
            raise error

        return broken


def _compile(tp: Any, meta: Mapping[str, Any] | None) -> _Conv:
    # the same dispatch order as the type-walking converter this replaced
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _union(typing.get_args(tp), meta)
    if origin is typing.Literal:
        return _literal(typing.get_args(tp))
    if origin is tuple:
        return _tuple(typing.get_args(tp), meta)
    if origin is dict:
        key_t, val_t = typing.get_args(tp)
        return _dict(_converter(key_t, None), _converter(val_t, None), key_t, val_t)
    if tp is Any:
        return lambda value, parent, key: value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum(tp)
    return _scalar(tp, meta or {})


# a union member of one of these types rejects a value by its type alone, before any constraint
_ACCEPTS: dict[Any, tuple[type, ...]] = {
    bool: (bool,),
    int: (int,),
    float: (int, float),
    str: (str,),
    bytes: (bytes,),
}


def _union(args: tuple[Any, ...], meta: Mapping[str, Any] | None) -> _Conv:
    optional = _NONE in args
    non_none = [a for a in args if a is not _NONE]
    if len(non_none) == 1:
        inner = _converter(non_none[0], meta)
        if not optional:
            return inner
        return lambda value, parent, key: None if value is None else inner(value, parent, key)
    members = [_converter(a, meta) for a in non_none]
    # value type -> the first member that does not reject it by type; the members before it
    # would fail anyway, so trying it first gives the same result (slow path if it fails)
    first: dict[type, _Conv] = {}
    for vt in (bool, int, float, str, bytes):
        for arg, conv in zip(non_none, members, strict=True):
            accepts = _ACCEPTS.get(arg) if isinstance(arg, type) else None
            if accepts is None:
                break
            if vt in accepts:
                first[vt] = conv
                break

    def convert(value: Any, parent: str, key: _Key) -> Any:
        if value is None and optional:
            return None
        conv = first.get(type(value))
        if conv is not None:
            try:
                return conv(value, parent, key)
            except DataFormError:
                pass
        errors = []
        for conv in members:
            try:
                return conv(value, parent, key)
            except DataFormError as exc:
                errors.append(exc.problem)
        _fail("; ".join(errors), parent, key)

    return convert


def _literal(allowed: tuple[Any, ...]) -> _Conv:
    kind = type(allowed[0])
    choices = ", ".join(repr(a) for a in allowed)

    def convert(value: Any, parent: str, key: _Key) -> Any:
        if value not in allowed or type(value) is not kind:
            _fail(f"must be one of {choices}, got {_describe(value)}", parent, key)
        return value

    return convert


def _len_check(meta: Mapping[str, Any] | None) -> Callable[[Any, str, _Key], None] | None:
    if not meta or "min_len" not in meta:
        return None
    lo, hi = meta["min_len"], meta["max_len"]
    bound = f"{lo}..{hi}" if hi is not None else f"at least {lo}"

    def check(value: Any, parent: str, key: _Key) -> None:
        if len(value) < lo or (hi is not None and len(value) > hi):
            _fail(f"length must be {bound}, got {len(value)}", parent, key)

    return check


def _tuple(args: tuple[Any, ...], meta: Mapping[str, Any] | None) -> _Conv:
    if len(args) == 2 and args[1] is Ellipsis:
        return _var_tuple(args[0], _len_check(meta))
    return _fixed_tuple([_converter(a, None) for a in args], _len_check(meta))


def _var_tuple(item_t: Any, check_len: Callable[[Any, str, _Key], None] | None) -> _Conv:
    item = _converter(item_t, None)
    # items of these types are accepted by their type alone: check all types in one pass
    exact = frozenset({item_t}) if item_t in (str, int, bool, bytes) else None
    real = item_t is float

    def convert(value: Any, parent: str, key: _Key) -> tuple[Any, ...]:
        if not value and type(value) is list and check_len is None:
            return ()  # the most common list of all
        if not isinstance(value, list | tuple):
            _fail(f"must be a list, got {_describe(value)}", parent, key)
        if check_len is not None:
            check_len(value, parent, key)
        if exact is not None and exact.issuperset(map(type, value)):
            return tuple(value)
        if real and _FLOAT_TYPES.issuperset(map(type, value)):
            result = _plain_floats(value)
            if result is not None:
                return result
        path = _at(parent, key)
        return tuple([item(v, path, i) for i, v in enumerate(value)])

    return convert


def _fixed_tuple(items: list[_Conv], check_len: Callable[[Any, str, _Key], None] | None) -> _Conv:
    def convert(value: Any, parent: str, key: _Key) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple):
            _fail(f"must be a list, got {_describe(value)}", parent, key)
        if check_len is not None:
            check_len(value, parent, key)
        if len(items) != len(value):
            _fail(f"must have {len(items)} items, got {len(value)}", parent, key)
        path = _at(parent, key)
        return tuple(
            [conv(v, path, i) for i, (conv, v) in enumerate(zip(items, value, strict=True))]
        )

    return convert


_FLOAT_TYPES = frozenset({float, int})


def _plain_floats(value: Any) -> tuple[float, ...] | None:
    """Floats and ints as a float tuple if all are finite; None means check one by one."""
    try:
        result = tuple(map(float, value))
    except OverflowError:
        return None
    # inf or nan anywhere makes the sum inf or nan; a sum overflowing finite items goes slow
    return result if math.isfinite(sum(result)) else None


def _dict(key_conv: _Conv, val_conv: _Conv, key_t: Any, val_t: Any) -> _Conv:
    text = key_t is str and val_t is str

    def convert(value: Any, parent: str, key: _Key) -> dict[Any, Any]:
        if type(value) is not dict and not isinstance(value, Mapping):
            _fail(f"must be a table, got {_describe(value)}", parent, key)
        if text and all(type(k) is str and type(v) is str for k, v in value.items()):
            return dict(value.items())
        path = _at(parent, key)
        out = {}
        for k, v in value.items():
            out[key_conv(k, path, None)] = val_conv(v, path, str(k))
        return out

    return convert


_Plan = tuple[frozenset[str], str, Callable[[Any, str], Any], bool]


def _dataclass(cls: type) -> _Conv:
    plan: _Plan | None = None

    def compile_fields() -> _Plan:
        hints = _hints(cls)
        fields = [f for f in dataclasses.fields(cls) if f.init]
        names = [f.name for f in fields]
        direct = plain_init(cls)
        # generated straight-line code, field by field in declaration order (so the first bad
        # field in that order is the one reported)
        # direct: the fields go straight into the new instance's dict, in field order
        start = (
            ["    obj = new(cls)", "    kwargs = obj.__dict__"] if direct else ["    kwargs = {}"]
        )
        lines = ["def build(value, path):", *start]
        namespace: dict[str, Any] = {"fail": _fail, "cls": cls, "new": object.__new__}
        for i, f in enumerate(fields):
            name, hint = repr(f.name), hints[f.name]
            inner = _optional_of(hint)
            namespace[f"conv{i}"] = _converter(hint if inner is None else inner, f.metadata)
            lines.append(f"    if {name} in value:")
            lines.append(f"        v = value[{name}]")
            call = f"conv{i}(v, path, {name})"
            if inner is not None:  # X | None: the union's own None test, inline
                call = f"None if v is None else {call}"
            # a value the converter would return as it is (or () for an empty list), tested
            # inline: the common case skips the call; anything else goes to the converter
            fast = fast_path(hint if inner is None else inner, f.metadata, namespace, i)
            if fast is not None:
                test, result = fast
                call = f"{result} if {test} else ({call})"
            lines.append(f"        kwargs[{name}] = {call}")
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                lines.append(f"    else:\n        fail('is required', path, {name})")
            elif direct:  # what the generated __init__ would store for an absent field
                lines.append("    else:")
                if f.default is dataclasses.MISSING:
                    namespace[f"factory{i}"] = f.default_factory
                    lines.append(f"        kwargs[{name}] = factory{i}()")
                else:
                    namespace[f"default{i}"] = f.default
                    lines.append(f"        kwargs[{name}] = default{i}")
        if direct:
            # every field, in field order, as the generated __init__ stores them
            lines.append("    return obj")
        else:
            lines.append("    return kwargs")
        return frozenset(names), ", ".join(names), _generate(lines, "build", namespace), direct

    def convert(value: Any, parent: str, key: _Key) -> Any:
        nonlocal plan
        if type(value) is not dict and not isinstance(value, Mapping):
            _fail(f"must be a table, got {_describe(value)}", parent, key)
        if plan is None:
            plan = compile_fields()
        names, expected, build, direct = plan
        path = _at(parent, key)
        if not value.keys() <= names:
            unknown = [k for k in value if k not in names]
            if unknown:
                _fail(f"unknown key (expected one of: {expected})", path, str(unknown[0]))
        if direct:
            return build(value, path)
        kwargs = build(value, path)
        try:
            return cls(**kwargs)
        except DataFormError:
            raise
        except (ValueError, TypeError) as exc:
            raise DataFormError(str(exc), key_path=path) from None

    return convert


def _optional_of(hint: Any) -> Any:
    """X for a hint ``X | None`` (exactly one other member), else None."""
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        return None
    args = typing.get_args(hint)
    non_none = [a for a in args if a is not _NONE]
    return non_none[0] if len(non_none) == 1 and _NONE in args else None


def _enum(tp: type[enum.Enum]) -> _Conv:
    def convert(value: Any, parent: str, key: _Key) -> Any:
        try:
            return tp(value)
        except ValueError:
            choices = ", ".join(repr(m.value) for m in tp)
            _fail(f"must be one of {choices}, got {_describe(value)}", parent, key)

    return convert


def _scalar(tp: Any, meta: Mapping[str, Any]) -> _Conv:
    if tp is bool:
        return _bool
    if tp is int or tp is float:
        return _number(tp is float, meta.get("min"), meta.get("max"))
    if tp is str:
        return _text(_len_check(meta), meta.get("pattern"))
    if tp is bytes:
        return _bytes(_len_check(meta))
    if tp is Path:
        return _path
    problem = f"unsupported type {tp!r}"
    return lambda value, parent, key: _fail(problem, parent, key)


def _bool(value: Any, parent: str, key: _Key) -> bool:
    if not isinstance(value, bool):
        _fail(f"must be true or false, got {_describe(value)}", parent, key)
    return value


def _number(real: bool, lo: float | None, hi: float | None) -> _Conv:
    if lo is not None and hi is not None:
        bound = f"{_num(lo)}..{_num(hi)}"
    elif lo is not None:
        bound = f">= {_num(lo)}"
    else:
        bound = f"<= {_num(hi)}"
    limited = lo is not None or hi is not None

    def convert(value: Any, parent: str, key: _Key) -> Any:
        tv = type(value)
        if real:
            if tv is float:
                if not math.isfinite(value):
                    _fail(f"must be a finite number, got {value}", parent, key)
            elif isinstance(value, bool) or not isinstance(value, int | float):
                _fail(f"must be a number, got {_describe(value)}", parent, key)
            elif not _finite(value):
                _fail(f"must be a finite number, got {_finite_text(value)}", parent, key)
        elif tv is not int and (isinstance(value, bool) or not isinstance(value, int)):
            _fail(f"must be an integer, got {_describe(value)}", parent, key)
        if limited and ((lo is not None and value < lo) or (hi is not None and value > hi)):
            _fail(f"must be {bound}, got {_num(value)}", parent, key)
        return float(value) if real else value

    return convert


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond the float range
        return False


def _finite_text(value: float) -> str:
    return str(value) if isinstance(value, float) else _describe(value)


def _text(check_len: Callable[[Any, str, _Key], None] | None, rx: re.Pattern[str] | None) -> _Conv:
    def convert(value: Any, parent: str, key: _Key) -> str:
        if not isinstance(value, str):
            _fail(f"must be text, got {_describe(value)}", parent, key)
        if check_len is not None:
            check_len(value, parent, key)
        if rx is not None and not rx.fullmatch(value):
            _fail(f"must match {rx.pattern}, got {_describe(value)}", parent, key)
        return value

    return convert


def _bytes(check_len: Callable[[Any, str, _Key], None] | None) -> _Conv:
    def convert(value: Any, parent: str, key: _Key) -> bytes:
        if not isinstance(value, bytes):
            _fail(f"must be a byte string, got {_describe(value)}", parent, key)
        if check_len is not None:
            check_len(value, parent, key)
        return value

    return convert


def _path(value: Any, parent: str, key: _Key) -> Path:
    if not isinstance(value, str | Path):
        _fail(f"must be a path, got {_describe(value)}", parent, key)
    return Path(value).expanduser()


def _num(x: float | None) -> str:
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    try:
        return str(x)
    except ValueError:  # an integer too long to print
        return _describe(x)
