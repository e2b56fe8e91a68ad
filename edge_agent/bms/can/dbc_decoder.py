"""Profile-driven passive DBC decoding, built for busy buses.

``DbcPlan`` resolves a profile's signal map against a cantools database once: which frame ids
matter and, for multiplexed messages, how to read the multiplexer from the raw bytes.
``DbcDecoder.feed`` then does one dict lookup per frame and keeps only the latest payload
per (id, multiplexer page); cantools decodes those payloads once, in ``apply``. Frames whose
ids the profile does not use cost a single failed lookup.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cantools

from edge_agent.bms.can.profile_sections import DbcSection
from edge_agent.bms.can.reading import ReadingBuilder
from edge_agent.bms.faults import is_known
from edge_agent.errors import ProfileError

log = logging.getLogger(__name__)

Key = int | tuple[int, int]


def load_dbc(path: Path, *, strict: bool) -> Any:
    """Load a DBC with cantools; ProfileError names the file on failure."""
    try:
        return cantools.database.load_file(str(path), strict=strict)
    except FileNotFoundError:
        raise ProfileError(f"DBC file not found: {path}") from None
    except Exception as exc:  # cantools raises many parser types
        raise ProfileError(f"cannot load DBC {path}: {exc}") from None


def bit_reader(signal: Any) -> Callable[[bytes], int]:
    """A fast raw-value extractor for one (unsigned, unscaled) signal."""
    start: int = signal.start
    size: int = signal.length
    mask = (1 << size) - 1
    if signal.byte_order == "little_endian":
        return lambda data: (int.from_bytes(data, "little") >> start) & mask
    msb = (start // 8) * 8 + (7 - start % 8)  # position in big-endian bit numbering

    def read_big(data: bytes) -> int:
        width = max(8, len(data)) * 8
        return (int.from_bytes(data.ljust(width // 8, b"\0"), "big") >> (width - msb - size)) & mask

    return read_big


def _order_key(match: re.Match[str]) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(g)) if g.isdigit() else (1, g) for g in match.groups())


@dataclass(frozen=True)
class _Message:
    message: Any
    mux: Callable[[bytes], int] | None


class DbcPlan:
    """What to look for in which frames, resolved once per profile."""

    def __init__(self, db: Any, section: DbcSection, *, name: str = "") -> None:
        self.db = db
        self.section = section
        by_signal: dict[str, Any] = {}
        signal_obj: dict[str, Any] = {}
        for message in db.messages:
            for signal in message.signals:
                by_signal.setdefault(signal.name, message)
                signal_obj.setdefault(signal.name, signal)
        self.fields: dict[str, str] = dict(section.fields)
        self.faults: dict[str, str] = dict(section.faults)
        unknown = sorted(token for token in self.faults if not is_known(token))
        if unknown:
            raise ProfileError(
                f"fault tokens not in the fault vocabulary (edge_agent/bms/faults.py): "
                f"{', '.join(unknown)}",
                key_path=f"{name}.dbc.faults",
            )
        self.cells = self._pattern(section.cell_voltages, signal_obj, "cell_voltages")
        self.temps = self._pattern(section.temperatures, signal_obj, "temperatures")
        self.serial: list[str] = list(section.serial.signals) if section.serial else []
        wanted = [
            *self.fields.values(),
            *self.faults.values(),
            *self.cells,
            *self.temps,
            *self.serial,
        ]
        missing = [s for s in wanted if s not in by_signal]
        if missing:
            raise ProfileError(
                f"signals not in the DBC: {', '.join(missing[:5])}", key_path=f"{name}.dbc"
            )
        self.signals = signal_obj
        self.ids: dict[int, _Message] = {}
        self.needed: set[Key] = set()
        for sig_name in wanted:
            message = by_signal[sig_name]
            signal = signal_obj[sig_name]
            if message.frame_id not in self.ids:
                mux = next((s for s in message.signals if s.is_multiplexer), None)
                self.ids[message.frame_id] = _Message(message, bit_reader(mux) if mux else None)
            pages = signal.multiplexer_ids
            if self.ids[message.frame_id].mux is not None and pages:
                self.needed.add((message.frame_id, pages[0]))
            else:
                self.needed.add(message.frame_id)

    @staticmethod
    def _pattern(spec: Any, signals: dict[str, Any], what: str) -> list[str]:
        if spec is None:
            return []
        try:
            rx = re.compile(spec.pattern)
        except re.error as exc:
            raise ProfileError(f"bad pattern: {exc}", key_path=f"dbc.{what}.pattern") from None
        matches = [m for m in (rx.fullmatch(n) for n in signals) if m]
        if not matches:
            raise ProfileError(
                f"no signal matches {spec.pattern!r}", key_path=f"dbc.{what}.pattern"
            )
        ordered = [m.group(0) for m in sorted(matches, key=_order_key)]
        return ordered[: spec.count] if spec.count else ordered


class DbcDecoder:
    """Feeds frames through a plan and turns the latest payloads into reading values."""

    def __init__(self, plan: DbcPlan) -> None:
        self.plan = plan
        self._ids = plan.ids
        self.latest: dict[Key, bytes] = {}
        self._missing = set(plan.needed)
        self.frames = 0
        self.decode_errors = 0

    @property
    def complete(self) -> bool:
        """True once every frame (and page) the plan needs has been seen."""
        return not self._missing

    def feed(self, can_id: int, data: bytes) -> None:
        """Hot path: one lookup for frames the profile does not use."""
        entry = self._ids.get(can_id)
        if entry is None:
            return
        self.frames += 1
        key: Key = can_id if entry.mux is None else (can_id, entry.mux(data))
        if key not in self.latest and self._missing:
            self._missing.discard(key)
            if entry.mux is not None:
                self._missing.discard(can_id)
        self.latest[key] = data

    def decode_all(self, *, scaling: bool = True) -> dict[str, float]:
        """Decode every kept payload once; signal name -> value."""
        values: dict[str, float] = {}
        for key, data in self.latest.items():
            frame_id = key if isinstance(key, int) else key[0]
            message = self._ids[frame_id].message
            try:
                decoded = message.decode(
                    data, decode_choices=False, scaling=scaling, allow_truncated=True
                )
            except Exception as exc:  # malformed payload (short DLC, bad mux page)
                self.decode_errors += 1
                log.debug("dbc: %s: %s", message.name, exc)
                continue
            values.update(decoded)
        return values

    def apply(self, out: ReadingBuilder) -> None:
        """Write decoded fields, cells, temperatures, serial and faults into ``out``."""
        plan = self.plan
        values = self.decode_all()
        for field_name, signal in plan.fields.items():
            if signal in values:
                out.put(field_name, float(values[signal]), f"dbc:{signal}")
        for field_name, text in plan.section.constants.items():
            out.put(field_name, text, "profile")
        skip_cells = (
            set(plan.section.cell_voltages.skip_values) if plan.section.cell_voltages else set()
        )
        cells = [
            float(values[s]) for s in plan.cells if s in values and values[s] not in skip_cells
        ]
        if plan.cells and len(cells) < len(plan.cells):
            out.problems.append(f"dbc: {len(cells)} of {len(plan.cells)} cell voltages seen")
        cell_spec = plan.section.cell_voltages
        tag = f"dbc:{cell_spec.pattern}" if cell_spec else "dbc"
        out.put_cells(tuple(round(c, 6) for c in cells), tag)
        skip_t = set(plan.section.temperatures.skip_values) if plan.section.temperatures else set()
        out.put_temperatures(
            tuple(float(values[s]) for s in plan.temps if s in values and values[s] not in skip_t)
        )
        if plan.serial:
            self._serial(out)
        for token, signal in plan.faults.items():
            if values.get(signal):
                out.fault(token)
        missing = [s for s in plan.fields.values() if s not in values]
        if missing:
            out.problems.append(f"dbc: not seen on the bus: {', '.join(missing)}")

    def _serial(self, out: ReadingBuilder) -> None:
        spec = self.plan.section.serial
        assert spec is not None
        raw = self.decode_all(scaling=False)
        parts = [s for s in spec.signals if s in raw]
        if len(parts) < len(spec.signals):
            out.problems.append(
                f"dbc: serial incomplete ({len(parts)} of {len(spec.signals)} fragments)"
            )
            return
        chunks: list[bytes] = []
        for name in spec.signals:
            signal = self.plan.signals[name]
            size = max(1, (signal.length + 7) // 8)
            order: Literal["little", "big"] = (
                "little" if signal.byte_order == "little_endian" else "big"
            )
            chunks.append(int(raw[name]).to_bytes(size, order))
        blob = b"".join(chunks)
        if spec.encoding == "hex":
            text = blob.hex().upper()
        elif spec.encoding == "decimal":
            text = "".join(str(int(raw[n])) for n in spec.signals)
        else:
            cleaned = blob.strip(b"\x00\xff ")
            if not cleaned or any(c < 0x20 or c > 0x7E for c in cleaned):
                out.problems.append(f"dbc: serial is not printable ASCII ({blob.hex().upper()})")
                return
            text = cleaned.decode("ascii")
        out.put("serial", text, f"dbc:{spec.signals[0]}")
