"""NAU7802 24-bit load-cell ADC on I2C (0x2A): gain, rate, power-down, allocation-free reads."""

import time

from micropython import const

ADDR = const(0x2A)
_PU_CTRL = const(0x00)
_CTRL1 = const(0x01)
_CTRL2 = const(0x02)
_ADCO_B2 = const(0x12)
_PU_RR = const(0x01)
_PU_PUD = const(0x02)
_PU_PUA = const(0x04)
_PU_PUR = const(0x08)
_PU_CS = const(0x10)
_PU_CR = const(0x20)
_CAL_START = const(0x04)
GAINS = (1, 2, 4, 8, 16, 32, 64, 128)
RATES = (10, 20, 40, 80, 320)


class NAU7802:
    """NAU7802 driver with the same ready/read/timed_out interface as the HX711 driver."""

    def __init__(self, i2c, gain=128, rate=80, timeout_ms=500):
        self.i2c = i2c
        self.timeout_ms = timeout_ms
        self.one = bytearray(1)
        self.three = bytearray(3)
        self.last_ok = time.ticks_ms()
        self.gain = gain
        self._write(_PU_CTRL, _PU_RR)  # register reset
        self._write(_PU_CTRL, 0)
        self.power_up()
        self.set_gain(gain)
        self.set_rate(rate)
        self.calibrate_afe()

    def _write(self, reg, value):
        self.one[0] = value
        self.i2c.writeto_mem(ADDR, reg, self.one)

    def _read(self, reg):
        self.i2c.readfrom_mem_into(ADDR, reg, self.one)
        return self.one[0]

    def set_gain(self, gain):
        """Programmable gain 1..128 (re-run AFE calibration afterwards)."""
        if gain not in GAINS:
            raise ValueError("gain")
        code = GAINS.index(gain)
        self._write(_CTRL1, (self._read(_CTRL1) & 0xF8) | code)
        self.gain = gain

    def set_rate(self, rate):
        """Conversion rate in samples per second (10, 20, 40, 80, 320)."""
        if rate not in RATES:
            raise ValueError("rate")
        code = 7 if rate == 320 else RATES.index(rate)
        self._write(_CTRL2, (self._read(_CTRL2) & 0x8F) | (code << 4))

    def calibrate_afe(self, timeout_ms=1000):
        """Internal offset calibration; needed after any gain/rate/channel change."""
        self._write(_CTRL2, self._read(_CTRL2) | _CAL_START)
        t0 = time.ticks_ms()
        while self._read(_CTRL2) & _CAL_START:
            if time.ticks_diff(time.ticks_ms(), t0) > timeout_ms:
                raise OSError("NAU7802 calibration timeout")
            time.sleep_ms(1)

    def ready(self):
        """True when the cycle-ready bit is set."""
        return bool(self._read(_PU_CTRL) & _PU_CR)

    def timed_out(self):
        """True when no conversion arrived within ``timeout_ms`` of the last good one."""
        return time.ticks_diff(time.ticks_ms(), self.last_ok) > self.timeout_ms

    def read(self):
        """Read one conversion as a signed int (proper 24-bit sign extension)."""
        self.i2c.readfrom_mem_into(ADDR, _ADCO_B2, self.three)
        b = self.three
        v = (b[0] << 16) | (b[1] << 8) | b[2]
        if v & 0x800000:
            v -= 0x1000000
        self.last_ok = time.ticks_ms()
        return v

    def power_down(self):
        """Analogue and digital power off (~200 nA)."""
        self._write(_PU_CTRL, self._read(_PU_CTRL) & ~(_PU_PUD | _PU_PUA) & 0xFF)

    def power_up(self):
        """Power up digital and analogue parts and start conversions."""
        self._write(_PU_CTRL, _PU_PUD)
        t0 = time.ticks_ms()
        while not self._read(_PU_CTRL) & _PU_PUR:
            if time.ticks_diff(time.ticks_ms(), t0) > 100:
                raise OSError("NAU7802 not responding")
            time.sleep_ms(1)
        self._write(_PU_CTRL, _PU_PUD | _PU_PUA | _PU_CS)
        self.last_ok = time.ticks_ms()
