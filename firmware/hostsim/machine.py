"""Fake ``machine`` for the MicroPython unix port (tests and simulator only, never shipped).

It simulates an HX711 behind two Pins (bit-level shift protocol), a NAU7802 on I2C, ADC
inputs, a dock switch and a watchdog. Simulated physics comes from ``sim`` (set in-process by a
test) or from a JSON control file named by $NODE_SIM_CTRL, re-read every $NODE_SIM_CTRL_MS ms.
The per-sample paths use small-int maths only so heap_lock tests measure the firmware, not this.
"""

import json
import os
import random
import sys
import time

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
WDT_EXIT = 86  # process exit status when the fake watchdog bites
RESET_EXIT = 87  # process exit status of machine.reset()


def _env_int(name, default):
    v = os.getenv(name)
    return int(v) if v else default


class _Sim:
    def __init__(self):
        self.hx_dout = _env_int("NODE_SIM_HX_DOUT", 5)
        self.hx_sck = _env_int("NODE_SIM_HX_SCK", 6)
        self.gas_pin = _env_int("NODE_SIM_GAS_PIN", 26)
        self.dock_pin = _env_int("NODE_SIM_DOCK_PIN", 15)
        self.period_us = 1000000 // _env_int("NODE_SIM_SPS", 80)
        # the chip sleeps after PD_SCK is high >60 us; a host OS stalls Python for longer than
        # that, so the simulated threshold is wider unless a test asks for the real one
        self.pd_us = _env_int("NODE_SIM_PD_US", 20000)
        self.offset = 84000  # counts of the empty platform at gain 128
        self.cpk = 2000  # counts per kg at gain 128
        self.noise = _env_int("NODE_SIM_NOISE", 8)  # +- counts
        self.outlier_pm = 0  # per-mille of HX711 glitch codes
        self.hx_dead = False
        self.load = 0
        self.weight_kg = 0.0
        self.temps = [24.5, 25.0]
        self.ds_fail = False
        self.ds_first = True
        self.gas_u16 = 6000
        self.dock = False
        self.ctrl = os.getenv("NODE_SIM_CTRL")
        self.ctrl_ms = _env_int("NODE_SIM_CTRL_MS", 20)
        self.ctrl_at = time.ticks_ms()
        self.ctrl_gen = -1
        self.unseen = -1
        self.adc_used = False
        self.wdt_timeout = 0
        self.wdt_last = 0
        self.wdt_feeds = 0

    def set_weight_kg(self, kg):
        """Load the simulated platform with ``kg`` (precomputes counts: no float per sample)."""
        self.weight_kg = kg
        self.load = int(kg * self.cpk)

    def counts(self, gain):
        """One conversion in counts for ``gain``: offset + load + noise, or a glitch code."""
        if self.outlier_pm and random.getrandbits(10) < self.outlier_pm:
            return 0x7FFFFF if random.getrandbits(1) else 0
        v = self.offset + self.load
        if self.noise:
            v += random.getrandbits(16) % (2 * self.noise + 1) - self.noise
        v = v * gain // 128
        if v > 0x7FFFFF:
            v = 0x7FFFFF
        if v < -0x800000:
            v = -0x800000
        return v & 0xFFFFFF

    def poll(self):
        """Re-read the control file when due; check the watchdog."""
        now = time.ticks_ms()
        if self.wdt_timeout and time.ticks_diff(now, self.wdt_last) > self.wdt_timeout:
            sys.stderr.write("fake machine: watchdog reset\n")
            sys.exit(WDT_EXIT)
        if self.ctrl is None or time.ticks_diff(now, self.ctrl_at) < self.ctrl_ms:
            return
        self.ctrl_at = now
        try:
            with open(self.ctrl) as f:
                c = json.loads(f.read())
        except (OSError, ValueError):
            return
        gen = c.get("gen", 0)
        if gen == self.ctrl_gen:
            return
        self.ctrl_gen = gen
        if "weight_kg" in c and c["weight_kg"] != self.weight_kg:
            self.set_weight_kg(c["weight_kg"])
        self.temps = c.get("temps", self.temps)
        self.gas_u16 = int(c.get("gas", self.gas_u16 / 65535) * 65535)
        self.dock = bool(c.get("dock", self.dock))
        self.hx_dead = bool(c.get("hx_dead", self.hx_dead))
        self.outlier_pm = int(c.get("outlier_pm", self.outlier_pm))
        self.ds_fail = bool(c.get("ds_fail", self.ds_fail))
        if self.adc_used and not self.hx_dead:
            self.unseen = gen  # acknowledged once a conversion with it has been read out
        else:
            self.ack(gen)

    def ack(self, gen):
        """Tell the simulator that the firmware now sees control generation ``gen``."""
        self.unseen = -1
        with open(self.ctrl + ".seen", "w") as f:
            f.write(str(gen))


sim = _Sim()


