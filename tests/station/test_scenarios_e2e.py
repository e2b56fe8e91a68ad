"""The scenario table of issue 14, every row end to end through the station.

Each row says how the BMS is simulated, which label(s) the camera sees, what the pack weighs and
what the technician or the bench gas sensor notices, and what must come out: transport class,
packing instruction, disposition and reason substrings. Every row runs through the path
``edge-agent identify`` uses: a simulator on a virtual CAN bus or Modbus TCP read with the
pack profile by ``edge_agent.bms.read_bms``, label photos rendered by ``sim/label_render.py``
decoded through the folder camera, then ``StationAgent.identify`` (reconcile, triage, intake,
event, signature, outbox). The signed message is verified against the trust store, checked
against the JSON Schema, and received verified from Mosquitto by an independent subscriber.

A few rows also run through separate processes: ``edge-agent run`` with ``edge-agent identify``
over its control socket, and a docking (dock switch and weight rise from the node firmware)
that must give one event (``test_service_rows``).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from edge_agent.config import config_from_plain
from edge_agent.event_codec import event_from_plain, event_to_plain
from edge_agent.model import IdentificationEvent
from edge_agent.signing.events import verify_event
from edge_agent.sim.can_gbt import DEFAULT_BRM, GbtSimConfig
from edge_agent.sim.can_uds import DEFAULT_DIDS, UdsSimConfig
from edge_agent.sim.modbus_sunspec import SunSpecBattery, sunspec_device
from edge_agent.station.agent import StationAgent
from tests.station.procs import LineProcess, Service, run_cli, sim
from tests.station.scenario_bench import (
    BmsSim,
    Dbc,
    Gbt,
    LoopThread,
    Regmap,
    ScenarioBench,
    SunSpec,
    Uds,
)
from tests.support.mosquitto import MosquittoBroker, RecordingSubscriber, free_port
from tests.support.nodes import require_micropython
from tests.support.signing import ROOT
from tests.support.station import (
    StationFiles,
    event_key,
    station_files,
    station_plain,
    verified_events,
    write_config,
)

SCHEMA = json.loads((ROOT / "schemas" / "event-v1.schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

SUNSPEC_CODE = "03UPBA2000002NC550000042"  # Example Storage Co (03U), pack, LFP
GBT_CODE = "001PEA3000017NB6F0001234"  # CATL, pack, NCM
GBT_LFP_CODE = "001PBA1000001NABB1234567"  # CATL, pack, LFP
MODULE_CODE = "001MEA3000017NB6F0000077"  # a module of the NCM pack (product type M)
DAY31_CODE = "001PEA3000017NA300001234"  # made 2020-03-31: day 31 is written "0" (extrapolated)
UNCONFIRMED_CODE = "001PAA3000017NB6F0001234"  # battery type letter A: meaning unconfirmed
TESLA_CODE = "T5LPEA5000021NB6F0004242"  # label on the Tesla pack (NCM)
BYD_CODE = "0BYPBA7000009NB6F0000311"  # label on the BYD Battery-Box (LFP)
UDS_CODE = "001PEA3000017NB6F0003333"
SUNSPEC_KG = 575.0  # 86 kWh -> 150 Wh/kg
NCM_KG = 300.0  # 150 Ah x 355.2 V = 53.3 kWh -> 178 Wh/kg
LFP_KG = 400.0

EVT1 = {"over_temp_alarm": 1, "voltage_imbalance_warning": 17, "contactor_error": 20}
EVT1["ground_fault"] = 22
LFP_BRM = replace(
    DEFAULT_BRM,
    battery_type="lfp",
    rated_capacity_ah=100.0,
    rated_voltage_v=307.2,
    production_date="2020-11-11",
)
DAY31_BRM = replace(DEFAULT_BRM, production_date=None)  # the BMS does not say
POLYMER_BRM = replace(DEFAULT_BRM, battery_type="polymer")


def small(**changes: Any) -> SunSpec:
    """A small SunSpec LFP battery (2 strings x 2 modules x 4 cells) with ``changes``."""
    base = SunSpecBattery(strings=2, modules_per_string=2, cells_per_module=4)
    return SunSpec(replace(base, **changes))


def evt(*names: str) -> int:
    return sum(1 << EVT1[n] for n in names)


Check = Callable[[IdentificationEvent], None]


@dataclass(frozen=True)
class Row:
    """One scenario: the bench, and what the signed event must say."""

    name: str
    bms: BmsSim
    expect: tuple[str, str, str]  # transport class, packing instruction, disposition
    reasons: tuple[str, ...]  # substrings; each must be in one of the reasons
    codes: tuple[str, ...] = (GBT_CODE,)  # label photos in the order the camera sees them
    symbology: str = "qr"
    mass_kg: float = NCM_KG
    observations: tuple[str, ...] = ()
    gas_alarm: bool = False
    unjudged: tuple[str, ...] = ()
    check: Check | None = None
    second_trigger: bool = False  # a second dock trigger while the first identification runs


# --- per-row checks beyond class, instruction, disposition and reasons ---------------------


def checks_of(event: IdentificationEvent) -> dict[str, str]:
    return {c.name: c.status for c in event.checks}


def _soh_marked(event: IdentificationEvent) -> None:
    soh = event.readings.bms.state.soh  # type: ignore[union-attr]
    assert soh is not None and (soh.value, soh.quality) == (6500.0, "implausible")


def _temperature_unavailable(event: IdentificationEvent) -> None:
    t = event.readings.bms.state.temperature_max  # type: ignore[union-attr]
    assert t is not None and (t.value, t.quality) == ("0xFF", "unavailable")
    assert not any("205" in r for r in event.triage.reasons)
    assert checks_of(event)["bms_vs_profile_limits"] == "pass"


def _module_label_first(event: IdentificationEvent) -> None:
    assert event.pack.pack_code == GBT_CODE
    assert event.pack.product_level == "pack"
    kept = {(c.code, c.product_level) for c in event.pack.component_codes}
    assert (MODULE_CODE, "module") in kept, event.pack.component_codes
    assert checks_of(event)["label.component_codes"] == "warn"


def _day31(event: IdentificationEvent) -> None:
    assert event.pack.pack_code == DAY31_CODE
    assert event.pack.production_date == "2020-03-31"
    assert event.pack.production_date_confidence == "extrapolated"
    assert event.pack.source["production_date"] == "label"


def _polymer(event: IdentificationEvent) -> None:
    assert event.pack.battery_type == "polymer"
    weight = next(c for c in event.checks if c.name == "weight_vs_energy")
    assert weight.status == "pass" and "polymer" in weight.detail, weight.detail
    assert event.intake is not None and event.intake.un_number == "UN3480"


def _bms_chemistry_wins(event: IdentificationEvent) -> None:
    assert (event.pack.battery_type, event.pack.source["battery_type"]) == ("ncm", "bms")


def _label_kept(event: IdentificationEvent) -> None:
    assert (event.pack.battery_type, event.pack.source["battery_type"]) == ("lfp", "label")
    assert checks_of(event)["label_vs_bms.battery_type"] == "fail"


def _ecu_identity(event: IdentificationEvent) -> None:
    bms = event.readings.bms
    assert bms is not None and bms.identity.ecu is not None
    ecu = bms.identity.ecu
    assert ecu.serial is not None and ecu.serial.value == "BMS0042137755"  # after 0x78 twice
    assert ecu.system_supplier_id is not None and ecu.system_supplier_id.value == "LGES"
    # the controller's supplier, date and serial never become the pack's
    assert event.pack.serial != "BMS0042137755"
    assert event.pack.production_date != "2022-03-14"
    assert not [p for p in bms.problems if "F18C" in p], bms.problems


def _dead_bms(event: IdentificationEvent) -> None:
    bms = event.readings.bms
    assert bms is not None and bms.status == "failed" and bms.problems
    assert event.pack.pack_code == GBT_LFP_CODE  # the good label still identifies the pack
    assert event.intake is not None and event.intake.special_provision == "SP376"


def _mismatch(event: IdentificationEvent) -> None:
    failed = {n for n, s in checks_of(event).items() if s == "fail"}
    assert {"label_vs_bms.manufacturer", "label_vs_bms.battery_type"} <= failed, failed
    assert event.pack.pack_code == GBT_LFP_CODE


def _charge_count(event: IdentificationEvent) -> None:
    state = event.readings.bms.state  # type: ignore[union-attr]
    assert state.cycle_count is None
    assert state.charge_count is not None and state.charge_count.value == 312


def _healthy_sunspec(event: IdentificationEvent) -> None:
    assert event.pack.pack_code == SUNSPEC_CODE
    assert event.intake is not None
    assert (event.intake.un_number, event.intake.special_provision) == ("UN3480", None)


def _device_not_pack(event: IdentificationEvent) -> None:
    # SunSpec model 1 (Mn, SN) names the BMS device, not the pack
    assert event.pack.serial != "ESB2026000042"


def _bem_recorded(event: IdentificationEvent) -> None:
    faults = event.readings.bms.state.faults  # type: ignore[union-attr]
    assert {"bem_cts_cml_timeout", "bem_cro_timeout"} <= set(faults), faults


def _gas_intake(event: IdentificationEvent) -> None:
    assert event.intake is not None and event.intake.special_provision == "SP376"


ROWS: tuple[Row, ...] = (
    # --- SunSpec 802/803/804 events and State (Modbus TCP) --------------------------------
    Row("sunspec healthy", small(), ("normal", "P903", "reuse_candidate"), ("SOH 96.3",),
        codes=(SUNSPEC_CODE,), symbology="code128", mass_kg=SUNSPEC_KG,
        check=_healthy_sunspec),
    Row("sunspec GROUND_FAULT", small(events=evt("ground_fault")),
        ("critical", "P911", "material_recycling"), ("ground_fault",),
        codes=(SUNSPEC_CODE,), mass_kg=SUNSPEC_KG),
    Row("sunspec OVER_TEMP_ALARM", small(events=evt("over_temp_alarm")),
        ("critical", "P911", "material_recycling"), ("over_temp_alarm",),
        codes=(SUNSPEC_CODE,), mass_kg=SUNSPEC_KG),
    Row("sunspec CONTACTOR_ERROR", small(events=evt("contactor_error")),
        ("damaged_defective", "P908", "material_recycling"), ("contactor_error",),
        codes=(SUNSPEC_CODE,), mass_kg=SUNSPEC_KG),
    Row("sunspec State 99 FAULT", small(state=99),
        ("damaged_defective", "P908", "material_recycling"), ("state_fault",),
        codes=(SUNSPEC_CODE,), mass_kg=SUNSPEC_KG),
    Row("sunspec voltage imbalance warning", small(events=evt("voltage_imbalance_warning")),
        ("normal", "P903", "expert_review"), ("voltage_imbalance_warning",),
        codes=(SUNSPEC_CODE,), mass_kg=SUNSPEC_KG),
    Row("sunspec 803 string ground fault", small(string_events=1 << 22),
        ("critical", "P911", "material_recycling"), ("ground_fault",),
        codes=(SUNSPEC_CODE,), mass_kg=SUNSPEC_KG),
    Row("sunspec SOH 6500 %", small(soh=6500.0), ("normal", "P903", "expert_review"),
        ("could not judge soh: reported 6500.0 %", "capacity test needed"),
        codes=(SUNSPEC_CODE,), mass_kg=SUNSPEC_KG, unjudged=("soh",), check=_soh_marked),
    Row("sunspec SOC 250 %", small(soc=250.0), ("normal", "P903", "expert_review"),
        ("open-circuit voltage",), codes=(SUNSPEC_CODE,), mass_kg=SUNSPEC_KG,
        unjudged=("soc",)),
    Row("sunspec SOH 55 %", small(soh=55.0), ("normal", "P909", "material_recycling"),
        ("SOH 55 % below 70 %",), codes=(SUNSPEC_CODE,), mass_kg=SUNSPEC_KG),
    Row("sunspec model 1 is the device, not the pack", small(),
        ("normal", "P903", "reuse_candidate"), ("SOH 96.3",), codes=(SUNSPEC_CODE,),
        mass_kg=SUNSPEC_KG, check=_device_not_pack),
    # --- GB/T 27930 (charger emulation on a virtual CAN bus) -----------------------------
    Row("gbt healthy ncm (no SOH on GB/T)", Gbt(), ("normal", "P903", "expert_review"),
        ("SOH unknown",), check=_charge_count),
    Row("gbt temperature bytes 0xFF", Gbt(GbtSimConfig(temperatures=(),
        bsm_temperature_bytes=(0xFF, 0xFF))), ("normal", "P903", "expert_review"),
        ("could not judge temperature_max: reported 0xFF",),
        unjudged=("temperature_min", "temperature_max"), check=_temperature_unavailable),
    Row("gbt pack at 70 degC", Gbt(GbtSimConfig(temperatures=(),
        bsm_temperature_bytes=(120, 110))), ("critical", "P911", "material_recycling"),
        ("pack temperature 70",)),
    Row("gbt insulation flag", Gbt(GbtSimConfig(faults=("insulation",))),
        ("critical", "P911", "material_recycling"), ("insulation",)),
    Row("gbt BST insulation fault", Gbt(GbtSimConfig(bst=("bst_insulation",))),
        ("critical", "P911", "material_recycling"), ("insulation fault (BST)",)),
    Row("gbt BST high-voltage relay fault", Gbt(GbtSimConfig(bst=("bst_hv_relay_fault",))),
        ("damaged_defective", "P908", "material_recycling"), ("high-voltage relay fault",)),
    Row("gbt BEM timeouts only (the agent never charges)",
        Gbt(GbtSimConfig(bem=("bem_cts_cml_timeout", "bem_cro_timeout"))),
        ("normal", "P903", "expert_review"), ("SOH unknown",), check=_bem_recorded),
    Row("gbt cell undervoltage flag", Gbt(GbtSimConfig(faults=("cell_undervoltage",))),
        ("damaged_defective", "P908", "material_recycling"), ("cell_undervoltage",)),
    Row("gbt ncm cell at 2.2 V: deep discharge", Gbt(GbtSimConfig(cells=(2.2, 2.21) * 48)),
        ("damaged_defective", "P908", "material_recycling"),
        ("below 2.5 V (deep discharge for ncm)",)),
    Row("gbt lfp cell at 2.2 V: not deep discharged",
        Gbt(GbtSimConfig(brm=LFP_BRM, cells=(2.2, 2.21) * 48)),
        ("normal", "P903", "expert_review"), ("SOH unknown",), codes=(GBT_LFP_CODE,),
        mass_kg=LFP_KG),
    Row("gbt lfp cell at 1.9 V: deep discharge",
        Gbt(GbtSimConfig(brm=LFP_BRM, cells=(1.9, 1.91) * 48)),
        ("damaged_defective", "P908", "material_recycling"),
        ("below 2 V (deep discharge for lfp)",), codes=(GBT_LFP_CODE,), mass_kg=LFP_KG),
    Row("gbt polymer pack (BRM type 0x07)", Gbt(GbtSimConfig(brm=POLYMER_BRM)),
        ("normal", "P903", "expert_review"), ("SOH unknown",), codes=(UNCONFIRMED_CODE,),
        check=_polymer),
    Row("gbt unconfirmed label letter, definite BMS", Gbt(), ("normal", "P903", "expert_review"),
        ("SOH unknown",), codes=(UNCONFIRMED_CODE,), check=_bms_chemistry_wins),
    Row("gbt label lfp, BMS ncm", Gbt(), ("normal", "P903", "expert_review"),
        ("sources disagree",), codes=(GBT_LFP_CODE,), check=_label_kept),
    Row("gbt label and BMS disagree (maker and chemistry)",
        Gbt(GbtSimConfig(brm=replace(DEFAULT_BRM, manufacturer="BYDC"))),
        ("normal", "P903", "expert_review"), ("sources disagree",), codes=(GBT_LFP_CODE,),
        check=_mismatch),
    Row("gbt module label read before the pack label", Gbt(),
        ("normal", "P903", "expert_review"), ("SOH unknown",), codes=(MODULE_CODE, GBT_CODE),
        check=_module_label_first),
    Row("gbt day-31 code", Gbt(GbtSimConfig(brm=DAY31_BRM)), ("normal", "P903", "expert_review"), ("SOH unknown",),
        codes=(DAY31_CODE,), check=_day31),
    Row("gbt dead BMS with a good label", Gbt(GbtSimConfig(silent=True)),
        ("undiagnosable", "P908", "material_recycling"), ("cannot be diagnosed",),
        codes=(GBT_LFP_CODE,), mass_kg=LFP_KG, check=_dead_bms),
    Row("gbt two triggers for one docking", Gbt(), ("normal", "P903", "expert_review"),
        ("SOH unknown",), second_trigger=True),
    # --- technician observations and the bench gas sensor, healthy BMS --------------------
    Row("swelling, healthy BMS", small(), ("damaged_defective", "P908", "material_recycling"),
        ("swelling",), codes=(SUNSPEC_CODE,), mass_kg=SUNSPEC_KG, observations=("swelling",)),
    Row("odour, healthy BMS", small(), ("critical", "P911", "material_recycling"),
        ("solvent odour",), codes=(SUNSPEC_CODE,), mass_kg=SUNSPEC_KG,
        observations=("odour",)),
    Row("smoke, healthy GB/T BMS", Gbt(), ("critical", "P911", "material_recycling"),
        ("smoke",), observations=("smoke",)),
    Row("electrolyte leak, healthy BMS", small(),
        ("damaged_defective", "P908", "material_recycling"), ("electrolyte leak",),
        codes=(SUNSPEC_CODE,), mass_kg=SUNSPEC_KG, observations=("leak",)),
    Row("dent and discolouration, healthy GB/T BMS", Gbt(),
        ("damaged_defective", "P908", "material_recycling"), ("discolour",),
        observations=("dent", "discolouration")),
    Row("gas sensor alarm at the bench", small(), ("critical", "P911", "material_recycling"),
        ("gas/VOC sensor alarm",), codes=(SUNSPEC_CODE,), mass_kg=SUNSPEC_KG, gas_alarm=True,
        check=_gas_intake),
    # --- DBC broadcasts (tesla-model3 profile) --------------------------------------------
    Row("dbc healthy, insulation 4.5 MOhm", Dbc(), ("normal", "P903", "expert_review"),
        ("SOH unknown",), codes=(TESLA_CODE,), mass_kg=420.0),
    Row("dbc insulation 20 kOhm at 355 V", Dbc({"BMS_isolationResistance": 20.0}),
        ("critical", "P911", "material_recycling"), ("below 100 ohm/V",),
        codes=(TESLA_CODE,), mass_kg=420.0),
    Row("dbc limp request", Dbc({"BMS_diLimpRequest": 1.0}),
        ("damaged_defective", "P908", "material_recycling"), ("limp_request",),
        codes=(TESLA_CODE,), mass_kg=420.0),
    # --- register map over Modbus (byd-batterybox profile) --------------------------------
    Row("regmap healthy BYD", Regmap(), ("normal", "P903", "reuse_candidate"), ("SOH 99",),
        codes=(BYD_CODE,), mass_kg=110.0),
    Row("regmap SOH 120 %", Regmap({"soh": 120.0}), ("normal", "P903", "expert_review"),
        ("could not judge soh",), codes=(BYD_CODE,), mass_kg=110.0, unjudged=("soh",)),
    # --- UDS (ISO-TP on a virtual CAN bus) -------------------------------------------------
    Row("uds slow ECU: 0x78 twice, reply at 1.2 s",
        Uds(UdsSimConfig(pending_dids=(0xF18C,), pending_count=2, answer_delay_s=1.2)),
        ("normal", "P903", "expert_review"), ("SOH unknown",), codes=(UDS_CODE,),
        check=_ecu_identity),
    Row("uds vendor SOH 94.3 %",
        Uds(UdsSimConfig(dids={**DEFAULT_DIDS, 0x0105: (943).to_bytes(2, "big")}),
            profile="uds-example-vendor"),
        ("normal", "P903", "reuse_candidate"), ("SOH 94.3 % >= 70 %",), codes=(UDS_CODE,)),
    Row("uds vendor SOH 6500 %",
        Uds(UdsSimConfig(dids={**DEFAULT_DIDS, 0x0105: (65000).to_bytes(2, "big")}),
            profile="uds-example-vendor"),
        ("normal", "P903", "expert_review"), ("could not judge soh: reported 6500.0 %",),
        codes=(UDS_CODE,), unjudged=("soh",)),
)  # fmt: skip


@dataclass
class Station:
    """The module's station: loop thread, bench, agent, broker, subscriber, trust store."""

    loop: LoopThread
    bench: ScenarioBench
    agent: StationAgent
    files: StationFiles
    sub: RecordingSubscriber


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    root = tmp_path_factory.mktemp("scenarios")
    broker = MosquittoBroker(root / "mosquitto")
    broker.start()
    loop = LoopThread()
    sub: RecordingSubscriber | None = None
    agent: StationAgent | None = None
    try:
        files = station_files(root / "station")
        plain = station_plain(
            files,
            broker,
            station={
                "bms": {"timeout_s": 6.0, "retries": 0},
                "label": {"timeout_s": 6.0, "retries": 0},
                "weight": {"timeout_s": 2.0, "retries": 0},
            },
            metrics={"port": free_port()},
        )
        plain["station"]["manufacturers"].update({"T5L": ["Tesla"], "0BY": ["BYD"]})
        config = config_from_plain(plain)
        bench = ScenarioBench(root / "bench", loop)
        sub = RecordingSubscriber(broker, "battrace/v1/#", key_of=event_key(files.trust))
        agent = StationAgent(config, sources=bench.sources())
        loop.run(agent.__aenter__())
        yield Station(loop, bench, agent, files, sub)
    finally:
        if agent is not None:
            loop.run(agent.__aexit__(None, None, None))
        loop.close()
        if sub is not None:
            sub.close()
        broker.kill()
        shutil.rmtree(root / "mosquitto" / "data", ignore_errors=True)


