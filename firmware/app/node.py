"""The node application: roles, the main loop, the host protocol and the watchdog."""

import binascii
import gc
import json
import os
import time

import machine
import nodeproto
import store
from node_config import BOOTS_FILE, CAL_FILE, CONFIG, CONFIG_FILE, config_hash, validate_config
from scale import CAL_DEFAULT, Scale

FW_VERSION = "0.1.0"
_RESET_NAMES = {1: "PWRON", 2: "HARD", 3: "WDT", 4: "DEEPSLEEP", 5: "SOFT"}
_MAX_ADC_RECOVERIES = 5  # then stop feeding the watchdog: a reset is the last resort


def _hex(b):
    return binascii.hexlify(b).decode()


class App:
    """One node: sampling, sensors, reporting and command handling over a transport."""

    def __init__(self, tx, cfg, cal, boots=1, reset_cause=1):
        self.tx = tx
        self.cfg = cfg
        self.cal = cal
        self.node_id = _hex(machine.unique_id())
        self.boot = _hex(os.urandom(4))
        self.boots = boots
        self.reset_cause = _RESET_NAMES.get(reset_cause, str(reset_cause))
        self.seq = 0
        self.t0 = time.ticks_ms()
        self.last_id = None
        self.last_ack = b""
        self.pending = None
        self.errors = 0
        self.last_error = ""
        self.adc_recoveries = 0
        self.adc = None
        self.scale = None
        self.temps = None
        self.gas = None
        self.dock = None
        self.identify_until = None
        self.led = None
        self.stopping = False
        self.zeroed = False
        self.setup()

    # --- setup -------------------------------------------------------------------------
    def setup(self):
        """Create drivers for the configured role."""
        cfg = self.cfg
        role = cfg["role"]
        if "scale" in role:
            self.adc = self._make_adc()
            self.scale = Scale(cfg, self.cal)
        if "sensors" in role:
            from sensors import DockSwitch, Gas, Temperatures

            self.temps = Temperatures(cfg["ow_pin"])
            self.gas = Gas(cfg["gas_pin"], cfg["gas_threshold"])
            self.dock = DockSwitch(cfg["dock_pin"], cfg["dock_debounce_ms"])
        try:
            self.led = machine.Pin(cfg["led_pin"], machine.Pin.OUT, value=0)
        except (ValueError, TypeError):
            self.led = None
        self.sample_at = time.ticks_ms()

    def _make_adc(self):
        cfg = self.cfg
        if cfg["adc"] == "nau7802":
            from nau7802 import NAU7802

            i2c = machine.I2C(
                cfg["i2c_id"], scl=machine.Pin(cfg["i2c_scl"]), sda=machine.Pin(cfg["i2c_sda"])
            )
            return NAU7802(i2c, cfg["gain"], cfg["sps"], cfg["sample_timeout_ms"])
        from hx711 import HX711

        return HX711(cfg["hx_dout"], cfg["hx_sck"], cfg["gain"], cfg["sample_timeout_ms"])

    # --- sampling (allocation-free) -----------------------------------------------------
    def sample(self):
        """Read one conversion when ready and feed the scale; True when a sample was taken."""
        adc = self.adc
        scale = self.scale
        if adc is None or scale is None:
            return False
        if adc.ready():
            scale.add(adc.read())
            self.sample_at = time.ticks_ms()
            self.adc_recoveries = 0
            return True
        return False

    # --- messages ----------------------------------------------------------------------
    def send(self, t, body):
        """Wrap ``body`` in the envelope, frame it and send it."""
        body["v"] = nodeproto.PROTO_MAJOR
        body["t"] = t
        body["node"] = self.node_id
        body["boot"] = self.boot
        body["seq"] = self.seq
        body["ts"] = time.ticks_ms()
        self.seq += 1
        line = nodeproto.frame(json.dumps(body).encode())
        self.tx.write(line)
        return line

    def hello(self):
        """Announce identity, versions, reset cause and configuration hash."""
        self.send(
            "hello",
            {
                "minor": nodeproto.PROTO_MINOR,
                "fw": FW_VERSION,
                "role": self.cfg["role"],
                "adc": self.cfg["adc"],
                "reset_cause": self.reset_cause,
                "boots": self.boots,
                "cfg": config_hash(self.cfg, self.cal),
            },
        )

    def heartbeat(self):
        """Uptime, free heap and status of each part."""
        status = {}
        if self.adc is not None:
            status["adc"] = "timeout" if self.adc_fault() else "ok"
        if self.temps is not None:
            status["temps"] = self.temps.error or "ok"
        gc.collect()  # one collection per heartbeat keeps the heap steady and the figure honest
        self.send(
            "hb",
            {
                "up_ms": time.ticks_diff(time.ticks_ms(), self.t0),
                "mem_free": gc.mem_free(),
                "mem_alloc": gc.mem_alloc(),
                "status": status,
                "err": self.last_error,
                "errors": self.errors,
            },
        )

    def report_weight(self):
        """Send the current weight message."""
        if self.scale is None:
            return
        body = self.scale.report()
        if self.adc_fault():
            body["stable"] = False
            body["fault"] = "adc_timeout"
        self.send("w", body)

    def report_sensors(self):
        """Send temperatures, gas level and dock state."""
        body: dict = {"temps": self.temps.values if self.temps else [], "errs": []}
        if self.temps and self.temps.error:
            body["errs"].append(self.temps.error)
        if self.gas:
            body["gas"] = round(self.gas.read(), 4)
            body["gas_raw"] = self.gas.raw
            body["gas_alarm"] = self.gas.alarm
        if self.dock:
            body["dock"] = self.dock.state
        self.send("s", body)

    # --- commands ----------------------------------------------------------------------
    def handle_line(self, n):
        """Parse one received line and execute, acknowledge or reject it."""
        line = bytes(self.tx.reader.buf[:n])
        try:
            cmd = nodeproto.parse_command(line)
        except ValueError as exc:
            reason = str(exc.args[0]) if exc.args else "bad"
            cid = None
            try:  # a well-framed command from a newer host: nak it by id
                obj = json.loads(nodeproto.unframe(line))
                cid = obj.get("id") if isinstance(obj, dict) else None
            except (ValueError, TypeError):
                pass
            self.send("nak", {"id": cid, "err": reason, "want_v": nodeproto.PROTO_MAJOR})
            return
        cid = cmd["id"]
        if cid == self.last_id:  # retry of the last command: answer again, do not re-execute
            self.tx.write(self.last_ack)
            return
        if self.pending is not None and self.pending["id"] == cid:
            return
        if cmd["op"] in ("tare", "zero", "calibrate"):
            if self.scale is None or self.pending is not None:
                self.ack(cmd, False, err="no_scale" if self.scale is None else "busy")
                return
            cmd["deadline"] = time.ticks_add(
                time.ticks_ms(), cmd["args"].get("timeout_ms", self.cfg["cmd_timeout_ms"])
            )
            self.pending = cmd  # executes once the scale is stable
            return
        self.execute(cmd)

    def ack(self, cmd, ok, result=None, err=""):
        """Acknowledge (or nak) ``cmd`` by id and remember it for de-duplication."""
        body = {"id": cmd["id"], "op": cmd["op"], "ok": ok, "cfg": config_hash(self.cfg, self.cal)}
        if result is not None:
            body["result"] = result
        if err:
            body["err"] = err
        self.last_ack = self.send("ack", body)
        self.last_id = cmd["id"]

    def execute(self, cmd):
        """Run a command now."""
        op = cmd["op"]
        args = cmd["args"]
        try:
            if op == "hello":
                self.hello()
                self.ack(cmd, True)
            elif op == "configure":
                new = validate_config(self.cfg, args)
                store.save(CONFIG_FILE, new)
                rebuild = any(new[k] != self.cfg[k] for k in new)
                self.cfg = new
                if rebuild:
                    self.rebuild()
                self.ack(cmd, True, {"config": self.cfg})
            elif op == "get_config":
                self.ack(cmd, True, {"config": self.cfg, "cal": self.cal})
            elif op == "stop":  # leave the app for the REPL (service with mpremote)
                self.ack(cmd, True)
                self.stopping = True
            elif op == "identify":
                self.identify_until = time.ticks_add(time.ticks_ms(), int(args.get("s", 5) * 1000))
                self.ack(cmd, True)
            elif op in ("tare", "zero", "calibrate"):
                self.ack(cmd, True, self.scale_op(op, args))
            else:
                self.ack(cmd, False, err="unknown_op")
        except ValueError as exc:
            self.ack(cmd, False, err=str(exc))

    def rebuild(self):
        """Re-create drivers after a configuration change."""
        self.adc = self.scale = self.temps = self.gas = self.dock = None
        gc.collect()
        self.setup()

    def scale_op(self, op, args):
        """Tare, zero-setting or a calibration point on a stable scale; persisted."""
        s = self.scale
        if s is None:
            raise ValueError("no_scale")
        if op == "tare":
            if args.get("clear"):
                s.clear_tare()
            else:
                s.set_tare()
        elif op == "zero":
            if not s.set_zero():
                raise ValueError("zero_range")
        elif args.get("point") == "zero":
            s.calibrate_zero()
        elif args.get("point") == "span":
            kg = args.get("kg")
            if not isinstance(kg, (int, float)) or isinstance(kg, bool):
                raise ValueError("kg")
            s.calibrate_span(kg)
        else:
            raise ValueError("point")
        store.save(CAL_FILE, self.cal)
        r = s.report()
        return {"net_g": r["net_g"], "tare_g": r["tare_g"], "cpk": self.cal["cpk"]}

    def run_pending(self):
        """Execute a waiting scale command when stable, nak it at its deadline."""
        cmd = self.pending
        if cmd is None or self.scale is None:
            return
        if self.scale.stable and not self.adc_fault():
            self.pending = None
            self.execute(cmd)
        elif time.ticks_diff(time.ticks_ms(), cmd["deadline"]) > 0:
            self.pending = None
            self.ack(cmd, False, err="unstable")

    # --- main loop ---------------------------------------------------------------------
    def healthy(self):
        """The watchdog is fed only while this holds."""
        if self.errors > 10:
            return False
        return self.adc is None or self.adc_recoveries < _MAX_ADC_RECOVERIES

    def adc_fault(self):
        """True when no conversion arrived within the sample timeout."""
        return time.ticks_diff(time.ticks_ms(), self.sample_at) > self.cfg["sample_timeout_ms"]

    def check_adc(self):
        """Power-cycle a silent ADC (DOUT timeout) and count the attempts."""
        if self.adc is None or not self.adc.timed_out():
            return
        self.last_error = "adc_timeout"
        self.adc_recoveries += 1
        self.adc.power_down()
        self.adc.power_up()

    def run(self, run_ms=0):
        """Main loop; returns after ``run_ms`` (0 = forever) or when the host stream ends."""
        cfg = self.cfg
        wdt = machine.WDT(timeout=cfg["wdt_ms"]) if cfg["wdt_ms"] else None
        self.hello()
        start = time.ticks_ms()
        next_w = next_s = next_hb = start
        was_stable = False
        while not self.tx.eof and not self.stopping:
            now = time.ticks_ms()
            if run_ms and time.ticks_diff(now, start) > run_ms:
                break
            try:
                scale = self.scale
                if scale is not None:
                    self.sample()
                    if not self.zeroed and scale.stable:
                        self.zeroed = True  # power-on zero-setting, once per boot
                        scale.initial_zero()
                    self.run_pending()
                    if time.ticks_diff(now, next_w) >= 0 or scale.stable != was_stable:
                        was_stable = scale.stable
                        next_w = time.ticks_add(now, cfg["report_ms"])
                        self.report_weight()
                    self.check_adc()
                if self.dock is not None and self.dock.poll():
                    self.send("dock", {"docked": self.dock.state})
                if self.temps is not None:
                    self.temps.poll()
                    if time.ticks_diff(now, next_s) >= 0:
                        next_s = time.ticks_add(now, cfg["sensor_ms"])
                        self.report_sensors()
                if time.ticks_diff(now, next_hb) >= 0:
                    next_hb = time.ticks_add(now, cfg["hb_ms"])
                    self.heartbeat()
                self.blink(now)
                if self.tx.hello_due:  # a (re)connected MQTT session: announce again
                    self.tx.hello_due = False
                    self.hello()
                n = self.tx.poll_line(2)
                if n >= 0:
                    self.handle_line(n)
                self.errors = 0
            except Exception as exc:  # keep serving; the watchdog decides when to give up
                self.errors += 1
                self.last_error = repr(exc)[:80]
            if wdt is not None and self.healthy():
                wdt.feed()

    def blink(self, now):
        """Flash the LED while an identify command is active."""
        if self.identify_until is None or self.led is None:
            return
        if time.ticks_diff(self.identify_until, now) < 0:
            self.identify_until = None
            self.led.value(0)
        else:
            self.led.value((now // 250) & 1)


def main():
    """Boot: load persisted config and calibration, count the boot, run on serial or MQTT."""
    cfg = validate_config(
        CONFIG, {k: v for k, v in store.load(CONFIG_FILE, {}).items() if k in CONFIG}
    )
    cal = dict(CAL_DEFAULT)
    cal.update(store.load(CAL_FILE, {}))
    boots = store.load(BOOTS_FILE, {"n": 0})["n"] + 1
    store.save(BOOTS_FILE, {"n": boots})
    tx = None
    if cfg["transport"] == "mqtt":
        tx = _mqtt_transport(cfg)
    if tx is None:
        from serial_link import SerialTransport

        tx = SerialTransport()
    App(tx, cfg, cal, boots, machine.reset_cause()).run()
    import micropython

    micropython.kbd_intr(3)  # back to a normal REPL after a "stop" command


def _mqtt_transport(cfg):
    from mqtt_link import MqttTransport
    from umqtt.simple import MQTTClient  # pyright: ignore[reportMissingImports] (frozen on ESP32 only)

    client_id = _hex(machine.unique_id())
    client = MQTTClient(client_id, cfg["mqtt_host"], cfg["mqtt_port"], keepalive=30)
    return MqttTransport(client, client_id)
