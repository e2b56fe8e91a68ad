"""Label decoding benchmark: our multi-pass pipeline vs single-pass zxing-cpp (the baseline).

On the zxing-cpp sample set (per symbology: decode rate, median ms per image; false
positives) for: ours, zxing-cpp single pass with default options (baseline), pyzbar (QR and
Code 128 only) and OpenCV QRCodeDetector (QR only); ours without the late bar-rectify pass
shows what that pass costs on labels the earlier passes read. Then on simulator-degraded labels: our
decode rate vs the baseline's, in percentage points.

    python bench/bench_label.py [--data DIR] [--runs 3] [--sim-count 30] [--smoke]
    python bench/bench_label.py --only ocr --plates 20        # OCR engines, same plates in turn
    python bench/bench_label.py --only rss --engines ppocr     # RSS of `run` with OCR loaded
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_agent.codes.nameplate import find_codes  # noqa: E402
from edge_agent.errors import OcrError  # noqa: E402
from edge_agent.sim.label_nameplate import render_nameplate  # noqa: E402
from edge_agent.sim.label_render import (  # noqa: E402
    LINEAR_EXTRA,
    SYMBOLOGIES,
    random_pack_code,
    render_label,
)
from edge_agent.vision.decode import decode_gray, decode_single_pass, to_gray  # noqa: E402
from edge_agent.vision.ocr import ENGINES, get_engine  # noqa: E402
from tests.support.vision import iter_samples  # noqa: E402

Decoder = Callable[[np.ndarray], set[str]]
GROUPS = ("qrcode", "datamatrix", "code128")
SIM_NAME = {"qr": "qrcode", "datamatrix": "datamatrix", "code128": "code128"}
SIM_NAME.update({name: name for name in LINEAR_EXTRA})


def ours(gray: np.ndarray) -> set[str]:
    return {s.text for s in decode_gray(gray).symbols}


def ours_without_bars(gray: np.ndarray) -> set[str]:
    return {s.text for s in decode_gray(gray, bars=False).symbols}


def baseline(gray: np.ndarray) -> set[str]:
    return set(decode_single_pass(gray))


def make_pyzbar() -> Decoder | None:
    try:
        from pyzbar import pyzbar
    except Exception:  # library missing (libzbar0)
        return None
    symbols = [pyzbar.ZBarSymbol.QRCODE, pyzbar.ZBarSymbol.CODE128]

    def run(gray: np.ndarray) -> set[str]:
        return {r.data.decode("utf-8", "replace") for r in pyzbar.decode(gray, symbols=symbols)}

    return run


def cv2_qr(gray: np.ndarray) -> set[str]:
    detector = cv2.QRCodeDetector()
    try:
        ok, texts, _, _ = detector.detectAndDecodeMulti(gray)
        found = {t for t in texts if t} if ok else set()
        if not found:
            text, _, _ = detector.detectAndDecode(gray)
            found = {text} if text else set()
    except (cv2.error, UnicodeDecodeError):  # OpenCV cannot return non-UTF-8 payloads
        return set()
    return found


def timed(decoder: Decoder, gray: np.ndarray, runs: int) -> tuple[set[str], float]:
    times = []
    texts: set[str] = set()
    for _ in range(runs):
        start = time.perf_counter()
        texts = decoder(gray)
        times.append((time.perf_counter() - start) * 1000)
    return texts, statistics.median(times)


def load_samples(data: Path, smoke: bool) -> dict[str, list[tuple[np.ndarray, str | None]]]:
    groups: dict[str, list[tuple[np.ndarray, str | None]]] = {
        g: [] for g in (*GROUPS, "falsepositives")
    }
    for sample in iter_samples(data):
        gray = cv2.imread(str(sample.path), cv2.IMREAD_GRAYSCALE)
        if gray is None:  # two 1-pixel WebP false-positive images OpenCV cannot read
            continue
        if smoke and len(groups[sample.group]) >= 3:
            continue
        groups[sample.group].append((gray, sample.expected))
    return groups


def bench_samples(data: Path, runs: int, smoke: bool) -> None:
    groups = load_samples(data, smoke)
    decoders: dict[str, tuple[Decoder | None, set[str]]] = {
        "ours (multi-pass)": (ours, set(GROUPS)),
        "ours without bar-rectify": (ours_without_bars, set(GROUPS)),
        "zxing-cpp 1-pass (baseline)": (baseline, set(GROUPS)),
        "pyzbar": (make_pyzbar(), {"qrcode", "code128"}),
        "cv2.QRCodeDetector": (cv2_qr, {"qrcode"}),
    }
    print(f"\nzxing-cpp samples ({data / 'barcodes'}), median of {runs} runs per image")
    print(f"{'symbology':<12} {'decoder':<28} {'decoded':>9} {'rate':>7} {'median ms':>10}")
    rates: dict[tuple[str, str], float] = {}
    medians: dict[tuple[str, str], float] = {}
    for group in GROUPS:
        items = groups[group]
        active = {
            name: decoder
            for name, (decoder, supports) in decoders.items()
            if decoder is not None and group in supports
        }
        # Decoders take turns on each image, so a load change on the shared machine hits
        # all of them alike and the ratios stay comparable.
        hit_count = dict.fromkeys(active, 0)
        all_times: dict[str, list[float]] = {name: [] for name in active}
        for gray, expected in items:
            for name, decoder in active.items():
                texts, ms = timed(decoder, gray, runs)
                hit_count[name] += expected in texts
                all_times[name].append(ms)
        for name in active:
            hits, times = hit_count[name], all_times[name]
            rates[(group, name)] = hits / len(items)
            medians[(group, name)] = statistics.median(times)
            print(
                f"{group:<12} {name:<28} {hits:>4}/{len(items):<4} "
                f"{100 * hits / len(items):>6.1f}% {statistics.median(times):>10.2f}"
            )
        us, base = (group, "ours (multi-pass)"), (group, "zxing-cpp 1-pass (baseline)")
        diff = rates[us] - rates[base]
        ratio = medians[us] / medians[base] if medians[base] else float("nan")
        print(f"{group:<12} {'ours vs baseline':<28} {'':>9} {100 * diff:>+6.1f}pt {ratio:>9.2f}x")
        nobars = (group, "ours without bar-rectify")
        diff = rates[us] - rates[nobars]
        ratio = medians[us] / medians[nobars] if medians[nobars] else float("nan")
        label = "ours vs without bar-rectify"
        print(f"{group:<12} {label:<28} {'':>9} {100 * diff:>+6.1f}pt {ratio:>9.2f}x")
    fps = groups["falsepositives"]
    for name, (decoder, _) in decoders.items():
        if decoder is None:
            continue
        bad = sum(bool(decoder(gray)) for gray, _ in fps)
        print(f"{'falsepos':<12} {name:<28} {bad:>4}/{len(fps):<4} images with a decode")


def sim_code(symbology: str, seed: int) -> tuple[str, str]:
    """What to encode for a simulated label, and the text a correct read returns."""
    rng = np.random.default_rng([seed, 7])
    if symbology == "ean13":  # 12 digits; the writer adds the check digit
        digits = "".join(str(int(d)) for d in rng.integers(0, 10, 12))
        weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits))
        return digits, digits + str(-weighted % 10)
    code = random_pack_code(rng)
    return code, code


def bench_sim(count: int, degrades: list[float], symbologies: list[str]) -> None:
    print(f"\nsimulated labels ({count} per symbology and level, seeds 0..{count - 1})")
    print(
        f"{'symbology':<12} {'degrade':>7} {'baseline':>9} {'ours':>9} {'diff':>8} {'ours ms':>8}"
    )
    for degrade in degrades:
        tot_b = tot_o = tot = 0
        for sym in symbologies:
            b = o = 0
            times = []
            for seed in range(count):
                code, expected = sim_code(sym, seed)
                gray = to_gray(render_label(code, sym, seed=seed, degrade=degrade))
                b += expected in baseline(gray)
                texts, ms = timed(ours, gray, 1)
                o += expected in texts
                times.append(ms)
            tot_b, tot_o, tot = tot_b + b, tot_o + o, tot + count
            print(
                f"{SIM_NAME[sym]:<12} {degrade:>7.2f} {100 * b / count:>8.1f}% "
                f"{100 * o / count:>8.1f}% {100 * (o - b) / count:>+7.1f}pt "
                f"{statistics.median(times):>8.1f}"
            )
        print(
            f"{'all':<12} {degrade:>7.2f} {100 * tot_b / tot:>8.1f}% {100 * tot_o / tot:>8.1f}% "
            f"{100 * (tot_o - tot_b) / tot:>+7.1f}pt"
        )


def bench_nameplates(
    count: int, degrades: list[float], engines: list[str], baseline_engine: str = "rapidocr"
) -> None:
    """Text-only nameplates: code read rate, wrong codes and median ms per OCR engine.

    Engines take turns on each plate, so load drift on a shared machine hits them alike; the
    ratio is each engine's median time over the baseline engine's, in the same run.
    """
    print(f"\ntext-only nameplates ({count} per level, seeds 0..{count - 1}; OCR only, no barcode)")
    loaded = {}
    for name in engines:
        try:
            start = time.perf_counter()
            loaded[name] = get_engine(name)
            print(f"{name:<10} model load {(time.perf_counter() - start) * 1000:.0f} ms")
        except OcrError as exc:
            print(f"{name:<10} unavailable: {exc}")
    print(
        f"{'engine':<10} {'degrade':>7} {'read':>9} {'rate':>7} {'wrong':>6} {'median ms':>10} "
        f"{'vs ' + baseline_engine:>12}"
    )
    for degrade in degrades:
        hits = dict.fromkeys(loaded, 0)
        wrong = dict.fromkeys(loaded, 0)
        times: dict[str, list[float]] = {name: [] for name in loaded}
        for seed in range(count):
            plate = render_nameplate(seed=seed, degrade=degrade)
            gray = to_gray(plate.image)
            for name, engine in loaded.items():
                start = time.perf_counter()
                lines = engine.read(gray)
                codes = {c.code for c in find_codes([ln.text for ln in lines])}
                times[name].append((time.perf_counter() - start) * 1000)
                hits[name] += plate.code in codes
                wrong[name] += len(codes - {plate.code})
        base = statistics.median(times[baseline_engine]) if baseline_engine in times else None
        for name in loaded:
            median = statistics.median(times[name])
            ratio = f"{median / base:>11.2f}x" if base else f"{'-':>12}"
            print(
                f"{name:<10} {degrade:>7.2f} {hits[name]:>4}/{count:<4} "
                f"{100 * hits[name] / count:>6.1f}% {wrong[name]:>6} {median:>10.1f} {ratio}"
            )


def main() -> int:
    default = Path(os.environ.get("EDGE_AGENT_SHARED_DATA", ROOT.parent / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default / "barcodes" / "zxing-cpp-samples")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sim-count", type=int, default=30)
    parser.add_argument("--degrade", type=float, nargs="+", default=[0.6, 0.8, 1.0])
    parser.add_argument(
        "--sim-symbologies",
        nargs="+",
        default=list(SYMBOLOGIES),
        choices=[*SYMBOLOGIES, *LINEAR_EXTRA],
        help="simulated label symbologies (code39 and ean13 on request)",
    )
    parser.add_argument("--smoke", action="store_true", help="a few images, one run (CI)")
    parser.add_argument("--plates", type=int, default=30, help="nameplates per level (OCR)")
    parser.add_argument("--plate-degrade", type=float, nargs="+", default=[0.3, 0.6, 0.9])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument(
        "--only",
        choices=["samples", "sim", "ocr", "rss"],
        nargs="+",
        default=["samples", "sim", "ocr"],
        help="rss: memory of `edge-agent run` with the OCR model loaded (not in the default set)",
    )
    parser.add_argument("--baseline-engine", default="rapidocr", choices=list(ENGINES))
    parser.add_argument("--rss-runs", type=int, default=3, help="run processes per configuration")
    parser.add_argument("--rss-n", type=int, default=3, help="identifications per run process")
    args = parser.parse_args()
    runs = 1 if args.smoke else args.runs
    if "samples" in args.only and not args.data.is_dir():
        print(f"sample folder {args.data} missing (pass --data)", file=sys.stderr)
        return 2
    if "samples" in args.only:
        bench_samples(args.data.parent.parent, runs, args.smoke)
    if "sim" in args.only:
        bench_sim(
            2 if args.smoke else args.sim_count,
            [1.0] if args.smoke else args.degrade,
            args.sim_symbologies,
        )
    if "ocr" in args.only:
        bench_nameplates(
            2 if args.smoke else args.plates,
            [0.3] if args.smoke else args.plate_degrade,
            args.engines[:1] if args.smoke else args.engines,
            args.baseline_engine,
        )
    if "rss" in args.only:
        from bench.ocr_rss import bench_rss

        engines = [e for e in args.engines if e != "tesseract"]  # the model-loading engines
        with tempfile.TemporaryDirectory(prefix="bench-ocr-rss-") as work:
            runs, n = (1, 1) if args.smoke else (args.rss_runs, args.rss_n)
            bench_rss(Path(work), engines, runs, n, smoke=args.smoke)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