def assert_row(row: Row, event: IdentificationEvent) -> None:
    """Class, instruction, disposition, reasons, unjudged values and the row's own checks."""
    t = event.triage
    assert (t.transport_class, t.packing_instruction, t.disposition) == row.expect, t.reasons
    for part in row.reasons:
        assert any(part in r for r in t.reasons), (part, t.reasons)
    assert tuple(t.unjudged or ()) == row.unjudged, t.unjudged
    # an implausible or unavailable value is kept as evidence and never decides anything
    for name in t.unjudged or ():
        value = getattr(event.readings.bms.state, name)  # type: ignore[union-attr]
        assert value is not None and value.quality in ("implausible", "unavailable"), name
    if row.check is not None:
        row.check(event)


def test_the_table_has_at_least_30_rows_and_covers_the_issue() -> None:
    assert len(ROWS) >= 30
    assert len({r.name for r in ROWS}) == len(ROWS)
    kinds = {type(r.bms) for r in ROWS}
    assert kinds == {SunSpec, Gbt, Uds, Dbc, Regmap}


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_scenario(station: Station, row: Row) -> None:
    s = station
    profile = s.bench.profile_of(row.bms)

    async def identify() -> tuple[Any, Any]:
        first = s.agent.identify(trigger="dock_switch", observations=row.observations,
                                 profile=profile)  # fmt: skip
        if not row.second_trigger:
            return await first, None
        task = asyncio.ensure_future(first)
        while not s.agent.identifying:  # the identification has started
            await asyncio.sleep(0.005)
        second = await s.agent.identify(trigger="weight", profile=profile)
        return await task, second

    with s.bench.dock(
        row.bms,
        codes=row.codes,
        symbology=row.symbology,
        mass_kg=row.mass_kg,
        gas_alarm=row.gas_alarm,
    ):
        started = time.monotonic()
        result, second = s.loop.run(identify(), 30.0)
        took = time.monotonic() - started
    if second is not None:  # one docking, one event
        assert second.event.event_id == result.event.event_id
    published = s.loop.run(s.agent.wait_published(result.event.event_id, 10.0))
    assert published.delivered
    # the signed message verifies against the trust store and matches what the agent built
    event = verify_event(result.message, s.files.trust).event
    assert event == result.event
    plain = event_to_plain(event)
    VALIDATOR.validate(plain)
    assert event_from_plain(plain) == event
    # and an independent subscriber received it from the broker and verified it
    assert s.sub.wait_for([event.event_id], timeout=10) == set()
    assert verified_events(s.sub, s.files.trust)[event.event_id] == event
    assert event.readings.label is not None and event.readings.label.status == "ok"
    assert_row(row, event)
    slow_row = isinstance(row.bms, Uds) and row.bms.config.answer_delay_s > 0
    dead_row = isinstance(row.bms, Gbt) and row.bms.config.silent
    assert took < (3.0 if slow_row or dead_row else 1.5), f"row took {took:.2f} s"


