"""The page's words for the event's tokens and the triage's sentences, marked for the catalog.

Tokens (transport class, disposition, observations, check names) map to catalog messages.
Triage reasons and next steps are English sentences in the signed event; ``reason_text``
translates the ones it knows by pattern and returns the rest unchanged, flagged, so the page
shows the signed text rather than nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from edge_agent.bms.faults import (
    _ALARM,
    _BMS,
    _GAS,
    _ISOLATION,
    _NO_LABEL,
    _THERMAL,
    _VOLTAGE,
    GAS_ALARM,
    OBSERVATIONS,
)
from edge_agent.ui.i18n import N_

Gettext = Callable[[str], str]

STATES = {
    "idle": N_("Ready: dock a pack"),
    "reading": N_("Reading the pack"),
    "result": N_("Result"),
    "failed": N_("Identification failed"),
}
SOURCES = {
    "bms": N_("BMS"),
    "label": N_("Label"),
    "weight": N_("Scale"),
    "sensors": N_("Bench sensors"),
}
READING_STATUS = {
    "waiting": N_("waiting"),
    "ok": N_("read"),
    "partial": N_("partly read"),
    "failed": N_("failed"),
    "absent": N_("not fitted"),
}
TRANSPORT = {
    "normal": N_("Intact"),
    "damaged_defective": N_("Damaged or defective"),
    "critical": N_("Critical: unstable"),
    "undiagnosable": N_("Cannot be diagnosed"),
}
DISPOSITION = {
    "reuse_candidate": N_("Second-life candidate"),
    "material_recycling": N_("Material recycling"),
    "expert_review": N_("Expert review"),
}
CHECK_STATUS = {
    "pass": N_("pass"),
    "warn": N_("warning"),
    "fail": N_("fail"),
    "skip": N_("skipped"),
}
CHECKS = {
    "label.code": N_("Label code"),
    "bms.read": N_("BMS read"),
    "label_vs_bms": N_("Label against BMS"),
    "label_vs_bms.code": N_("Label code against BMS"),
    "label_vs_bms.manufacturer": N_("Manufacturer: label against BMS"),
    "label_vs_bms.battery_type": N_("Chemistry: label against BMS"),
    "label_vs_bms.production_date": N_("Production date: label against BMS"),
    "code_vs_profile.manufacturer": N_("Manufacturer: code against profile"),
    "code_vs_profile.battery_type": N_("Chemistry: code against profile"),
    "weight_vs_energy": N_("Weight against rated energy"),
    "bms_vs_profile_limits": N_("BMS values within the profile's limits"),
}
DELIVERY = {
    "stored": N_("stored"),
    "sent": N_("sent"),
    "accepted": N_("accepted"),
    "rejected": N_("rejected"),
}
# the kiosk's observation buttons, in the order they are shown
BUTTONS = ("swelling", "leak", "odour", "damage", "smoke", "heat", "corrosion", "label_missing")
OBSERVATION_WORDS = {
    "swelling": N_("Swelling"),
    "leak": N_("Leak"),
    "odour": N_("Odour"),
    "damage": N_("Damage"),
    "smoke": N_("Smoke"),
    "heat": N_("Heat"),
    "corrosion": N_("Corrosion"),
    "label_missing": N_("Label missing"),
    "fire": N_("Fire"),
    "sparks": N_("Sparks"),
    "gassing": N_("Gassing"),
    "hissing": N_("Hissing"),
    "deformation": N_("Deformation"),
    "dent": N_("Dent"),
    "discolouration": N_("Discolouration"),
    "crash": N_("Crash vehicle"),
    "flood": N_("Flood damage"),
    "loose_wiring": N_("Loose wiring"),
}
CORRECTABLE = {
    "pack.pack_code": N_("Pack code"),
    "pack.battery_type": N_("Chemistry"),
    "pack.manufacturer": N_("Manufacturer"),
    "pack.serial": N_("Serial number"),
    "triage.disposition": N_("Disposition"),
    "observations": N_("Observations"),
}
CHEMISTRY = {
    "lfp": N_("LFP (lithium iron phosphate)"),
    "ncm": N_("NCM (nickel cobalt manganese)"),
    "nca": N_("NCA (nickel cobalt aluminium)"),
    "lmo": N_("LMO (lithium manganese oxide)"),
    "lto": N_("LTO (lithium titanate)"),
}

# meanings and bases of the observation vocabulary and the shared bases of the fault table
MEANINGS = {
    OBSERVATIONS["smoke"].meaning: N_("smoke"),
    OBSERVATIONS["fire"].meaning: N_("flame or fire"),
    OBSERVATIONS["sparks"].meaning: N_("sparks"),
    OBSERVATIONS["heat"].meaning: N_("rising temperature without load"),
    OBSERVATIONS["gassing"].meaning: N_("active gas release"),
    OBSERVATIONS["hissing"].meaning: N_("hissing (venting)"),
    OBSERVATIONS["odour"].meaning: N_("solvent odour (electrolyte vapour present)"),
    OBSERVATIONS["swelling"].meaning: N_("swelling"),
    OBSERVATIONS["deformation"].meaning: N_("casing deformation"),
    OBSERVATIONS["damage"].meaning: N_("physical or mechanical damage"),
    OBSERVATIONS["dent"].meaning: N_("dented casing"),
    OBSERVATIONS["discolouration"].meaning: N_("discolouration or scorch marks"),
    OBSERVATIONS["leak"].meaning: N_("electrolyte leak"),
    OBSERVATIONS["corrosion"].meaning: N_("corrosion"),
    OBSERVATIONS["crash"].meaning: N_("known crash vehicle"),
    OBSERVATIONS["flood"].meaning: N_("known flood damage"),
    OBSERVATIONS["loose_wiring"].meaning: N_("loose wiring"),
    OBSERVATIONS["label_missing"].meaning: N_("label missing or unreadable"),
    GAS_ALARM.meaning: N_("gas/VOC sensor alarm at the bench"),
}
BASES = {
    _THERMAL: N_("liable to dangerous evolution of heat (critical)"),
    _ISOLATION: N_("isolation or ground fault (critical; SP 376 note d)"),
    _GAS: N_("gas or venting (critical)"),
    _VOLTAGE: N_("voltage protection (SP 376 note d)"),
    _BMS: N_("BMS reports a defect (SP 376 note f)"),
    _ALARM: N_("active alarm (damaged/defective at least)"),
    _NO_LABEL: N_("identity from the BMS only: relabel after review"),
    "SP 376": N_("SP 376"),
    "SP 376 note c": N_("SP 376 note c"),
    "leaked or vented (SP 376 note a)": N_("leaked or vented (SP 376 note a)"),
    "misuse (SP 376 note b)": N_("misuse (SP 376 note b)"),
}
# fixed sentences of the triage (reasons and next steps)
SENTENCES = {
    "no damage observed, BMS readable, no safety faults": N_(
        "no damage observed, BMS readable, no safety faults"
    ),
    "not intact: material recycling": N_("not intact: material recycling"),
    "BMS cannot be read, so the pack cannot be diagnosed (SP 376)": N_(
        "BMS cannot be read, so the pack cannot be diagnosed (SP 376)"
    ),
    "SOH unknown: capacity test needed before reuse": N_(
        "SOH unknown: capacity test needed before reuse"
    ),
    "bench temperature sensor at or above the critical limit": N_(
        "bench temperature sensor at or above the critical limit"
    ),
    "Isolate the pack now: move it to the quarantine area and follow the thermal-event procedure.": N_(
        "Isolate the pack now: move it to the quarantine area and follow the thermal-event procedure."
    ),
    "Pack as DAMAGED/DEFECTIVE (P908, one per packaging, no air transport).": N_(
        "Pack as DAMAGED/DEFECTIVE (P908, one per packaging, no air transport)."
    ),
    "Check the BMS connector and 12 V wake-up, then identify again; otherwise ship as P908.": N_(
        "Check the BMS connector and 12 V wake-up, then identify again; otherwise ship as P908."
    ),
    "Sources disagree: set the pack aside for review; do not relabel it.": N_(
        "Sources disagree: set the pack aside for review; do not relabel it."
    ),
    "Send to capacity testing.": N_("Send to capacity testing."),
    "Route to second-life grading.": N_("Route to second-life grading."),
    "Route to material recycling (SP 377, P909).": N_(
        "Route to material recycling (SP 377, P909)."
    ),
    "BMS warnings: set the pack aside for review.": N_(
        "BMS warnings: set the pack aside for review."
    ),
}
_NUM = r"(-?[0-9.]+)"
# (pattern, message with {0}, {1}, ...) for sentences with numbers or names in them
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"SOH {_NUM} % >= {_NUM} %"), N_("SOH {0} % at or above {1} %")),
    (re.compile(rf"SOH {_NUM} % below {_NUM} %"), N_("SOH {0} % below {1} %")),
    (re.compile(rf"cell spread {_NUM} mV above {_NUM} mV"), N_("cell spread {0} mV above {1} mV")),
    (
        re.compile(rf"pack temperature {_NUM} °C at or above {_NUM} °C"),
        N_("pack temperature {0} °C at or above {1} °C"),
    ),
    (
        re.compile(rf"cell voltage {_NUM} V below {_NUM} V \(deep discharge for ([a-z ]+)\)"),
        N_("cell voltage {0} V below {1} V (deep discharge for {2})"),
    ),
    (re.compile(r"sources disagree: (.+)"), N_("sources disagree: {0}")),
    (
        re.compile(r"disposition set by the technician: (.+)"),
        N_("disposition set by the technician: {0}"),
    ),
)
_MEANING_BASIS = re.compile(r"(.+) \(([^()]*(?:\([^()]*\))?[^()]*)\)")


def reason_text(sentence: str, _: Gettext) -> tuple[str, bool]:
    """The sentence in the page's language and whether it was translated."""
    if sentence in SENTENCES:
        return _(SENTENCES[sentence]), True
    for regex, message in PATTERNS:
        m = regex.fullmatch(sentence)
        if m:
            parts = [_(CHECKS.get(g, g)) if g in CHECKS else g for g in m.groups()]
            if message.startswith("sources disagree"):
                parts = ["; ".join(_(CHECKS.get(n, n)) for n in m.group(1).split("; "))]
            return _(message).format(*parts), True
    m = _MEANING_BASIS.fullmatch(sentence)
    if m and m.group(1) in MEANINGS and m.group(2) in BASES:
        return _(N_("{0} ({1})")).format(_(MEANINGS[m.group(1)]), _(BASES[m.group(2)])), True
    return sentence, False


def word(table: dict[str, str], token: str | None, _: Gettext) -> str:
    """A token's word in the page's language; an unknown token as it is."""
    if token is None:
        return ""
    return _(table[token]) if token in table else token
