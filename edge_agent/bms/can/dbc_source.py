"""``dbc`` method: listen to the pack's own broadcasts and decode them with the profile's DBC."""

from __future__ import annotations

import time
from pathlib import Path

from edge_agent.bms.can.bus import BusSession
from edge_agent.bms.can.dbc_decoder import DbcDecoder, DbcPlan, load_dbc
from edge_agent.bms.can.reading import ReadingBuilder
from edge_agent.bms.can.source_base import CanMethodSource
from edge_agent.bms.profile import PackProfile
from edge_agent.errors import BusTimeoutError, ProfileError


def dbc_path(profile: PackProfile) -> Path:
    """The profile's DBC file, relative to the profile file."""
    if profile.dbc is None:
        raise ProfileError("method 'dbc' needs a [dbc] section", key_path=profile.name)
    path = Path(profile.dbc.file).expanduser()
    if not path.is_absolute() and profile.path:
        path = Path(profile.path).parent / path
    return path


_PLANS: dict[tuple[Path, float, str], DbcPlan] = {}


def plan_for(profile: PackProfile) -> DbcPlan:
    """Load the DBC and resolve the plan (cached per file version and profile)."""
    path = dbc_path(profile)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        raise ProfileError(
            f"DBC file not found: {path}", key_path=f"{profile.name}.dbc.file"
        ) from None
    assert profile.dbc is not None
    key = (path, mtime, repr(profile.dbc))  # sections hold dicts: not hashable themselves
    if key not in _PLANS:
        db = load_dbc(path, strict=profile.dbc.strict)
        _PLANS[key] = DbcPlan(db, profile.dbc, name=profile.name)
    return _PLANS[key]


async def collect_dbc(
    bus: BusSession, profile: PackProfile, out: ReadingBuilder, budget_s: float
) -> None:
    """Listen until every mapped signal was seen (or listen_s / the budget ran out)."""
    plan = plan_for(profile)
    assert profile.dbc is not None
    decoder = DbcDecoder(plan)
    end = time.monotonic() + min(budget_s, profile.dbc.listen_s)
    queue = bus.listen(frozenset(plan.ids))
    seen_any = False
    try:
        while not decoder.complete:
            remaining = end - time.monotonic()
            if remaining <= 0:
                break
            msg = await queue.get(remaining if not bus.replay else min(remaining, 0.05))
            if msg is None:
                if bus.exhausted:
                    break
                continue
            seen_any = True
            decoder.feed(msg.arbitration_id, bytes(msg.data))
    finally:
        bus.unlisten(queue)
    if not seen_any:
        raise BusTimeoutError(
            f"none of the {len(plan.ids)} frame ids of profile {profile.name!r} seen within "
            f"{profile.dbc.listen_s:g} s at {bus.settings.bitrate} bit/s "
            "(pack asleep or wrong bitrate)"
        )
    decoder.apply(out)
    if decoder.decode_errors:
        out.problems.append(
            f"dbc: {decoder.decode_errors} frame(s) could not be decoded (bad length?)"
        )


class DbcSource(CanMethodSource):
    """A BmsSource that only decodes the pack's broadcasts with a DBC."""

    name = "dbc"
    fixed_methods = ("dbc",)
    collect = staticmethod(collect_dbc)