def test_every_row_was_one_event(station: Station) -> None:
    """Rows run in order on one agent; every identification reached the broker once."""
    events = verified_events(station.sub, station.files.trust)
    ids = [k for k in station.sub.counts if not k.startswith(("evidence:", "status"))]
    assert all(station.sub.counts[k] == 1 for k in ids), station.sub.counts
    assert len(events) == len(ids)


# --- rows through separate processes: `edge-agent run`, `edge-agent identify`, node firmware ---

USCC = "91350100M000100Y43"


@dataclass(frozen=True)
class ServiceRow:
    """A row run by ``edge-agent identify`` against ``edge-agent run`` (control socket)."""

    name: str
    battery: SunSpec
    expect: tuple[str, str, str]
    reasons: tuple[str, ...]
    args: tuple[str, ...] = ()
    unjudged: tuple[str, ...] = ()
    check: Check | None = None


def _intake_from_the_bench(event: IdentificationEvent) -> None:
    intake = event.intake
    assert intake is not None
    assert intake.technician == "tech-5"
    assert intake.consignor is not None and intake.consignor.uscc == USCC
    assert [(o.what, o.by) for o in intake.observations or ()] == [("swelling", "tech-5")]
    assert (intake.un_number, intake.special_provision) == ("UN3480", "SP376")


