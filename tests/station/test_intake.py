"""The intake record: UN number and special provision from the triage, EU status and
category, consignor and site, SOH definition, who observed what; nothing invented."""

from __future__ import annotations

from dataclasses import replace

import pytest

from edge_agent.bms.profile import load_profile
from edge_agent.config import config_from_plain
from edge_agent.errors import ConfigError
from edge_agent.model import Consignor, Observation, PackIdentity, Triage
from edge_agent.station.intake import intake_record
from edge_agent.station.settings import IntakeSettings, StationSettings
from tests.support.station import healthy_readings

PACK = PackIdentity(pack_code="001PBA1000001NABB1234567", battery_type="lfp")
USCC = "91350100M000100Y43"


def triage(transport: str, packing: str, disposition: str) -> Triage:
    return Triage(
        transport_class=transport,  # type: ignore[arg-type]
        packing_instruction=packing,
        disposition=disposition,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("verdict", "sp", "status"),
    [
        (triage("normal", "P903", "reuse_candidate"), None, "for_repurposing"),
        (triage("normal", "P909", "material_recycling"), "SP377", "waste"),
        (triage("normal", "P903", "expert_review"), None, None),
        (triage("damaged_defective", "P908", "material_recycling"), "SP376", "waste"),
        (triage("critical", "P911", "material_recycling"), "SP376", "waste"),
        (triage("undiagnosable", "P908", "material_recycling"), "SP376", "waste"),
    ],
)
def test_un_number_special_provision_and_eu_status(
    verdict: Triage, sp: str | None, status: str | None
) -> None:
    record = intake_record(
        readings=healthy_readings(), pack=PACK, triage=verdict, settings=StationSettings()
    )
    assert record.un_number == "UN3480"
    assert record.special_provision == sp
    assert record.eu_status == status


def test_no_un_number_without_a_known_lithium_chemistry() -> None:
    readings = healthy_readings()
    bms = replace(readings.bms, identity=replace(readings.bms.identity, battery_type=None))
    for chem in (None, "nimh", "unconfirmed:A"):
        record = intake_record(
            readings=replace(readings, bms=bms),
            pack=replace(PACK, battery_type=chem),
            triage=triage("damaged_defective", "P908", "material_recycling"),
            settings=StationSettings(),
        )
        assert record.un_number is None and record.special_provision is None


def test_config_defaults_and_bench_entries() -> None:
    settings = StationSettings(
        enterprise_id="91310000717866186P",
        intake=IntakeSettings(
            consignor_name="Default Dismantler",
            consignor_uscc=USCC,
            technician="tech-7",
            battery_category="ev",
            reuse_status="for_reuse",
            packs_in_equipment=True,
        ),
    )
    ok = triage("normal", "P903", "reuse_candidate")
    record = intake_record(readings=healthy_readings(), pack=PACK, triage=ok, settings=settings)
    assert record.un_number == "UN3481"
    assert record.consignor == Consignor(name="Default Dismantler", uscc=USCC)
    assert (record.enterprise_id, record.technician) == ("91310000717866186P", "tech-7")
    assert (record.eu_status, record.eu_category) == ("for_reuse", "ev")
    entered = Consignor(name="Bench Entry Ltd")
    record = intake_record(
        readings=healthy_readings(),
        pack=PACK,
        triage=ok,
        settings=settings,
        consignor=entered,
        technician="tech-9",
        observations=[Observation(what="dent", by="tech-9")],
    )
    assert record.consignor == entered and record.technician == "tech-9"
    assert record.observations == (Observation(what="dent", by="tech-9"),)


def test_category_and_soh_definition_come_from_the_profile_or_stay_open() -> None:
    ok = triage("normal", "P903", "reuse_candidate")
    vendor = load_profile("uds-example-vendor")
    record = intake_record(
        readings=healthy_readings(), pack=PACK, triage=ok, settings=StationSettings()
    )
    assert record.eu_category is None and record.soh_definition == "unspecified"
    assert record.consignor is None and record.enterprise_id is None and record.technician is None
    record = intake_record(
        readings=healthy_readings(),
        pack=PACK,
        triage=ok,
        settings=StationSettings(),
        profile=replace(vendor, battery_category="stationary", soh_definition="capacity"),
    )
    assert (record.eu_category, record.soh_definition) == ("stationary", "capacity")
    readings = healthy_readings()
    no_soh = replace(readings.bms, state=replace(readings.bms.state, soh=None))
    record = intake_record(
        readings=replace(readings, bms=no_soh), pack=PACK, triage=ok, settings=StationSettings()
    )
    assert record.soh_definition is None


def test_config_refuses_a_uscc_with_a_wrong_check_character() -> None:
    with pytest.raises(ConfigError, match="check character"):
        config_from_plain({"station": {"intake": {"consignor_uscc": "91350100M000100Y44"}}})
    config = config_from_plain({"station": {"intake": {"consignor_uscc": USCC.lower()}}})
    assert config.station.intake.consignor_uscc == USCC
    with pytest.raises(ConfigError, match="battery_category"):
        config_from_plain({"station": {"intake": {"battery_category": "car"}}})
    with pytest.raises(ConfigError, match="reuse_status"):
        config_from_plain({"station": {"intake": {"reuse_status": "reused"}}})
