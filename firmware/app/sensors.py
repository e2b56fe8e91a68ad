"""Bench sensors: DS18B20 temperatures (onewire/ds18x20), analogue gas/VOC level, dock switch."""

import time

from machine import ADC, Pin

_POWER_ON_C = 85.0  # DS18B20 power-on register value: not a measurement on the first read


class Temperatures:
    """Non-blocking DS18B20 cycle: start a conversion, read all probes 750 ms later."""

    def __init__(self, pin, conv_ms=750):
        import ds18x20
        import onewire

        self.ds = ds18x20.DS18X20(onewire.OneWire(Pin(pin)))
        self.conv_ms = conv_ms
        self.roms = []
        self.values = []
        self.error = ""
        self.started = None
        self.first = True

    def poll(self):
        """Advance the conversion cycle; call often. Returns True when new values are in."""
        now = time.ticks_ms()
        try:
            if self.started is None:
                if not self.roms:
                    self.roms = self.ds.scan()
                    if not self.roms:
                        self.error = "ds18b20_none"
                        self.values = []
                        return False
                self.ds.convert_temp()
                self.started = now
                return False
            if time.ticks_diff(now, self.started) < self.conv_ms:
                return False
            self.started = None
            vals = []
            for rom in self.roms:
                t = self.ds.read_temp(rom)
                if t == _POWER_ON_C and self.first:
                    raise ValueError("ds18b20_power_on")
                vals.append(round(t, 2))
            self.values = vals
            self.first = False
            self.error = ""
            return True
        except Exception as exc:  # CRC failure raises bare Exception in ds18x20
            self.error = "ds18b20:" + str(exc)
            self.values = []
            self.roms = []
            self.started = None
            return False


class Gas:
    """Analogue gas/VOC level as a 0..1 fraction with a threshold and hysteresis."""

    def __init__(self, pin, threshold=0.6, hysteresis=0.05, samples=8):
        self.adc = ADC(Pin(pin))
        self.threshold = threshold
        self.hysteresis = hysteresis
        self.samples = samples
        self.raw = 0
        self.alarm = False

    def read(self):
        """Average a few conversions; update the alarm; return the level 0..1."""
        total = 0
        for _ in range(self.samples):
            total += self.adc.read_u16()
        self.raw = total // self.samples
        level = self.raw / 65535
        if level >= self.threshold:
            self.alarm = True
        elif level < self.threshold - self.hysteresis:
            self.alarm = False
        return level


class DockSwitch:
    """Debounced dock switch to ground (internal pull-up): docked when the pin reads 0."""

    def __init__(self, pin, debounce_ms=50, active_low=True):
        self.pin = Pin(pin, Pin.IN, Pin.PULL_UP)
        self.debounce_ms = debounce_ms
        self.active = 0 if active_low else 1
        self.state = self.pin.value() == self.active
        self.candidate = self.state
        self.since = time.ticks_ms()

    def poll(self):
        """Return True when the debounced state changed (read ``state``); no allocation."""
        now = time.ticks_ms()
        v = self.pin.value() == self.active
        if v != self.candidate:
            self.candidate = v
            self.since = now
            return False
        if v != self.state and time.ticks_diff(now, self.since) >= self.debounce_ms:
            self.state = v
            return True
        return False