SERVICE_ROWS: tuple[ServiceRow, ...] = (
    ServiceRow("service: GROUND_FAULT, swelling seen by tech-5",
               small(events=evt("ground_fault")), ("critical", "P911", "material_recycling"),
               ("ground_fault", "swelling"),
               args=("--observe", "swelling", "--technician", "tech-5",
                     "--consignor-name", "Example Dismantling Co.", "--consignor-uscc", USCC),
               check=_intake_from_the_bench),
    ServiceRow("service: SOH 6500 %", small(soh=6500.0), ("normal", "P903", "expert_review"),
               ("could not judge soh: reported 6500.0 %",), unjudged=("soh",),
               check=_soh_marked),
    ServiceRow("service: State 99 FAULT", small(state=99),
               ("damaged_defective", "P908", "material_recycling"), ("state_fault",)),
)  # fmt: skip


@dataclass
class ServiceBench:
    """``edge-agent run`` with a SunSpec simulator (this process) and the node firmware."""

    service: Service
    node: LineProcess
    files: StationFiles
    config: Path
    sub: RecordingSubscriber
    loop: LoopThread
    modbus: Any
    port: int

    def serve(self, battery: SunSpecBattery) -> None:
        """Swap the battery behind the same Modbus TCP port."""
        self.loop.run(self.modbus.stop())
        self.modbus = sunspec_device(battery)
        self.loop.run(self.modbus.start_tcp(port=self.port))

    def node_says(self, command: str) -> None:
        self.node.send(command)
        assert self.node.line(20) == "ok", self.node.err()

    def log_lines(self, needle: str) -> list[str]:
        return [line for line in list(self.service.stderr) if needle in line]

    def wait_log(self, needle: str, count: int = 1, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while len(self.log_lines(needle)) < count:
            assert time.monotonic() < end, f"no {needle!r} in the log: {self.service.err()}"
            time.sleep(0.02)

    def events(self) -> dict[str, IdentificationEvent]:
        return verified_events(self.sub, self.files.trust)


@pytest.fixture(scope="module")
def service_bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceBench]:
    require_micropython()
    root = tmp_path_factory.mktemp("scenario-service")
    broker = MosquittoBroker(root / "mosquitto")
    broker.start()
    loop = LoopThread()
    procs: list[LineProcess] = []
    sub: RecordingSubscriber | None = None
    modbus = sunspec_device(small().battery)
    try:
        port = loop.run(modbus.start_tcp())
        node = sim("node", "--role", "scale+sensors", "--workdir", str(root / "node"))
        procs.append(node)
        node_port = node.line()
        labels = ScenarioBench(root / "bench", loop).labels((SUNSPEC_CODE,), "code128")
        files = station_files(root / "station")
        plain = station_plain(
            files,
            broker,
            station={
                "bms": {"timeout_s": 5.0, "retries": 0},
                "label": {"timeout_s": 5.0, "retries": 0},
                "weight": {"timeout_s": 8.0, "retries": 0},
            },
            bms={
                "profile": "sunspec-battery",
                "modbus": {"url": f"tcp://127.0.0.1:{port}", "timeout_s": 1.0},
            },
            label={"source": str(labels), "backend": "files"},
            nodes={"ports": [node_port], "hello_timeout_s": 10.0},
            metrics={"port": free_port()},
        )
        plain["station"]["manufacturers"].update({"03U": ["Example Storage Co"]})
        config = write_config(root / "edge-agent.toml", plain)
        sub = RecordingSubscriber(broker, "battrace/v1/#", key_of=event_key(files.trust))
        service = Service(config, files.data_dir)
        procs.append(service)
        service.wait_ready()
        bench = ServiceBench(service, node, files, config, sub, loop, modbus, port)
        yield bench
        modbus = bench.modbus
    finally:
        for proc in reversed(procs):
            proc.close()
        loop.run(modbus.stop())
        loop.close()
        if sub is not None:
            sub.close()
        broker.kill()
        shutil.rmtree(root / "mosquitto" / "data", ignore_errors=True)


