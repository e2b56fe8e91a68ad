"""Node settings: defaults, validation of changes from the host, and the config hash."""

import binascii
import json

from scale import DEFAULTS

CONFIG_FILE = "config.json"
CAL_FILE = "calib.json"
BOOTS_FILE = "boots.json"

CONFIG = {
    "role": "scale+sensors",  # "scale", "sensors" or "scale+sensors"
    "adc": "hx711",  # or "nau7802"
    "hx_dout": 5,
    "hx_sck": 6,
    "i2c_id": 0,
    "i2c_scl": 5,
    "i2c_sda": 4,
    "gain": 128,
    "sps": 80,
    "sample_timeout_ms": 500,
    "report_ms": 200,
    "sensor_ms": 1000,
    "hb_ms": 2000,
    "wdt_ms": 5000,
    "ow_pin": 22,
    "gas_pin": 26,
    "gas_threshold": 0.6,
    "dock_pin": 15,
    "dock_debounce_ms": 50,
    "led_pin": 25,
    "cmd_timeout_ms": 5000,
    "transport": "serial",  # or "mqtt" (Wi-Fi nodes)
    "mqtt_host": "",
    "mqtt_port": 1883,
}
for _k in DEFAULTS:
    CONFIG[_k] = DEFAULTS[_k]


def config_hash(cfg, cal):
    """CRC-32 (hex) of the persisted configuration and calibration."""
    return "%08x" % (
        binascii.crc32(json.dumps([sorted(cfg.items()), sorted(cal.items())]).encode()) & 0xFFFFFFFF
    )


def validate_config(cur, changes):
    """Return ``cur`` updated with ``changes``; ValueError names the first bad key."""
    new = dict(cur)
    for k, v in changes.items():
        if k not in cur:
            raise ValueError("unknown:" + k)
        d = cur[k]
        if isinstance(d, bool):
            ok = isinstance(v, bool)
        elif isinstance(d, (int, float)):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
            if ok and isinstance(d, int) and not isinstance(v, int):
                ok = False
        else:
            ok = isinstance(v, type(d))
        if not ok:
            raise ValueError("type:" + k)
        new[k] = v
    if new["role"] not in ("scale", "sensors", "scale+sensors"):
        raise ValueError("value:role")
    if (
        new["e_g"] <= 0
        or new["window"] < 2
        or new["window"] > 64
        or new["median"] < 1
        or new["median"] > 15
        or new["gain"] not in (1, 2, 4, 8, 16, 32, 64, 128)
    ):
        raise ValueError("range")
    return new
