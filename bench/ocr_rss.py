"""Memory of ``edge-agent run`` with the nameplate OCR model loaded (issue 18: <= 250 MB).

The simulated bench (``sim fieldkit``: Modbus BMS, node firmware, embedded broker) with a camera
folder of text-only nameplates printed with the BMS's pack code, so every identification reads
the code by OCR (``ocr = "missing"``: no barcode). Per configuration (engine, glibc malloc
tuning on or off) a fresh ``run`` process answers N identifications over its control socket;
``VmRSS`` after them (the OCR model loaded) and ``VmHWM`` (peak) come from /proc/<pid>/status.
Configurations take turns, ``runs`` rounds; medians are shown with the ratio to the baseline
(``rapidocr`` without malloc tuning: the agent before this change).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2

from edge_agent.malloc_tuning import DISABLE_ENV
from edge_agent.sim.fieldkit_dock import LABEL_CODE
from edge_agent.sim.label_nameplate import render_nameplate
from edge_agent.station.control import request_identify
from tests.support.fieldkit import agent_env, running_fieldkit

GOAL_MB = 250.0
BASELINE = ("rapidocr", False)


@dataclass(frozen=True)
class RunMemory:
    """One ``run`` process: MB after start-up, after N identifications, peak; OCR reads."""

    started: float
    after: float
    peak: float
    ocr_reads: int


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MB (MiB, as the kernel counts kB)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def nameplate_folder(folder: Path, count: int = 2) -> Path:
    """Text-only nameplates carrying the field kit's pack code (the camera folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        plate = render_nameplate(seed=i, degrade=0.3, code=LABEL_CODE)
        cv2.imwrite(str(folder / f"plate-{i:03d}.png"), plate.image)
    return folder


def _wait_socket(path: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
    import socket

    deadline = time.monotonic() + 90
    while True:
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(str(path))
                return
            except OSError:
                pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"run not ready (rc={proc.poll()}): {log.read_text()[-2000:]}")
        time.sleep(0.05)


def run_memory(kit: Any, engine: str, tuning: bool, n: int, tag: str) -> RunMemory:
    """Start ``run`` with ``engine``, n identifications, then its memory."""
    overrides = {
        "label": {"ocr_engine": engine, "ocr_budget_ms": 30000.0},  # the whole plate, always
        "station": {"label": {"timeout_s": 60.0}},
    }
    config = kit.variant(overrides, name=f"ocr-{tag}")
    data_dir = Path(kit.plain_config()["station"]["data_dir"])
    log = kit.workdir / f"ocr-{tag}.out"
    env = {**agent_env(), DISABLE_ENV: "1" if tuning else "0"}
    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "--config", str(config), "run"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        _wait_socket(data_dir / "agent.sock", proc, log)
        started, _ = memory_mb(proc.pid)
        reads = 0
        for _ in range(n):
            answer = asyncio.run(request_identify(data_dir / "agent.sock", [], 60.0))
            if not answer.get("ok"):
                raise RuntimeError(f"identification failed: {answer.get('error')}")
            reads += '"symbology": "OCR"' in json.dumps(answer.get("event"))
        after, peak = memory_mb(proc.pid)
        return RunMemory(started=started, after=after, peak=peak, ocr_reads=reads)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def bench_rss(work: Path, engines: list[str], runs: int, n: int, *, smoke: bool = False) -> None:
    """Print VmRSS / VmHWM of ``run`` per (engine, malloc tuning), medians over ``runs``.

    ``smoke``: the first engine with malloc tuning and the baseline only (CI checks it works).
    """
    configs = [(e, t) for e in engines for t in (False, True)]
    if smoke:
        configs = [(engines[0], True)]
    if BASELINE not in configs:
        configs.insert(0, BASELINE)
    folder = nameplate_folder(work / "plates")
    results: dict[tuple[str, bool], list[RunMemory]] = {c: [] for c in configs}
    with running_fieldkit(work / "kit", "--labels", str(folder)) as kit:
        for i in range(runs):
            for engine, tuning in configs:
                tag = f"{i}-{engine}-{int(tuning)}"
                results[engine, tuning].append(run_memory(kit, engine, tuning, n, tag))
    print(
        f"\nRSS of `edge-agent run` with the OCR model loaded ({n} identifications of a text-only "
        f"nameplate per process, median of {runs}; baseline {BASELINE[0]} without malloc tuning)"
    )
    print(
        f"{'engine':<10} {'malloc':>6} {'start MB':>9} {'after MB':>9} {'peak MB':>8} "
        f"{'OCR reads':>9} {'after/base':>10} {'peak/base':>9}"
    )
    base = results[BASELINE]
    base_after = statistics.median(r.after for r in base)
    base_peak = statistics.median(r.peak for r in base)
    for (engine, tuning), rs in results.items():
        after = statistics.median(r.after for r in rs)
        peak = statistics.median(r.peak for r in rs)
        print(
            f"{engine:<10} {'tuned' if tuning else 'glibc':>6} "
            f"{statistics.median(r.started for r in rs):>9.1f} {after:>9.1f} {peak:>8.1f} "
            f"{sum(r.ocr_reads for r in rs):>4}/{n * len(rs):<4} "
            f"{after / base_after:>10.2f} {peak / base_peak:>9.2f}"
        )
        per_run = ", ".join(f"{r.after:.0f}/{r.peak:.0f}" for r in rs)
        print(f"{'':<10} per run after/peak MB: {per_run}")
    print(f"goal: run VmRSS with the OCR model loaded <= {GOAL_MB:.0f} MB")