@pytest.mark.parametrize("row", SERVICE_ROWS, ids=lambda r: r.name)
def test_service_rows(service_bench: ServiceBench, row: ServiceRow) -> None:
    bench = service_bench
    bench.serve(row.battery.battery)
    done = run_cli(bench.config, "identify", "--json", "--wait", "20", *row.args)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["published"] is True
    event = event_from_plain(answer["event"])
    assert bench.sub.wait_for([event.event_id], timeout=20) == set()
    assert bench.events()[event.event_id] == event  # verified by the subscriber
    VALIDATOR.validate(answer["event"])
    assert event.pack.pack_code == SUNSPEC_CODE
    t = event.triage
    assert (t.transport_class, t.packing_instruction, t.disposition) == row.expect, t.reasons
    for part in row.reasons:
        assert any(part in r for r in t.reasons), (part, t.reasons)
    assert tuple(t.unjudged or ()) == row.unjudged
    if row.check is not None:
        row.check(event)


def test_service_docking_two_triggers_one_event_then_docking_again_another(
    service_bench: ServiceBench,
) -> None:
    """The node firmware closes the dock switch and shows the weight: two triggers, one
    docking, one event. Undocked and docked again: a second event."""
    bench = service_bench
    bench.serve(small().battery)
    before = set(bench.events())
    starts = len(bench.log_lines(": start"))
    joins = len(bench.log_lines(": join"))
    bench.node_says("weight 0")
    bench.node_says("dock 1")
    bench.node_says(f"weight {SUNSPEC_KG}")
    bench.wait_log(": start", starts + 1)
    bench.wait_log(": join", joins + 1)  # the second trigger joined the docking
    end = time.monotonic() + 30
    while not (set(bench.events()) - before):
        assert time.monotonic() < end, bench.service.err()
        time.sleep(0.05)
    first = set(bench.events()) - before
    assert len(first) == 1, first
    (event_id,) = first
    event = bench.events()[event_id]
    assert event.trigger in ("dock_switch", "weight")
    assert (event.triage.transport_class, event.triage.disposition) == (
        "normal",
        "reuse_candidate",
    )
    undocks = len(bench.log_lines(": undock"))
    bench.node_says("dock 0")
    bench.node_says("weight 0")
    bench.wait_log(": undock", undocks + 1)
    bench.node_says("dock 1")
    bench.wait_log(": start", starts + 2)
    end = time.monotonic() + 30
    while len(set(bench.events()) - before) < 2:
        assert time.monotonic() < end, bench.service.err()
        time.sleep(0.05)
    assert len(set(bench.events()) - before) == 2
    assert bench.log_lines(": start")[starts:] and len(bench.log_lines(": start")) == starts + 2
