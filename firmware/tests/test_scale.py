"""Scale logic on the unix port: outliers, stability, tare, two-point calibration, zero."""

from __future__ import annotations

import json

from firmware.tests.conftest import MpyRun

PRELUDE = """
import json
from scale import Scale, DEFAULTS, CAL_DEFAULT
cfg = dict(DEFAULTS)
cal = dict(CAL_DEFAULT)
cfg.update({"e_g": 50, "max_g": 100000, "window": 5, "band_g": 50, "median": 5})
cal.update({"cpk": 2000.0, "cal_zero": 10000, "zero": 10000, "calibrated": True})
s = Scale(cfg, cal)
def feed(counts, n=12):
    for _ in range(n):
        s.add(counts)
    return s.report()
"""


def run_json(mpy: MpyRun, body: str) -> list[dict[str, object]]:
    out = mpy(PRELUDE + body).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_rounding_stability_tare_and_overload(mpy: MpyRun) -> None:
    r = run_json(
        mpy,
        """
print(json.dumps(feed(10000 + 2000 * 12 + 130)))     # 12.065 kg -> 12.05 (e = 50 g)
s.set_tare()
print(json.dumps(feed(10000 + 2000 * 20)))            # 20 kg gross, 12.065 tare
print(json.dumps(feed(10000 + 2000 * 101)))           # beyond Max + 9e
for v in (50000, 90000, 130000, 170000, 210000):
    s.add(v)
print(json.dumps(s.report()))                          # window not settled
""",
    )
    assert (r[0]["net_g"], r[0]["stable"], r[0]["indicative"]) == (12050, True, True)
    assert (r[1]["gross_g"], r[1]["tare_g"], r[1]["net_g"]) == (20000, 12050, 7950)
    assert r[2]["overload"] is True and r[1]["overload"] is False
    assert r[3]["stable"] is False


def test_median_rejects_glitches(mpy: MpyRun) -> None:
    r = run_json(
        mpy,
        """
for i in range(41):  # ends on a clean sample: a spike clears stable for one sample
    spike = 30000 if i % 13 == 0 else 10000 + 2000 * 5
    s.add(0x7FFFFF if i % 7 == 3 else (0 if i % 11 == 5 else spike))
print(json.dumps(s.report()))
""",
    )
    # saturation codes are dropped, the lone 30000 spikes are removed by the median
    assert r[0]["net_g"] == 5000 and r[0]["stable"] is True and r[0]["rejected"] == 9


def test_two_point_calibration_and_zero_tracking_limits(mpy: MpyRun) -> None:
    r = run_json(
        mpy,
        """
feed(40000)
s.calibrate_zero()
feed(40000 + 3 * 12345)
print(json.dumps(s.calibrate_span(12.5) > 0))
print(json.dumps({"cpk": cal["cpk"]}))
s.reset_filters()
print(json.dumps(feed(40000 + 3 * 12345)))
print(json.dumps(feed(40000 + 2963)))      # ~1 kg: far beyond 0.5 e, no tracking
print(json.dumps(feed(40000 + 30)))        # ~10 g: within 0.5 e -> tracked to zero
print(json.dumps({"zero": s.zero}))
print(json.dumps(s.within_zero_range(40000 + 3 * 12345)))   # 12.5 kg is outside 4 % of 100 kg
print(json.dumps(s.set_zero()))
""",
    )
    assert r[0] is True
    assert abs(r[1]["cpk"] - 3 * 12345 / 12.5) < 1e-6
    assert r[2]["net_g"] == 12500 and r[2]["calibrated"] is True
    assert r[3]["net_g"] == 1000
    assert r[4]["net_g"] == 0 and r[4]["zero"] is True
    assert r[5]["zero"] == 40030
    assert r[6] is False
    assert r[7] is True  # the current (30 counts) load is inside the zero-setting range
