"""Fake micropython-lib ``ds18x20`` (tests and simulator only), same API and failure modes."""

import machine


class DS18X20:
    def __init__(self, onewire):
        self.ow = onewire

    def scan(self):
        return [rom for rom in self.ow.scan() if rom[0] in (0x10, 0x22, 0x28)]

    def convert_temp(self):
        machine.sim.poll()

    def read_temp(self, rom):
        sim = machine.sim
        sim.poll()
        if sim.ds_fail:
            raise Exception("CRC error")
        if sim.ds_first:
            sim.ds_first = False
            return 85.0  # the power-on register value a weak pull-up leaves behind
        i = rom[1]
        if i >= len(sim.temps):
            raise Exception("CRC error")
        return float(sim.temps[i])
