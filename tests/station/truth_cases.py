"""Readings for the truth-of-values scenarios, made by the real decoders (no network).

SunSpec readings come from the simulator's registers decoded with the official model
definitions (``sunspec_map.to_reading``); GB/T 27930 readings from the simulator's encoders
decoded and applied by ``GbtCollector`` into a ``ReadingBuilder`` with the profile's limits.
Every event built from them is signed, verified and validated against the JSON Schema.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import jsonschema
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_agent.bms.can import gbt27930 as gbt
from edge_agent.bms.can import gbt27930_encode as enc
from edge_agent.bms.can.gbt27930_session import GbtCollector
from edge_agent.bms.can.j1939_tp import TpReceiver
from edge_agent.bms.can.reading import ReadingBuilder
from edge_agent.bms.modbus.sunspec_decode import decode_model
from edge_agent.bms.modbus.sunspec_map import to_reading
from edge_agent.bms.modbus.sunspec_models import load_model
from edge_agent.bms.modbus.sunspec_reader import SunSpecScan
from edge_agent.bms.profile import PackProfile, load_profile
from edge_agent.event_codec import event_from_plain, event_to_plain
from edge_agent.model import BmsReading, IdentificationEvent, Readings, SensorReading, WeightReading
from edge_agent.signing.events import sign_event, verify_event
from edge_agent.signing.signer import SoftwareSigner
from edge_agent.signing.trust import StaticKeys
from edge_agent.sim.can_gbt import DEFAULT_BRM, GbtSimConfig, default_bcp
from edge_agent.sim.modbus_sunspec import SunSpecBattery, encode_model, model_point_values
from edge_agent.station.assemble import EventContext, build_event
from edge_agent.station.reconcile import reconcile
from edge_agent.station.settings import TriageSettings
from edge_agent.station.triage import triage
from tests.support.signing import ROOT
from tests.support.station import label_with

MAKERS = {"001": ("CATL",)}
SUNSPEC_CODE = "03UPBA2000002NC550000042"  # LFP (B), code 128 on the demo pack
GBT_CODE = "001PEA3000017NB6F0001234"  # CATL, NCM (E)
GBT_LFP_CODE = "001PBA1000001NABB1234567"  # CATL, LFP (B)
SCHEMA = json.loads((ROOT / "schemas" / "event-v1.schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
_KEY = Ed25519PrivateKey.generate()
SIGNER = SoftwareSigner(_KEY)
KEYS = StaticKeys.of(_KEY.public_key())


def small_battery(**changes: Any) -> SunSpecBattery:
    """A small SunSpec LFP battery (2 strings x 2 modules x 4 cells) with ``changes``."""
    base = SunSpecBattery(strings=2, modules_per_string=2, cells_per_module=4)
    return replace(base, **changes)


def sunspec_reading(battery: SunSpecBattery) -> BmsReading:
    """What SunSpecSource would return for ``battery`` (decoded from its registers)."""
    models = []
    address = battery.base + 2
    for model_id, values, repeats in model_point_values(battery):
        definition = load_model(model_id)
        words = encode_model(definition, values, repeats)
        models.append(decode_model(definition, words, address=address))
        address += len(words)
    scan = SunSpecScan(
        base=battery.base, headers=(), models=tuple(models), problems=(), complete=True
    )
    return to_reading(scan, profile="sunspec-battery")


def gbt_reading(config: GbtSimConfig, profile: PackProfile | None = None) -> BmsReading:
    """What the GB/T 27930 method would return for a BMS simulated with ``config``."""
    profile = profile or load_profile("gbt27930-generic")
    assert profile.gbt27930 is not None
    receiver = TpReceiver(address=gbt.CHARGER, send=None, clock=time.monotonic)
    c = GbtCollector(section=profile.gbt27930, receiver=receiver)
    cells, temps = config.cells, config.temperatures or (25,)
    c.brm = gbt.decode_brm(enc.encode_brm(config.brm, length=config.brm_length))
    c.bcp = gbt.decode_bcp(enc.encode_bcp(config.bcp or default_bcp(len(cells))))
    hi = max(cells) if cells else 0.0
    c.bcs = gbt.decode_bcs(
        enc.encode_bcs(gbt.Bcs(round(sum(cells), 1), config.current_a, hi, 1, config.soc_pct, 0))
    )
    bsm = gbt.Bsm(
        max_voltage_cell=1,
        max_temperature_c=max(temps),
        max_temperature_probe=1,
        min_temperature_c=min(temps),
        min_temperature_probe=1,
        faults=config.faults,
        charge_allowed=not config.faults,
    )
    payload = bytearray(enc.encode_bsm(bsm))
    if config.bsm_temperature_bytes is not None:
        payload[1], payload[3] = config.bsm_temperature_bytes
    c.bsm = gbt.decode_bsm(bytes(payload))
    if cells:
        c.bmv = gbt.decode_bmv(enc.encode_bmv(cells))
    if config.temperatures:
        c.bmt = gbt.decode_bmt(enc.encode_bmt(config.temperatures))
    out = ReadingBuilder(profile=profile.name)
    c.apply(out)
    out.methods.append("gbt27930")
    return out.build(profile.limits)


def readings_of(
    bms: BmsReading,
    *,
    code: str,
    mass_kg: float,
    label_fields: dict[str, str] | None = None,
    gas_alarm: bool = False,
) -> Readings:
    """Label, weight and bench sensors around ``bms``."""
    return Readings(
        bms=bms,
        label=label_with(code, **(label_fields or {})),
        weight=WeightReading(status="ok", mass_kg=mass_kg, stable=True, node_id="scale-1"),
        sensors=SensorReading(
            status="ok", node_id="sensors-1", temperatures_c=(22.0,), gas_alarm=gas_alarm
        ),
    )


def identify_pure(
    readings: Readings, observations: tuple[str, ...] = (), profile: PackProfile | None = None
) -> IdentificationEvent:
    """Reconcile, triage, build, sign and verify: the event a station would publish."""
    rec = reconcile(readings, profile=profile, manufacturers=MAKERS)
    verdict = triage(readings, rec.checks, observations, TriageSettings())
    ctx = EventContext(
        site="site-1",
        station="bench-1",
        kid_hex=SIGNER.kid.hex(),
        boot_epoch=1,
        seq=1,
        clock_state="synced",
        now=datetime(2026, 12, 5, 9, 0, tzinfo=UTC),
    )
    event = build_event(
        ctx,
        trigger="request",
        pack=rec.pack,
        readings=readings,
        checks=rec.checks,
        triage=verdict,
        observations=observations,
        photo_jpeg=None,
    )
    verified = verify_event(sign_event(event, SIGNER), KEYS).event
    plain = event_to_plain(verified)
    VALIDATOR.validate(plain)
    assert event_from_plain(plain) == verified
    return verified


__all__ = [
    "DEFAULT_BRM",
    "GBT_CODE",
    "GBT_LFP_CODE",
    "SUNSPEC_CODE",
    "gbt_reading",
    "identify_pure",
    "readings_of",
    "small_battery",
    "sunspec_reading",
]
