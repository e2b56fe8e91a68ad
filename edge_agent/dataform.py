"""Plain-data form of frozen dataclasses: to dicts/lists for CBOR, JSON and TOML, and back.

One mechanism serves the event model (CBOR/JSON), the configuration file (TOML) and pack
profiles, so validation rules and error messages are the same everywhere. Field metadata
adds constraints: ``bounded(lo, hi)``, ``pattern(regex)``, ``length(lo, hi)``.
A failure names the key path: ``uplink.mqtt.port: must be 1..65535, got 70000``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import types
import typing
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from edge_agent.errors import EdgeAgentError

T = TypeVar("T")


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


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def to_plain(obj: Any) -> Any:
    """Convert dataclasses, enums, tuples and paths to dicts, lists and scalars; drop None."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if value is None:
                continue
            out[f.name] = to_plain(value)
        return out
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, tuple | list):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def from_plain(
    cls: type[T], data: Any, *, path: str = "", error: type[Exception] | None = None
) -> T:
    """Build ``cls`` from plain data, validating types and field constraints."""
    try:
        return typing.cast(T, _convert(cls, data, path, None))
    except DataFormError as exc:
        if error is None or error is DataFormError:
            raise
        raise error(exc.problem, key_path=exc.key_path) from None  # type: ignore[call-arg]


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _convert(tp: Any, value: Any, path: str, meta: Mapping[str, Any] | None) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _convert(non_none[0], value, path, meta)
        errors = []
        for arg in non_none:
            try:
                return _convert(arg, value, path, meta)
            except DataFormError as exc:
                errors.append(exc.problem)
        raise DataFormError("; ".join(errors), key_path=path)
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed or type(value) is not type(allowed[0]):
            choices = ", ".join(repr(a) for a in allowed)
            raise DataFormError(f"must be one of {choices}, got {_describe(value)}", key_path=path)
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise DataFormError(f"must be a list, got {_describe(value)}", key_path=path)
        _check_len(value, path, meta)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, _join(path, i), None) for i, v in enumerate(value))
        if len(args) != len(value):
            raise DataFormError(f"must have {len(args)} items, got {len(value)}", key_path=path)
        return tuple(
            _convert(a, v, _join(path, i), None)
            for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if origin is dict:
        key_t, val_t = typing.get_args(tp)
        if not isinstance(value, Mapping):
            raise DataFormError(f"must be a table, got {_describe(value)}", key_path=path)
        out = {}
        for k, v in value.items():
            out[_convert(key_t, k, path, None)] = _convert(val_t, v, _join(path, str(k)), None)
        return out
    if tp is Any:
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _convert_dataclass(tp, value, path)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            choices = ", ".join(repr(m.value) for m in tp)
            raise DataFormError(
                f"must be one of {choices}, got {_describe(value)}", key_path=path
            ) from None
    return _convert_scalar(tp, value, path, meta or {})


def _check_len(value: Any, path: str, meta: Mapping[str, Any] | None) -> None:
    if not meta or "min_len" not in meta:
        return
    lo, hi = meta["min_len"], meta["max_len"]
    if len(value) < lo or (hi is not None and len(value) > hi):
        bound = f"{lo}..{hi}" if hi is not None else f"at least {lo}"
        raise DataFormError(f"length must be {bound}, got {len(value)}", key_path=path)


def _convert_scalar(tp: Any, value: Any, path: str, meta: Mapping[str, Any]) -> Any:
    if tp is bool:
        if not isinstance(value, bool):
            raise DataFormError(f"must be true or false, got {_describe(value)}", key_path=path)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise DataFormError(f"must be an integer, got {_describe(value)}", key_path=path)
        _check_range(value, path, meta)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DataFormError(f"must be a number, got {_describe(value)}", key_path=path)
        if not math.isfinite(value):
            raise DataFormError(f"must be a finite number, got {value}", key_path=path)
        _check_range(value, path, meta)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise DataFormError(f"must be text, got {_describe(value)}", key_path=path)
        _check_len(value, path, meta)
        rx = meta.get("pattern")
        if rx is not None and not rx.fullmatch(value):
            raise DataFormError(f"must match {rx.pattern}, got {_describe(value)}", key_path=path)
        return value
    if tp is bytes:
        if not isinstance(value, bytes):
            raise DataFormError(f"must be a byte string, got {_describe(value)}", key_path=path)
        _check_len(value, path, meta)
        return value
    if tp is Path:
        if not isinstance(value, str | Path):
            raise DataFormError(f"must be a path, got {_describe(value)}", key_path=path)
        return Path(value).expanduser()
    raise DataFormError(f"unsupported type {tp!r}", key_path=path)


def _check_range(value: float, path: str, meta: Mapping[str, Any]) -> None:
    lo, hi = meta.get("min"), meta.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            bound = f"{_num(lo)}..{_num(hi)}"
        elif lo is not None:
            bound = f">= {_num(lo)}"
        else:
            bound = f"<= {_num(hi)}"
        raise DataFormError(f"must be {bound}, got {_num(value)}", key_path=path)


def _num(x: float | None) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def _convert_dataclass(cls: type, value: Any, path: str) -> Any:
    if not isinstance(value, Mapping):
        raise DataFormError(f"must be a table, got {_describe(value)}", key_path=path)
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in value if k not in fields]
    if unknown:
        raise DataFormError(
            f"unknown key (expected one of: {', '.join(fields)})",
            key_path=_join(path, str(unknown[0])),
        )
    kwargs = {}
    for name, f in fields.items():
        sub = _join(path, name)
        if name not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise DataFormError("is required", key_path=sub)
            continue
        kwargs[name] = _convert(hints[name], value[name], sub, f.metadata)
    try:
        return cls(**kwargs)
    except DataFormError:
        raise
    except (ValueError, TypeError) as exc:
        raise DataFormError(str(exc), key_path=path) from None
