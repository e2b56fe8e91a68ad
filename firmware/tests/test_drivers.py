"""HX711 and NAU7802 drivers against the bit/register-level fakes on the real unix port."""

from __future__ import annotations

from firmware.tests.conftest import MpyRun


def test_hx711_shifts_exact_counts_and_gain(mpy: MpyRun) -> None:
    out = mpy(
        """
        import machine, time
        from hx711 import HX711
        machine.sim.noise = 0
        machine.sim.set_weight_kg(10.0)
        hx = HX711(5, 6, gain=128)
        def one():
            t0 = time.ticks_ms()
            while not hx.ready():
                assert time.ticks_diff(time.ticks_ms(), t0) < 1000
            return hx.read()
        print(one())
        hx.set_gain(64)
        print(one())  # this conversion was taken at gain 128, next one at 64
        print(one())
        hx.set_gain(32)
        one()
        print(one())
        machine.sim.offset = -100000
        machine.sim.set_weight_kg(0)
        hx.set_gain(128)
        one()
        print(one())
        """,
        env={"NODE_SIM_SPS": "320"},
    ).stdout.split()
    base = 84000 + 10 * 2000
    assert [int(x) for x in out] == [base, base, base * 64 // 128, base * 32 // 128, -100000]


def test_hx711_dout_timeout(mpy: MpyRun) -> None:
    out = mpy(
        """
        import machine, time
        from hx711 import HX711
        machine.sim.hx_dead = True
        hx = HX711(5, 6, timeout_ms=100)
        print(hx.ready(), hx.timed_out())
        time.sleep_ms(150)
        print(hx.ready(), hx.timed_out())
        """
    ).stdout.split()
    assert out == ["False", "False", "False", "True"]


def test_nau7802_reads_signed_counts(mpy: MpyRun) -> None:
    out = mpy(
        """
        import machine, time
        from nau7802 import NAU7802
        machine.sim.noise = 0
        machine.sim.offset = -1
        machine.sim.set_weight_kg(0)
        n = NAU7802(machine.I2C(0), gain=128, rate=320)
        vals = []
        for _ in range(2):
            t0 = time.ticks_ms()
            while not n.ready():
                assert time.ticks_diff(time.ticks_ms(), t0) < 1000
            vals.append(n.read())
        print(vals[1])
        n.set_gain(64)
        machine.sim.offset = 84000
        t0 = time.ticks_ms()
        while not n.ready():
            pass
        print(n.read())
        try:
            NAU7802(machine.I2C(0), gain=3)
        except ValueError as e:
            print("bad", e)
        """,
        env={"NODE_SIM_SPS": "320"},
    ).stdout.split()
    # -1 must read as -1 (the original port sign-extended wrongly to 16777215)
    assert out == ["-1", str(84000 * 64 // 128), "bad", "gain"]
