"""Station test support: realistic readings (a healthy LFP pack and variations), instant
sources, station keys + trust store, config files and a verifying backend subscriber."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.errors import EdgeAgentError
from edge_agent.model import (
    BmsIdentity,
    BmsReading,
    BmsState,
    IdentificationEvent,
    LabelCode,
    LabelReading,
    Readings,
    SensorReading,
    Value,
    WeightReading,
)
from edge_agent.signing.events import verify_event
from edge_agent.signing.keys import init_keys
from edge_agent.signing.trust import TrustStore
from edge_agent.station.workflow import StationSources
from tests.support.mosquitto import MosquittoBroker, RecordingSubscriber

PACK_CODE = "001PBA1000001NABB1234567"  # CATL, pack, LFP, 2020-11-11 per the unconfirmed tables


def gbt(value: str | float | int, unit: str = "", msg: str = "BRM") -> Value:
    """A value as the GB/T 27930 backend would report it."""
    return Value(value=value, unit=unit, method=f"gbt27930:{msg}")


def healthy_bms(**state_changes: object) -> BmsReading:
    """A readable LFP pack: 280 Ah x 345.6 V = 96.8 kWh, SOH 92 %, tight cells."""
    cells = tuple(3.300 + 0.001 * (i % 5) for i in range(108))
    state = BmsState(
        pack_voltage=gbt(356.9, "V", "BCP"),
        soc=gbt(55.0, "%", "BCP"),
        soh=Value(value=92.0, unit="%", method="uds:F1A0"),
        cell_voltage_min=gbt(min(cells), "V", "BMV"),
        cell_voltage_max=gbt(max(cells), "V", "BMV"),
        cell_voltage_mean=gbt(round(sum(cells) / len(cells), 4), "V", "BMV"),
        cell_voltage_spread=gbt(round(max(cells) - min(cells), 4), "V", "BMV"),
        cell_voltages=cells,
        temperature_min=gbt(21.0, "°C", "BSM"),
        temperature_max=gbt(24.0, "°C", "BSM"),
        temperatures=(21.0, 22.0, 24.0, 23.0),
    )
    state = replace(state, **state_changes)  # type: ignore[arg-type]
    return BmsReading(
        status="ok",
        transport="can",
        methods=("gbt27930",),
        profile="gbt27930-generic",
        identity=BmsIdentity(
            manufacturer=gbt("CATL"),
            serial=gbt("00012345"),
            production_date=gbt("2020-11-11"),
            battery_type=gbt("lfp"),
            rated_capacity=gbt(280.0, "Ah"),
            rated_voltage=gbt(345.6, "V"),
            vin=gbt("LGXCE6CB5L0123456"),
        ),
        state=state,
    )


def label_with(code: str = PACK_CODE, **fields: str) -> LabelReading:
    """A label reading carrying one GB/T 34014 code with parsed fields."""
    parsed = {
        "manufacturer": code[:3],
        "product_type": code[3],
        "battery_type": "lfp",
        "spec": code[5:7],
        "traceability": code[7:14],
        "production_date": "2020-11-11",
        "serial": code[17:],
    }
    parsed.update(fields)
    return LabelReading(
        status="ok",
        codes=(
            LabelCode(
                symbology="QRCode", text=code, kind="gbt34014", fields=parsed, decode_pass="plain"
            ),
        ),
        frames=1,
    )


def healthy_readings() -> Readings:
    """Label, BMS and a 600 kg weight that agree (96.8 kWh / 600 kg = 161 Wh/kg)."""
    return Readings(
        bms=healthy_bms(),
        label=label_with(),
        weight=WeightReading(
            status="ok", mass_kg=600.0, stable=True, division_kg=0.5, node_id="scale-1"
        ),
        sensors=SensorReading(
            status="ok", node_id="sensors-1", temperatures_c=(22.5,), gas_level=0.05
        ),
    )


# --- end-to-end helpers: station identity, config files, a verifying backend subscriber ------

SITE, STATION = "site-e2e", "bench-7"


@dataclass(frozen=True)
class StationFiles:
    """Where one test station keeps its key, trust store, data and config."""

    root: Path
    key_dir: Path
    data_dir: Path
    trust: TrustStore
    kid_hex: str


def station_files(root: Path) -> StationFiles:
    """A fresh Ed25519 station key and a trust store that binds it to SITE/STATION."""
    key_dir, data_dir = root / "keys", root / "data"
    kid = init_keys(key_dir, "ed25519")
    trust = TrustStore.load(root / "trust.json", create=True)
    trust.add((key_dir / "station.pub.pem").read_bytes(), station=STATION, site=SITE)
    trust.save()
    return StationFiles(root, key_dir, data_dir, trust, kid.hex())


def station_plain(
    files: StationFiles, broker: MosquittoBroker, **sections: dict[str, Any]
) -> dict[str, Any]:
    """A config document for ``files`` publishing to ``broker``; ``sections`` merge per key."""
    plain: dict[str, Any] = {
        "station": {
            "site": SITE,
            "station": STATION,
            "data_dir": str(files.data_dir),
            "manufacturers": {"001": ["CATL"], "03U": ["Example Storage"]},
        },
        "signing": {"key_dir": str(files.key_dir)},
        "bms": {"profile": ""},
        "label": {"source": ""},
        "uplink": {
            "mqtt": {
                "host": broker.host,
                "port": broker.port,
                "client_id": f"agent-{STATION}",
                "reconnect_min_s": 0.05,
                "reconnect_max_s": 0.3,
            }
        },
    }
    for name, values in sections.items():
        merged = dict(plain.get(name, {}))
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        plain[name] = merged
    return plain


def write_config(path: Path, plain: dict[str, Any]) -> Path:
    """Write a config document as TOML (only the value types our configs use)."""

    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, list | tuple):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        return json.dumps(str(v))

    lines: list[str] = []

    def table(prefix: str, values: dict[str, Any]) -> None:
        simple = {k: v for k, v in values.items() if not isinstance(v, dict)}
        nested = {k: v for k, v in values.items() if isinstance(v, dict)}
        lines.append(f"[{prefix}]")
        lines.extend(f"{json.dumps(k)} = {scalar(v)}" for k, v in simple.items())
        for key, sub in nested.items():
            table(f"{prefix}.{json.dumps(key)}", sub)

    for name, values in plain.items():
        table(name, values)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def event_key(trust: TrustStore) -> Callable[[str, bytes], str]:
    """RecordingSubscriber key: verified event id, ``evidence:<id>``, ``status`` or ``BAD``."""

    def key_of(topic: str, payload: bytes) -> str:
        if topic.endswith("/event"):
            try:
                return verify_event(payload, trust).event.event_id
            except EdgeAgentError as exc:
                return f"BAD:{exc}"
        if "/evidence/" in topic:
            return "evidence:" + topic.rsplit("/", 1)[-1]
        if topic.endswith("/status"):
            return "status"
        return "OTHER:" + topic

    return key_of


def verified_events(sub: RecordingSubscriber, trust: TrustStore) -> dict[str, IdentificationEvent]:
    """event_id -> verified IdentificationEvent of every event message received."""
    out: dict[str, IdentificationEvent] = {}
    for topic, payload, _retain in list(sub.messages):
        if topic.endswith("/event"):
            event = verify_event(payload, trust).event
            out[event.event_id] = event
    return out


def evidence_payloads(sub: RecordingSubscriber) -> dict[str, bytes]:
    """event_id -> evidence JPEG bytes received."""
    return {
        topic.rsplit("/", 1)[-1]: payload
        for topic, payload, _retain in list(sub.messages)
        if "/evidence/" in topic
    }


def retained_status(broker: MosquittoBroker, topic: str, timeout: float = 10.0) -> dict[str, Any]:
    """The retained status message as a fresh subscriber sees it (empty dict when none)."""
    got: list[bytes] = []
    done = threading.Event()
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)

    def on_message(c: Any, u: Any, msg: paho.MQTTMessage) -> None:
        if msg.retain:
            got.append(bytes(msg.payload))
            done.set()

    client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda *a: threading.Timer(1.0, done.set).start()
    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return json.loads(got[-1]) if got else {}


def photo_jpeg() -> bytes:
    """A small real JPEG (the evidence photo of the instant sources)."""
    image = np.full((120, 160, 3), 200, dtype=np.uint8)
    cv2.putText(image, PACK_CODE[:8], (5, 60), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return bytes(buf)


def instant_sources(photo: bytes | None = None) -> StationSources:
    """Sources that answer at once with the healthy readings (measure only our overhead)."""
    readings = healthy_readings()
    assert readings.bms is not None and readings.label is not None
    bms, label, weight, sensors = readings.bms, readings.label, readings.weight, readings.sensors
    assert weight is not None and sensors is not None
    photo = photo_jpeg() if photo is None else photo

    async def read_bms(timeout: float) -> BmsReading:
        return bms

    async def read_label(timeout: float) -> tuple[LabelReading, bytes | None]:
        return label, photo

    async def read_weight(timeout: float) -> WeightReading:
        return weight

    async def read_sensors(timeout: float) -> SensorReading:
        return sensors

    return StationSources(bms=read_bms, label=read_label, weight=read_weight, sensors=read_sensors)
