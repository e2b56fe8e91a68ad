"""Dataform benchmark: to_plain / from_plain of a realistic event against the previous code.

    python bench/bench_dataform.py            # full run (9 runs per row, median)
    python bench/bench_dataform.py --smoke    # quick check that everything runs

Baseline ("baseline"): the type-walking implementation of edge_agent/dataform.py as it was
before per-type compilation (commit ccbff99), copied below as ``baseline_to_plain`` and
``baseline_from_plain`` so both run in the same process on the same data. Each run times the
two sides alternately in chunks, so load from other processes hits both alike; the speedup is
the median over chunk pairs of baseline time / our time.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import math
import statistics
import sys
import time
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_agent.config import AgentConfig  # noqa: E402
from edge_agent.dataform import DataFormError, from_plain, to_plain  # noqa: E402
from edge_agent.model import IdentificationEvent  # noqa: E402
from tests.support.station import healthy_readings  # noqa: E402

T = TypeVar("T")
EXAMPLES = ROOT / "schemas" / "examples"
TARGET = 5.0

# --- baseline: edge_agent/dataform.py before compilation (verbatim apart from the names) ----


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def baseline_to_plain(obj: Any) -> Any:
    """Baseline: convert dataclasses, enums, tuples and paths to dicts, lists and scalars; drop None."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if value is None:
                continue
            out[f.name] = baseline_to_plain(value)
        return out
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, tuple | list):
        return [baseline_to_plain(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): baseline_to_plain(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def baseline_from_plain(
    cls: type[T], data: Any, *, path: str = "", error: type[Exception] | None = None
) -> T:
    """Baseline: build ``cls`` from plain data, validating types and field constraints."""
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


# --- benchmark ------------------------------------------------------------------------------


def realistic_event() -> IdentificationEvent:
    """healthy-lfp.json with the station test readings: 108 cell voltages, label fields."""
    plain = json.loads((EXAMPLES / "healthy-lfp.json").read_text(encoding="utf-8"))
    return replace(from_plain(IdentificationEvent, plain), readings=healthy_readings())


def _seconds(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - start


def paired(
    ours: Callable[[], object], base: Callable[[], object], n: int, runs: int
) -> dict[str, float]:
    """Median us/op of each side over runs and the median speedup over adjacent chunk pairs."""
    ours(), base()  # compile converters and warm the type-hint cache
    chunk = max(1, min(20, n))
    ours_us, base_us, speedups = [], [], []
    for _ in range(runs):
        t_ours = t_base = 0.0
        for _ in range(max(1, n // chunk)):
            b = _seconds(base, chunk)
            o = _seconds(ours, chunk)
            t_base, t_ours = t_base + b, t_ours + o
            speedups.append(b / o)
        ops = max(1, n // chunk) * chunk
        ours_us.append(t_ours / ops * 1e6)
        base_us.append(t_base / ops * 1e6)
    return {
        "ours_us": statistics.median(ours_us),
        "baseline_us": statistics.median(base_us),
        "speedup": statistics.median(speedups),
    }


def cases() -> list[tuple[str, Any, type[Any]]]:
    """(name, object, type) for the realistic event, the schema examples and the config."""
    out: list[tuple[str, Any, type[Any]]] = [
        ("event realistic", realistic_event(), IdentificationEvent)
    ]
    for file in sorted(EXAMPLES.glob("*.json")):
        plain = json.loads(file.read_text(encoding="utf-8"))
        out.append(
            (f"event {file.stem}", from_plain(IdentificationEvent, plain), IdentificationEvent)
        )
    out.append(("config defaults", AgentConfig(), AgentConfig))
    return out


def bench(n: int, runs: int) -> list[dict[str, Any]]:
    """All rows: to_plain and from_plain per case, after checking both sides agree."""
    rows = []
    for name, obj, cls in cases():
        plain = baseline_to_plain(obj)
        if to_plain(obj) != plain or from_plain(cls, plain) != baseline_from_plain(cls, plain):
            raise SystemExit(f"{name}: new and baseline results differ")
        size = len(json.dumps(plain))
        for op, ours, base in (
            ("to_plain", lambda o=obj: to_plain(o), lambda o=obj: baseline_to_plain(o)),
            (
                "from_plain",
                lambda c=cls, p=plain: from_plain(c, p),
                lambda c=cls, p=plain: baseline_from_plain(c, p),
            ),
        ):
            rows.append({"case": name, "op": op, "json_bytes": size, **paired(ours, base, n, runs)})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run and print the table; --json writes the rows too."""
    parser = argparse.ArgumentParser(description="dataform to_plain/from_plain benchmark")
    parser.add_argument("--smoke", action="store_true", help="few iterations, one run")
    parser.add_argument("-n", type=int, default=400, help="operations per run")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--json", type=Path, default=None, help="also write rows as JSON")
    args = parser.parse_args(argv)
    n, runs = (10, 1) if args.smoke else (args.n, args.runs)
    rows = bench(n, runs)
    print(f"median of {runs} run(s) x {n} ops; baseline = type-walking dataform before compilation")
    print(
        f"{'case':24} {'op':10} {'bytes':>6} {'base us':>9} {'ours us':>9} {'speedup':>8}  target"
    )
    for row in rows:
        target = f">= {TARGET:g}" if row["case"] == "event realistic" else "-"
        mark = ""
        if target != "-":
            mark = " ok" if row["speedup"] >= TARGET else " UNDER"
        print(
            f"{row['case']:24} {row['op']:10} {row['json_bytes']:>6} {row['baseline_us']:>9.1f} "
            f"{row['ours_us']:>9.1f} {row['speedup']:>7.1f}x  {target}{mark}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
