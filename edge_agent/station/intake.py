"""The intake record a recycler reports (pure): UN number and special provision from the
triage, EU Battery Regulation status and category, the consignor, the site, who observed what.

Nothing is guessed: a field whose basis is missing (unknown chemistry, no SOH, no category in
the profile or config) is left out.
"""

from __future__ import annotations

from collections.abc import Iterable

from edge_agent.bms.profile import PackProfile
from edge_agent.model import (
    Consignor,
    EuBatteryCategory,
    EuBatteryStatus,
    IntakeRecord,
    Observation,
    PackIdentity,
    Readings,
    SohDefinition,
    SpecialProvision,
    Triage,
    UnNumber,
)
from edge_agent.station.settings import StationSettings

# chemistry tokens of lithium-ion batteries (ADR UN 3480/3481); "lithium_ion" is SunSpec's family
LITHIUM_ION = frozenset({"lfp", "ncm", "nca", "lmo", "lco", "lto", "polymer", "lithium_ion"})
# transport classes that ADR SP 376 covers (damaged/defective, including "cannot be diagnosed")
SP376_CLASSES = frozenset({"damaged_defective", "critical", "undiagnosable"})
# config text -> the event's tokens (the config validates the text with a pattern)
CATEGORIES: dict[str, EuBatteryCategory] = {
    "ev": "ev",
    "industrial": "industrial",
    "stationary": "stationary",
    "lmt": "lmt",
}
REUSE_STATUS: dict[str, EuBatteryStatus] = {
    "for_repurposing": "for_repurposing",
    "for_reuse": "for_reuse",
}


def un_number(chemistry: str | None, *, in_equipment: bool) -> UnNumber | None:
    """UN 3480 (loose) or UN 3481 (in or with equipment) for lithium-ion; None otherwise."""
    if chemistry not in LITHIUM_ION:
        return None
    return "UN3481" if in_equipment else "UN3480"


def special_provision(triage: Triage) -> SpecialProvision | None:
    """SP 376 for damaged/defective (or undiagnosable) packs, SP 377 for an intact pack going
    to recycling (P909); None for an intact pack carried as a tested type (P903)."""
    if triage.transport_class in SP376_CLASSES:
        return "SP376"
    if triage.packing_instruction == "P909" or (
        triage.transport_class == "normal" and triage.disposition == "material_recycling"
    ):
        return "SP377"
    return None


def eu_status(triage: Triage, reuse_status: EuBatteryStatus) -> EuBatteryStatus | None:
    """Waste for recycling, the site's reuse status for a reuse candidate, None while open."""
    if triage.disposition == "material_recycling":
        return "waste"
    if triage.disposition == "reuse_candidate":
        return reuse_status
    return None


def intake_record(
    *,
    readings: Readings,
    pack: PackIdentity,
    triage: Triage,
    settings: StationSettings,
    profile: PackProfile | None = None,
    consignor: Consignor | None = None,
    technician: str | None = None,
    observations: Iterable[Observation] = (),
) -> IntakeRecord:
    """Build the intake record; flags given at the bench win over the config defaults."""
    defaults = settings.intake
    chemistry = pack.battery_type
    if chemistry is None and readings.bms.identity.battery_type is not None:
        chemistry = str(readings.bms.identity.battery_type.value)
    un = un_number(chemistry, in_equipment=defaults.packs_in_equipment)
    if consignor is None and (defaults.consignor_name or defaults.consignor_uscc):
        consignor = Consignor(name=defaults.consignor_name, uscc=defaults.consignor_uscc)
    category: EuBatteryCategory | None = None
    for candidate in (profile.battery_category if profile else "", defaults.battery_category):
        if candidate in CATEGORIES:
            category = CATEGORIES[candidate]
            break
    soh_definition: SohDefinition | None = None
    if readings.bms.state.soh is not None:
        soh_definition = (profile.soh_definition if profile else "") or "unspecified"
    observed = tuple(observations)
    return IntakeRecord(
        un_number=un,
        special_provision=special_provision(triage) if un is not None else None,
        consignor=consignor,
        enterprise_id=settings.enterprise_id,
        eu_status=eu_status(triage, REUSE_STATUS.get(defaults.reuse_status, "for_repurposing")),
        eu_category=category,
        soh_definition=soh_definition,
        technician=technician or defaults.technician,
        observations=observed or None,
    )
