"""Scale logic on integer ADC counts: outlier rejection, stability, zero tracking, tare,
two-point calibration, overload and output rounded to the division e.

``add()`` runs per sample and never allocates (preallocated int arrays, small-int maths only);
conversion to grams happens in ``report()``, outside the sampling loop.
"""

from array import array

from hx711 import SATURATED_HI, SATURATED_LO

DEFAULTS = {
    "e_g": 50,  # verification/display division e in grams (1, 2 or 5 x 10^k)
    "max_g": 600000,  # Max capacity in grams
    "window": 10,  # stability window in filtered samples
    "band_g": 50,  # stable when max-min over the window stays within this band
    "median": 5,  # outlier rejection: median of the last n raw samples
    "zero_track_e": 0.5,  # zero tracking holds zero while |gross| <= this many e
    "zero_range_pct": 4,  # total zero-setting range, % of Max
    "indicative": True,  # not legal-for-trade (OIML R76): self-built nodes are indicative
}

CAL_DEFAULT = {"cal_zero": 0, "cpk": 1000.0, "zero": 0, "tare": 0, "calibrated": False}


def _at_least_one(x):
    return x if x > 0 else 1


class Scale:
    """State of one weighing channel in ADC counts."""

    def __init__(self, cfg, cal):
        n = cfg["median"]
        self.med_n = n
        self.ring = array("i", [0] * n)
        self.sorted = array("i", [0] * n)
        w = cfg["window"]
        self.win_n = w
        self.win = array("i", [0] * w)
        self.cfg = cfg
        self.cal = cal
        self.reset_filters()
        self.rejected = 0
        self.samples = 0
        self.apply()

    def reset_filters(self):
        """Forget history (after a calibration or a gain change)."""
        self.ring_i = 0
        self.ring_count = 0
        self.win_i = 0
        self.win_count = 0
        self.filt = 0
        self.stable = False

    def apply(self):
        """Recompute the count thresholds from config and calibration."""
        cfg = self.cfg
        cpk = self.cal["cpk"]
        self.sign = 1 if cpk >= 0 else -1
        cpg = abs(cpk) / 1000.0
        self.zero = int(self.cal["zero"])
        self.tare = int(self.cal["tare"])
        self.band = _at_least_one(int(cfg["band_g"] * cpg))
        self.zt = int(cfg["zero_track_e"] * cfg["e_g"] * cpg)
        self.zr = int(cfg["max_g"] * cfg["zero_range_pct"] / 100 * cpg)
        self.over = int((cfg["max_g"] + 9 * cfg["e_g"]) * cpg)

    def add(self, raw):
        """Feed one raw conversion; returns True when the stability window is full and stable."""
        if raw >= SATURATED_HI or raw <= SATURATED_LO or raw == 0:
            self.rejected += 1  # HX711 glitch codes (2^n-1, 0) are outliers, never data
            return self.stable
        self.samples += 1
        n = self.med_n
        self.ring[self.ring_i] = raw
        self.ring_i = (self.ring_i + 1) % n
        if self.ring_count < n:
            self.ring_count += 1
        m = self.ring_count
        s = self.sorted
        for i in range(m):  # insertion sort of the ring copy: no allocation
            v = self.ring[i]
            j = i
            while j > 0 and s[j - 1] > v:
                s[j] = s[j - 1]
                j -= 1
            s[j] = v
        med = s[m // 2]
        w = self.win_n
        self.win[self.win_i] = med
        self.win_i = (self.win_i + 1) % w
        if self.win_count < w:
            self.win_count += 1
        c = self.win_count
        lo = med
        hi = med
        total = 0
        for i in range(c):
            v = self.win[i]
            total += v
            if v < lo:
                lo = v
            if v > hi:
                hi = v
        self.filt = total // c
        # the median hides a step for a few samples; the newest raw value must agree too,
        # so a load change (or a lone spike) clears "stable" at once
        d = raw - med
        self.stable = c == w and hi - lo <= self.band and -self.band <= d <= self.band
        if self.stable and self.zt:
            g = (self.filt - self.zero) * self.sign
            # zero tracking: follow slow drift near zero, but only inside the zero-setting range
            if -self.zt <= g <= self.zt and g != 0 and self.within_zero_range(self.filt):
                self.zero = self.filt
        return self.stable

    def within_zero_range(self, counts):
        """True when ``counts`` is within the zero-setting range around the calibrated zero."""
        d = (counts - int(self.cal["cal_zero"])) * self.sign
        return -self.zr <= d <= self.zr

    def initial_zero(self):
        """Power-on zero-setting: an uncalibrated scale zeroes anywhere, a calibrated one only
        within the zero-setting range; not persisted."""
        if not self.cal["calibrated"]:
            self.cal["cal_zero"] = self.filt
            self.zero = self.filt
        elif self.within_zero_range(self.filt):
            self.zero = self.filt

    def gross_counts(self):
        """Filtered gross load in counts (positive = load)."""
        return (self.filt - self.zero) * self.sign

    def set_zero(self):
        """Semi-automatic zero-setting; False when outside the zero-setting range."""
        if not self.within_zero_range(self.filt):
            return False
        self.zero = self.filt
        self.tare = 0
        self._store()
        return True

    def set_tare(self):
        """Tare the current gross load."""
        self.tare = self.gross_counts()
        self._store()

    def clear_tare(self):
        """Remove the tare."""
        self.tare = 0
        self._store()

    def calibrate_zero(self):
        """First calibration point: the empty scale."""
        self.cal["cal_zero"] = self.filt
        self.zero = self.filt
        self.tare = 0
        self._store()

    def calibrate_span(self, kg):
        """Second point: a known mass ``kg`` on the scale; returns counts per kg."""
        d = self.filt - int(self.cal["cal_zero"])
        if kg <= 0 or abs(d) < 100:
            raise ValueError("span")
        self.cal["cpk"] = d / kg
        self.cal["calibrated"] = True
        self.zero = int(self.cal["cal_zero"])
        self.tare = 0
        self._store()
        self.apply()
        return self.cal["cpk"]

    def _store(self):
        self.cal["zero"] = self.zero
        self.cal["tare"] = self.tare

    def grams(self, counts):
        """Counts to grams (float)."""
        return counts * 1000.0 / abs(self.cal["cpk"])

    def round_e(self, grams):
        """Round grams to the division e (integer grams)."""
        e = self.cfg["e_g"]
        q = int(grams / e + (0.5 if grams >= 0 else -0.5))
        return q * e

    def report(self):
        """Weight message body (allocates: call outside the sampling loop)."""
        g = self.gross_counts()
        gross = self.grams(g)
        net = gross - self.grams(self.tare)
        e = self.cfg["e_g"]
        return {
            "raw": self.filt,
            "gross_g": self.round_e(gross),
            "net_g": self.round_e(net),
            "tare_g": self.round_e(self.grams(self.tare)),
            "e_g": e,
            "max_g": self.cfg["max_g"],
            "stable": self.stable,
            "zero": self.stable and abs(gross) <= e / 4,
            "overload": g > self.over,
            "underload": gross < -20 * e,
            "indicative": self.cfg["indicative"],
            "calibrated": self.cal["calibrated"],
            "rejected": self.rejected,
        }
