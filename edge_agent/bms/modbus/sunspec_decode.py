"""Decode one SunSpec model block (pure): point types, scale factors, not-implemented values,
repeating groups. Malformed blocks raise ``SunSpecError``; they never crash the caller."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from edge_agent.bms.modbus.registers import (
    decode_integer,
    is_not_implemented,
    words_to_float,
    words_to_text,
)
from edge_agent.bms.modbus.sunspec_models import GroupDef, ModelDef, PointDef
from edge_agent.errors import SunSpecError

SF_RANGE = range(-10, 11)  # SunSpec allows scale factors -10..10

Scalar = int | float | str


@dataclass(frozen=True)
class PointValue:
    """A decoded point: raw register value, scaled value (None = not implemented), units."""

    name: str
    raw: Scalar | None
    value: Scalar | None
    units: str = ""
    sf: int | None = None


@dataclass(frozen=True)
class DecodedModel:
    """One model instance read from a device."""

    id: int
    length: int  # L as read from the device
    address: int  # register address of its ID point
    points: Mapping[str, PointValue]
    repeats: tuple[Mapping[str, PointValue], ...] = ()
    problems: tuple[str, ...] = field(default=())

    def value(self, name: str) -> Scalar | None:
        """Scaled value of a fixed point, None when absent or not implemented."""
        point = self.points.get(name)
        return None if point is None else point.value


def _raw_point(point: PointDef, words: Sequence[int]) -> Scalar | None:
    if point.type == "string":
        text = words_to_text(words)
        return text or None
    if point.type in {"float32", "float64"}:
        number = words_to_float(words)
        return None if is_not_implemented(point.type, number) else number
    value = decode_integer(point.type, words)
    return None if is_not_implemented(point.type, value) else value


def _scaled(
    point: PointDef,
    raw: Scalar | None,
    scale_factors: Mapping[str, int | None],
    problems: list[str],
    where: str,
) -> tuple[Scalar | None, int | None]:
    if raw is None or point.sf is None or isinstance(raw, str):
        return raw, None
    if isinstance(point.sf, int):
        sf: int | None = point.sf
    else:
        if point.sf not in scale_factors:
            problems.append(f"{where}.{point.name}: scale factor {point.sf} is not in the model")
            return None, None
        sf = scale_factors[point.sf]
    if sf is None:
        return None, None  # scale factor itself not implemented: value is meaningless
    if sf not in SF_RANGE:
        problems.append(f"{where}.{point.name}: scale factor {sf} outside -10..10")
        return None, None
    # round() removes binary noise so 3312 * 10**-3 prints as 3.312
    return (round(raw * 10.0**sf, max(0, -sf) + 3) if sf else raw), sf


def _decode_group(
    group: GroupDef,
    words: Sequence[int],
    scale_factors: dict[str, int | None],
    problems: list[str],
    where: str,
) -> dict[str, PointValue]:
    raws: dict[str, Scalar | None] = {}
    for point in group.points:
        if point.type == "pad":
            continue
        raws[point.name] = _raw_point(point, words[point.offset : point.offset + point.size])
        if point.type == "sunssf":
            raw = raws[point.name]
            scale_factors[point.name] = raw if isinstance(raw, int) else None
    out: dict[str, PointValue] = {}
    for point in group.points:
        if point.type == "pad":
            continue
        raw = raws[point.name]
        value, sf = _scaled(point, raw, scale_factors, problems, where)
        out[point.name] = PointValue(
            name=point.name, raw=raw, value=value, units=point.units, sf=sf
        )
    return out


def decode_model(model: ModelDef, words: Sequence[int], *, address: int = 0) -> DecodedModel:
    """Decode ``words`` (starting at the model's ID register) with the definition ``model``."""
    if len(words) < 2:
        raise SunSpecError(
            f"model {model.id} at {address}: block shorter than its header", address=address
        )
    if words[0] != model.id:
        raise SunSpecError(
            f"block at {address} is model {words[0]}, expected {model.id}", address=address
        )
    length = words[1]
    if len(words) != length + 2:
        raise SunSpecError(
            f"model {model.id} at {address}: L={length} but {len(words) - 2} registers given",
            address=address,
        )
    fixed = model.fixed_length
    if length < fixed:
        raise SunSpecError(
            f"model {model.id} at {address}: L={length} shorter than its fixed block ({fixed})",
            address=address,
        )
    problems: list[str] = []
    scale_factors: dict[str, int | None] = {}
    where = str(model.id)
    points = _decode_group(model.group, words[: model.group.length], scale_factors, problems, where)
    repeats: list[dict[str, PointValue]] = []
    group = model.repeating
    rest = length - fixed
    if group is None or group.length == 0:
        if rest:
            problems.append(f"{where}: {rest} registers after the fixed block ignored")
    else:
        if rest % group.length:
            raise SunSpecError(
                f"model {model.id} at {address}: L={length} is not {fixed} + n x {group.length}",
                address=address,
            )
        count = rest // group.length
        if isinstance(group.count, str):
            declared = points.get(group.count)
            if declared is not None and declared.value != count:
                problems.append(
                    f"{where}.{group.count}={declared.value} but L holds {count} {group.name}"
                )
        start = model.group.length
        for index in range(count):
            chunk = words[start + index * group.length : start + (index + 1) * group.length]
            repeats.append(
                _decode_group(
                    group, chunk, dict(scale_factors), problems, f"{where}.{group.name}[{index}]"
                )
            )
    return DecodedModel(
        id=model.id,
        length=length,
        address=address,
        points=points,
        repeats=tuple(repeats),
        problems=tuple(problems),
    )
