"""The node application on the unix port: commands, acks, de-duplication, persistence, watchdog."""

from __future__ import annotations

import json

from firmware.tests.conftest import MpyRun

PRELUDE = """
import json, machine, node, store
from scripted_tx import ScriptedTx
from scale import CAL_DEFAULT
def boot(tx, cfg_changes=None):
    cfg = node.validate_config(node.CONFIG, store.load(node.CONFIG_FILE, {}))
    cfg["wdt_ms"] = 0
    cfg.update(cfg_changes or {})
    cal = dict(CAL_DEFAULT)
    cal.update(store.load(node.CAL_FILE, {}))
    return node.App(tx, cfg, cal)
def run_until(app, tx, pred, max_ms=15000):
    # run in slices until pred(tx) holds: a loaded machine must not cut a step short
    import time
    t0 = time.ticks_ms()
    while not pred(tx):
        assert time.ticks_diff(time.ticks_ms(), t0) < max_ms, "timed out"
        app.run(run_ms=100)
def acked(*ids):
    return lambda tx: set(ids) <= set(m["id"] for m in tx.messages("ack"))
def show(tx, t):
    for m in tx.messages(t):
        print(json.dumps(m))
"""


def lines(out: str) -> list[dict[str, object]]:
    return [json.loads(x) for x in out.splitlines() if x.startswith("{")]


def test_commands_acked_deduplicated_and_persisted(mpy: MpyRun) -> None:
    out = mpy(
        PRELUDE
        + """
machine.sim.set_weight_kg(0)
tx = ScriptedTx()
tx.cmd(1, "calibrate", {"point": "zero"}, after_ms=300)
tx.cmd(1, "calibrate", {"point": "zero"}, after_ms=320)        # retry: same id
tx.raw(b'\\x00garbage line\\n', after_ms=330)
tx.cmd(2, "tare", v=2, after_ms=340)                          # newer major version
app = boot(tx)
run_until(app, tx, lambda tx: acked(1)(tx) and len(tx.messages("nak")) == 2)
machine.sim.set_weight_kg(25.0)
tx.cmd(3, "calibrate", {"point": "span", "kg": 25.0}, after_ms=50)
tx.cmd(4, "configure", {"e_g": 20, "window": 8})
tx.cmd(5, "configure", {"e_g": "big"})
tx.cmd(6, "identify", {"s": 0.2})
run_until(app, tx, acked(3, 4, 5, 6))
tx.cmd(7, "stop")
app.run(run_ms=60000)                                         # returns early on "stop"
show(tx, "ack"); show(tx, "nak")
w = tx.messages("w")[-1]
print(json.dumps({"last_w": w["net_g"], "stable": w["stable"], "e": w["e_g"]}))
tx2 = ScriptedTx()
app2 = boot(tx2)                                              # reboot: persisted state
run_until(app2, tx2, lambda tx: any(m["stable"] for m in tx.messages("w")))
w = tx2.messages("w")[-1]
h = tx2.messages("hello")[0]
print(json.dumps({"after_boot": w["net_g"], "e": w["e_g"], "boot_differs": h["boot"] != app.boot}))
""",
        env={"NODE_SIM_NOISE": "3"},
    ).stdout
    r = lines(out)
    acks = [m for m in r if m.get("t") == "ack"]
    naks = [m for m in r if m.get("t") == "nak"]
    # scale commands wait for a stable reading; the others are answered at once
    assert [a["id"] for a in acks] == [1, 1, 4, 5, 6, 3, 7]
    acks = acks[:2] + [acks[5]] + acks[2:5]
    assert acks[0]["seq"] == acks[1]["seq"]  # the retry got the stored ack, not a re-execution
    assert acks[2]["ok"] is True and abs(acks[2]["result"]["cpk"] - 2000) < 5
    assert acks[3]["ok"] is True and acks[3]["cfg"] != acks[2]["cfg"]
    assert acks[4]["ok"] is False and acks[4]["err"] == "type:e_g"
    assert [(n["id"], n["err"]) for n in naks] == [(None, "unmarked"), (2, "version")]
    assert r[-2]["last_w"] == 25000 and r[-2]["stable"] is True and r[-2]["e"] == 20
    assert r[-1] == {"after_boot": 25000, "e": 20, "boot_differs": True}


