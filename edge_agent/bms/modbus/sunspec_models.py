"""SunSpec model definitions, read at run time from the official JSON files in ``models/``.

The JSON files are copies of sunspec/models (Apache-2.0, LICENSE beside them); nothing here
retypes a point list, so a new model revision only needs a new JSON file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from edge_agent.errors import SunSpecError

MODELS_DIR = Path(__file__).parent / "models"

# Register width of the fixed-size point types (strings carry their own size).
TYPE_SIZES = {
    "uint16": 1,
    "int16": 1,
    "enum16": 1,
    "bitfield16": 1,
    "sunssf": 1,
    "pad": 1,
    "count": 1,
    "acc16": 1,
    "raw16": 1,
    "uint32": 2,
    "int32": 2,
    "enum32": 2,
    "bitfield32": 2,
    "acc32": 2,
    "float32": 2,
    "ipaddr": 2,
    "uint64": 4,
    "int64": 4,
    "acc64": 4,
    "float64": 4,
    "ipv6addr": 8,
    "eui48": 4,
}


@dataclass(frozen=True)
class PointDef:
    """One point of a model group: offset inside its group, type, size, scale factor, units."""

    name: str
    type: str
    size: int
    offset: int
    sf: str | int | None = None
    units: str = ""
    symbols: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class GroupDef:
    """A group of points; ``count`` is 1 for the top group, a point name or 0 (fill) for repeats."""

    name: str
    points: tuple[PointDef, ...]
    groups: tuple[GroupDef, ...]
    count: str | int
    length: int  # registers of one instance, without nested repeating groups

    def point(self, name: str) -> PointDef | None:
        """The point called ``name`` or None."""
        for point in self.points:
            if point.name == name:
                return point
        return None


@dataclass(frozen=True)
class ModelDef:
    """A SunSpec model: id and its top group (which starts with the ID and L points)."""

    id: int
    group: GroupDef

    @property
    def fixed_length(self) -> int:
        """Registers of the fixed block counted by ``L`` (ID and L themselves excluded)."""
        return self.group.length - 2

    @property
    def repeating(self) -> GroupDef | None:
        """The first repeating group (802-805 have at most one)."""
        return self.group.groups[0] if self.group.groups else None


def _point(raw: dict[str, Any], offset: int, where: str) -> PointDef:
    ptype = str(raw.get("type", ""))
    size = int(raw.get("size", TYPE_SIZES.get(ptype, 0)))
    if ptype not in TYPE_SIZES and ptype != "string":
        raise SunSpecError(f"{where}.{raw.get('name')}: unsupported point type {ptype!r}")
    if size <= 0:
        raise SunSpecError(f"{where}.{raw.get('name')}: point has no size")
    sf = raw.get("sf")
    symbols = tuple((str(s["name"]), int(s["value"])) for s in raw.get("symbols", ()))
    return PointDef(
        name=str(raw["name"]),
        type=ptype,
        size=size,
        offset=offset,
        sf=sf if isinstance(sf, str | int) else None,
        units=str(raw.get("units", "")),
        symbols=symbols,
    )


def _group(raw: dict[str, Any], where: str) -> GroupDef:
    points: list[PointDef] = []
    offset = 0
    for raw_point in raw.get("points", ()):
        point = _point(raw_point, offset, where)
        points.append(point)
        offset += point.size
    groups = tuple(_group(g, f"{where}.{g.get('name')}") for g in raw.get("groups", ()))
    count = raw.get("count", 1)
    return GroupDef(
        name=str(raw.get("name", "")),
        points=tuple(points),
        groups=groups,
        count=count if isinstance(count, str | int) else 1,
        length=offset,
    )


def parse_model(raw: dict[str, Any]) -> ModelDef:
    """Build a ModelDef from the parsed JSON of one model file."""
    try:
        model_id = int(raw["id"])
        group = _group(raw["group"], f"model {model_id}")
    except (KeyError, TypeError, ValueError) as exc:
        raise SunSpecError(f"malformed SunSpec model definition: {exc}") from None
    if len(group.points) < 2 or [p.name for p in group.points[:2]] != ["ID", "L"]:
        raise SunSpecError(f"model {model_id}: definition must start with ID and L")
    return ModelDef(id=model_id, group=group)


@cache
def load_model(model_id: int, directory: Path = MODELS_DIR) -> ModelDef:
    """Load ``model_<id>.json`` from ``directory``; SunSpecError when it is not shipped."""
    path = directory / f"model_{model_id}.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SunSpecError(f"no definition for SunSpec model {model_id} in {directory}") from None
    except (OSError, ValueError) as exc:
        raise SunSpecError(f"cannot read SunSpec model {path}: {exc}") from None
    return parse_model(raw)


def known_models(directory: Path = MODELS_DIR) -> tuple[int, ...]:
    """Ids of the shipped model definitions."""
    ids = []
    for file in directory.glob("model_*.json"):
        suffix = file.stem.removeprefix("model_")
        if suffix.isdigit():
            ids.append(int(suffix))
    return tuple(sorted(ids))