class _HX711Sim:
    """Bit-level HX711: DOUT low when a conversion is ready, one bit per PD_SCK rising edge."""

    def __init__(self):
        self.bit = 0
        self.word = 0
        self.gain = 128
        self.ready_at = time.ticks_us()
        self.high_at = 0
        self.word_gen = -1

    def dout(self):
        if sim.hx_dead:
            return 1
        b = self.bit
        if b == 0:
            return 0 if time.ticks_diff(time.ticks_us(), self.ready_at) >= 0 else 1
        if b <= 24:
            return (self.word >> (24 - b)) & 1
        # 25..27 pulses select the gain of the next conversion
        self.gain = 128 if b == 25 else (32 if b == 26 else 64)
        self.bit = 0
        if sim.unseen >= 0 and self.word_gen == sim.unseen:
            sim.ack(self.word_gen)
        self.ready_at = time.ticks_add(time.ticks_us(), sim.period_us)
        return 1

    def sck(self, v):
        now = time.ticks_us()
        if v:
            self.high_at = now
            if self.bit == 0:
                self.word = sim.counts(self.gain)
                self.word_gen = sim.ctrl_gen
            self.bit += 1
        elif time.ticks_diff(now, self.high_at) > sim.pd_us and 0 < self.bit < 24:
            self.bit = 0  # held high >60 us mid-read: the chip powered down


_hx = _HX711Sim()


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.mode = mode
        self._v = value if value is not None else (1 if pull == Pin.PULL_UP else 0)
        self.kind = 0
        if id == sim.hx_dout:
            self.kind = 1
            sim.adc_used = True
        elif id == sim.hx_sck:
            self.kind = 2
        elif id == sim.dock_pin:
            self.kind = 3

    def value(self, v=None):
        sim.poll()
        k = self.kind
        if v is None:
            if k == 1:
                return _hx.dout()
            if k == 3:
                return 0 if sim.dock else 1
            return self._v
        self._v = 1 if v else 0
        if k == 2:
            _hx.sck(self._v)
        return None

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def toggle(self):
        self.value(0 if self._v else 1)

    def init(self, mode=-1, pull=-1, value=None):
        if value is not None:
            self.value(value)


class ADC:
    def __init__(self, pin, atten=None):
        self.pin = pin

    def read_u16(self):
        sim.poll()
        pid = self.pin.id if isinstance(self.pin, Pin) else self.pin
        return sim.gas_u16 if pid == sim.gas_pin else 0


class _NAU7802Sim:
    def __init__(self):
        self.regs = bytearray(0x20)
        self.ready_at = time.ticks_us()

    def write(self, reg, val):
        if reg == 0x00:
            if val & 0x01:
                self.regs = bytearray(0x20)
                return
            val = (val & ~0x28) | (0x08 if val & 0x02 else 0)
        if reg == 0x02:
            val &= ~0x04  # internal calibration completes at once
        self.regs[reg] = val & 0xFF

    def read(self, reg):
        if reg == 0x00:
            cs = self.regs[0] & 0x10
            ready = cs and time.ticks_diff(time.ticks_us(), self.ready_at) >= 0
            return self.regs[0] | (0x20 if ready else 0)
        return self.regs[reg]

    def sample(self, buf):
        gain = 1 << (self.regs[1] & 7)
        w = sim.counts(gain)
        buf[0] = (w >> 16) & 0xFF
        buf[1] = (w >> 8) & 0xFF
        buf[2] = w & 0xFF
        self.ready_at = time.ticks_add(time.ticks_us(), sim.period_us)
        if sim.unseen >= 0:
            sim.ack(sim.unseen)


_nau = _NAU7802Sim()


class I2C:
    def __init__(self, id=0, scl=None, sda=None, freq=400000):
        self.id = id
        sim.adc_used = True

    def scan(self):
        return [0x2A]

    def _check(self, addr):
        if addr != 0x2A:
            raise OSError(19)  # ENODEV, as a missing device NAKs

    def writeto_mem(self, addr, reg, buf):
        sim.poll()
        self._check(addr)
        for i in range(len(buf)):
            _nau.write(reg + i, buf[i])

    def readfrom_mem_into(self, addr, reg, buf):
        sim.poll()
        self._check(addr)
        if reg == 0x12 and len(buf) == 3:
            _nau.sample(buf)
            return
        for i in range(len(buf)):
            buf[i] = _nau.read(reg + i)


class WDT:
    def __init__(self, id=0, timeout=5000):
        sim.wdt_timeout = timeout
        sim.wdt_last = time.ticks_ms()

    def feed(self):
        sim.wdt_feeds += 1
        sim.wdt_last = time.ticks_ms()


def unique_id():
    return bytes.fromhex(os.getenv("NODE_SIM_UID") or "e66141040327582a")


def reset_cause():
    return _env_int("NODE_SIM_RESET_CAUSE", PWRON_RESET)


def reset():
    sys.exit(RESET_EXIT)


def soft_reset():
    sys.exit(RESET_EXIT)


def disable_irq():
    return 0


def enable_irq(state=0):
    return None


def idle():
    time.sleep_ms(1)


def freq(*args):
    return 125000000