def test_unstable_scale_naks_tare_at_deadline(mpy: MpyRun) -> None:
    out = mpy(
        PRELUDE
        + """
machine.sim.noise = 2000
tx = ScriptedTx()
tx.cmd(9, "tare", {"timeout_ms": 300})
app = boot(tx)
run_until(app, tx, acked(9))
show(tx, "ack")
"""
    ).stdout
    (ack,) = lines(out)
    assert ack["id"] == 9 and ack["ok"] is False and ack["err"] == "unstable"


def test_watchdog_stops_being_fed_when_adc_stays_silent(mpy: MpyRun) -> None:
    out = mpy(
        PRELUDE
        + """
tx = ScriptedTx()
app = boot(tx, {"sample_timeout_ms": 60, "wdt_ms": 5000})
app.run(run_ms=300)
fed_ok = machine.sim.wdt_feeds
print(json.dumps({"healthy": app.healthy(), "fed": fed_ok > 10}))
machine.sim.hx_dead = True
run_until(app, tx, lambda tx: not app.healthy())     # after 5 power-cycle attempts
f1 = machine.sim.wdt_feeds
app.run(run_ms=300)
w = tx.messages("w")[-1]
hb = tx.messages("hb")[-1]
print(json.dumps({"healthy": app.healthy(), "fed_more": machine.sim.wdt_feeds > f1,
                  "fault": w.get("fault"), "stable": w["stable"], "adc": hb["status"]["adc"]}))
"""
    ).stdout
    r = lines(out)
    assert r[0] == {"healthy": True, "fed": True}
    assert r[1] == {
        "healthy": False,
        "fed_more": False,
        "fault": "adc_timeout",
        "stable": False,
        "adc": "timeout",
    }


def test_sensors_dock_debounce_gas_alarm_and_ds18b20_faults(mpy: MpyRun) -> None:
    out = mpy(
        PRELUDE
        + """
import time
tx = ScriptedTx()
app = boot(tx, {"role": "sensors", "sensor_ms": 200})
machine.sim.temps = [21.5, 30.25]
def temps_in(tx):
    return any(m["temps"] for m in tx.messages("s"))
run_until(app, tx, temps_in)      # first DS18B20 read is the 85 C power-on value: rejected
machine.sim.dock = True
machine.sim.gas_u16 = 50000
app.run(run_ms=20)                # shorter than the debounce: no dock event yet
n_dock = len(tx.messages("dock"))
run_until(app, tx, lambda tx: tx.messages("dock") and tx.messages("s")[-1]["gas_alarm"])
machine.sim.ds_fail = True
run_until(app, tx, lambda tx: tx.messages("s")[-1]["errs"] == ["ds18b20:CRC error"])
s = tx.messages("s")
print(json.dumps({"n_dock_early": n_dock, "dock": [m["docked"] for m in tx.messages("dock")],
                  "temps_seen": [m["temps"] for m in s if m["temps"]][-1],
                  "power_on_rejected": any("ds18b20_power_on" in e for m in s for e in m["errs"]),
                  "gas_alarm": s[-1]["gas_alarm"], "crc_err": s[-1]["errs"],
                  "last_temps": s[-1]["temps"]}))
"""
    ).stdout
    (r,) = lines(out)
    assert r["n_dock_early"] == 0 and r["dock"] == [True]
    assert r["temps_seen"] == [21.5, 30.25] and r["power_on_rejected"] is True
    assert r["gas_alarm"] is True
    assert r["crc_err"] == ["ds18b20:CRC error"] and r["last_temps"] == []
