"""HX711 24-bit load-cell ADC on two GPIOs (bit-banged), allocation-free reads."""

import time

from machine import Pin, disable_irq, enable_irq
from micropython import const

# clock pulses after the 24 data bits select the gain/channel of the NEXT conversion
_PULSES_A128 = const(1)
_PULSES_B32 = const(2)
_PULSES_A64 = const(3)
GAINS = (128, 64, 32)
SATURATED_HI = const(0x7FFFFF)
SATURATED_LO = const(-0x800000)


class HX711:
    """HX711 driver: gain selection, power-down, DOUT-ready polling with a timeout."""

    def __init__(self, dout, pd_sck, gain=128, timeout_ms=500):
        self.pd_sck = Pin(pd_sck, Pin.OUT, value=0)
        self.dout = Pin(dout, Pin.IN, pull=Pin.PULL_UP)
        self.timeout_ms = timeout_ms
        self.extra = _PULSES_A128
        self.last_ok = time.ticks_ms()
        self.powered = True
        self.set_gain(gain)

    def set_gain(self, gain):
        """Select 128/64 (channel A) or 32 (channel B); takes effect after one read."""
        if gain == 128:
            self.extra = _PULSES_A128
        elif gain == 64:
            self.extra = _PULSES_A64
        elif gain == 32:
            self.extra = _PULSES_B32
        else:
            raise ValueError("gain")
        self.gain = gain

    def ready(self):
        """True when a conversion is waiting (DOUT low)."""
        return self.dout.value() == 0

    def timed_out(self):
        """True when no conversion arrived within ``timeout_ms`` of the last good one."""
        return time.ticks_diff(time.ticks_ms(), self.last_ok) > self.timeout_ms

    def read(self):
        """Shift out one conversion as a signed int; call only when ``ready()``."""
        sck = self.pd_sck
        dout = self.dout
        v = 0
        for _ in range(24):
            # IRQs off per pulse: a stretched high pulse (>60 us) powers the chip down
            state = disable_irq()
            sck.value(1)
            sck.value(0)
            enable_irq(state)
            v = (v << 1) | dout.value()
        for _ in range(self.extra):
            state = disable_irq()
            sck.value(1)
            sck.value(0)
            enable_irq(state)
        if v & 0x800000:
            v -= 0x1000000
        self.last_ok = time.ticks_ms()
        return v

    def power_down(self):
        """Hold PD_SCK high (>60 us) to put the chip to sleep."""
        self.pd_sck.value(0)
        self.pd_sck.value(1)
        time.sleep_us(80)
        self.powered = False

    def power_up(self):
        """Wake the chip; the first conversion after wake-up uses gain 128 on channel A."""
        self.pd_sck.value(0)
        self.powered = True
        self.last_ok = time.ticks_ms()
