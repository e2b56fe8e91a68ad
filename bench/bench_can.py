"""Frames per second through the profile DBC decoder on a recorded busy bus.

Baseline (named, measured in the same run): naive cantools ``decode_message`` on every frame.
Also shown: "eager", which filters by the profile's ids but decodes each relevant frame at once.

    python bench/bench_can.py            # full run, 200k frames, 5 repeats
    python bench/bench_can.py --smoke    # quick CI check

The recording is generated once per run (Tesla Model 3 DBC: ~10 % profile frames, ~80 %
other Model 3 messages with valid payloads, ~10 % ids unknown to the DBC) and written to a
python-can .blf, then read back, so the decoders see exactly what a replay would give them.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import can

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_agent.bms.can.dbc_decoder import DbcDecoder  # noqa: E402
from edge_agent.bms.can.dbc_source import plan_for  # noqa: E402
from edge_agent.bms.can.reading import ReadingBuilder  # noqa: E402
from edge_agent.bms.profile import load_profile  # noqa: E402
from edge_agent.sim.can_dbc import DbcSimConfig, encode_pages  # noqa: E402

GOAL_FPS = 40_000


def make_recording(plan, path: Path, frames: int, seed: int = 7) -> None:
    """Write a busy-bus .blf: profile pages, other DBC messages and unknown ids."""
    rng = random.Random(seed)
    ours = encode_pages(
        plan.db, DbcSimConfig(messages=tuple(e.message.name for e in plan.ids.values()))
    )
    names = [m.name for m in plan.db.messages if m.frame_id not in plan.ids]
    others = []  # valid payloads (every multiplexer page), so the baseline decodes, not fails
    for name in names:
        with contextlib.suppress(Exception):
            others += encode_pages(plan.db, DbcSimConfig(messages=(name,)))
    unknown = [0x7DF, 0x18DAF1DB, 0x1CEBFF00, 0x6F0, 0x123456]
    t = 1_700_000_000.0
    with can.Logger(str(path)) as log:
        for _ in range(frames):
            t += 0.000125
            roll = rng.random()
            if roll < 0.10:
                can_id, data, ext = rng.choice(ours)
            elif roll < 0.90:
                can_id, data, ext = rng.choice(others)
            else:
                can_id = rng.choice(unknown)
                data, ext = rng.randbytes(8), can_id > 0x7FF
            log(can.Message(timestamp=t, arbitration_id=can_id, data=data, is_extended_id=ext))


def run_ours(plan, frames) -> None:
    decoder = DbcDecoder(plan)
    feed = decoder.feed
    for can_id, data in frames:
        feed(can_id, data)
    decoder.apply(ReadingBuilder())


def run_eager(plan, frames) -> None:
    ids = {fid: e.message for fid, e in plan.ids.items()}
    latest = {}
    for can_id, data in frames:
        message = ids.get(can_id)
        if message is not None:
            with contextlib.suppress(Exception):
                latest.update(message.decode(data, decode_choices=False, allow_truncated=True))


def run_naive(db, frames) -> None:
    decode = db.decode_message
    for can_id, data in frames:
        with contextlib.suppress(Exception):  # unknown id or bad payload
            decode(can_id, data, decode_choices=False)


def measure(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small and quick (CI)")
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--data", type=Path, default=ROOT.parent / "shared" / "data", help="shared data folder"
    )
    parser.add_argument("--log", type=Path, help="use this recording instead of generating one")
    args = parser.parse_args(argv)
    frames_n, repeats = (20_000, 3) if args.smoke else (args.frames, args.repeats)
    profile = load_profile("tesla-model3")
    dbc = args.data / "dbc" / "Model3CAN.dbc"
    if dbc.is_file():
        profile = replace(profile, dbc=replace(profile.dbc, file=str(dbc)))
    plan = plan_for(profile)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.log or Path(tmp) / "busy.blf"
        if args.log is None:
            make_recording(plan, path, frames_n)
        frames = [(m.arbitration_id, bytes(m.data)) for m in can.LogReader(str(path))]
    relevant = sum(1 for i, _ in frames if i in plan.ids)
    rows = [
        (
            "naive cantools decode_message (baseline)",
            measure(lambda: run_naive(plan.db, frames), repeats),
        ),
        ("eager: pre-indexed ids, decode each", measure(lambda: run_eager(plan, frames), repeats)),
        ("profile decoder (ours)", measure(lambda: run_ours(plan, frames), repeats)),
    ]
    base = rows[0][1]
    print(
        f"recording: {len(frames)} frames, {relevant} ({100 * relevant / len(frames):.1f} %) "
        f"in the profile; DBC {len(plan.db.messages)} messages; median of {repeats} runs"
    )
    print(f"{'decoder':44} {'median s':>9} {'frames/s':>12} {'vs baseline':>12}")
    for name, seconds in rows:
        print(f"{name:44} {seconds:9.4f} {len(frames) / seconds:12,.0f} {base / seconds:11.1f}x")
    ours_fps = len(frames) / rows[2][1]
    ok = rows[2][1] < base
    print(
        f"goal {GOAL_FPS:,} frames/s: {'met' if ours_fps >= GOAL_FPS else 'NOT met'}; "
        f"faster than baseline: {ok}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
