"""The one fault vocabulary: every fault and alarm name a decoder can emit, with its severity.

Decoders keep the names of their protocol (SunSpec symbols in lower case, GB/T 27930 BSM flag
tokens, the tokens a profile gives its DBC fault signals); this table maps each name onto what
triage does with it. Severity follows reference/standards.md section 6 as issue 14 reads it:
an active alarm is damaged/defective at least; thermal, gas, venting, isolation and ground
faults are critical. A warning (below its alarm level) keeps the transport class but blocks
reuse until someone looks; a state that is no defect is only recorded.

tests/station/test_fault_vocabulary.py fails when a decoder can emit a name this table does not
know; triage treats a name it still does not know as an active alarm (damaged/defective).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["critical", "damaged", "review", "info"]
SEVERITY_ORDER: dict[Severity, int] = {"critical": 3, "damaged": 2, "review": 1, "info": 0}


@dataclass(frozen=True)
class FaultMeaning:
    """What one fault name means and what triage makes of it."""

    severity: Severity
    meaning: str
    basis: str  # SP 376 criterion or standards.md 6.1 row


_THERMAL = "liable to dangerous evolution of heat (critical, standards.md 6.1)"
_ISOLATION = "isolation or ground fault (critical per issue 14; SP 376 note d)"
_GAS = "gas or venting (critical, standards.md 6.1)"
_VOLTAGE = "voltage protection (SP 376 note d)"
_BMS = "BMS reports a defect (SP 376 note f)"
_ALARM = "active alarm (damaged/defective at least)"
_WARNING = "warning below its alarm level: reuse needs a look"
_STATE = "a state, not a defect"
_NO_LABEL = "identity from the BMS only: relabel after review"


def _f(severity: Severity, meaning: str, basis: str) -> FaultMeaning:
    return FaultMeaning(severity, meaning, basis)


# GB/T 27930 BSM 2-bit flags (gbt27930.BSM_FAULT_NAMES); "unreliable" is the 10 state
# ("not credible"): the BMS cannot judge that quantity, so the pack cannot be diagnosed.
GBT27930: dict[str, FaultMeaning] = {
    "cell_overvoltage": _f("damaged", "cell voltage too high (BSM)", _VOLTAGE),
    "cell_undervoltage": _f("damaged", "cell voltage too low (BSM)", _VOLTAGE),
    "soc_high": _f("damaged", "state of charge too high (BSM)", _ALARM),
    "soc_low": _f("damaged", "state of charge too low (BSM)", _ALARM),
    "overcurrent": _f("damaged", "charge over-current (BSM)", _ALARM),
    "current_unreliable": _f("damaged", "current measurement not credible (BSM)", _BMS),
    "overtemperature": _f("critical", "battery over-temperature (BSM)", _THERMAL),
    "temperature_unreliable": _f("damaged", "temperature not credible (BSM)", _BMS),
    "insulation": _f("critical", "insulation fault (BSM)", _ISOLATION),
    "insulation_unreliable": _f("damaged", "insulation state not credible (BSM)", _BMS),
    "connector": _f("damaged", "output connector abnormal (BSM)", _ALARM),
    "connector_unreliable": _f("damaged", "output connector state not credible (BSM)", _BMS),
}

# GB/T 27930 BST (BMS stop charging) reasons and BEM (BMS error) timeouts
# (gbt27930_stop.BST_FAULT_NAMES, BEM_FAULT_NAMES). The agent never starts charging: it stops
# at the parameter stage, so a BMS that waits for the charger's next messages reports BEM
# timeouts by design; they say nothing about the pack. The ordinary stop reasons (target SOC
# or voltage reached, the charger stopped) are no defect either. The connector over-
# temperatures are the charging inlet's, not the cells': an active alarm, not a battery
# thermal event, so damaged; the pack's own over-temperature is critical.
_BEM = "charger message timed out (BEM): the agent stops before charging on purpose"
GBT27930_STOP: dict[str, FaultMeaning] = {
    "bst_soc_reached": _f("info", "BMS stopped charging: target SOC reached (BST)", _STATE),
    "bst_total_voltage_reached": _f("info", "BMS stopped: total voltage reached (BST)", _STATE),
    "bst_cell_voltage_reached": _f("info", "BMS stopped: cell voltage reached (BST)", _STATE),
    "bst_charger_stopped": _f("info", "BMS stopped: the charger stopped (BST)", _STATE),
    "bst_insulation": _f("critical", "insulation fault (BST)", _ISOLATION),
    "bst_output_connector_overtemperature": _f(
        "damaged", "output connector over-temperature (BST)", _ALARM
    ),
    "bst_bms_connector_overtemperature": _f(
        "damaged", "BMS component or output connector over-temperature (BST)", _ALARM
    ),
    "bst_charging_connector_fault": _f("damaged", "charging connector fault (BST)", _ALARM),
    "bst_pack_overtemperature": _f("critical", "battery pack over-temperature (BST)", _THERMAL),
    "bst_hv_relay_fault": _f("damaged", "high-voltage relay fault (BST)", _ALARM),
    "bst_detection_point_2_fault": _f("damaged", "detection point 2 voltage fault (BST)", _ALARM),
    "bst_other_fault": _f("damaged", "other fault (BST)", _ALARM),
    "bst_overcurrent": _f("damaged", "current above demand (BST)", _ALARM),
    "bst_voltage_abnormal": _f("damaged", "voltage abnormal (BST)", _VOLTAGE),
    "bem_crm_00_timeout": _f("info", "CRM (0x00) timeout (BEM)", _BEM),
    "bem_crm_aa_timeout": _f("info", "CRM (0xAA) timeout (BEM)", _BEM),
    "bem_cts_cml_timeout": _f("info", "CTS/CML timeout (BEM)", _BEM),
    "bem_cro_timeout": _f("info", "CRO timeout (BEM)", _BEM),
    "bem_ccs_timeout": _f("info", "CCS timeout (BEM)", _BEM),
    "bem_cst_timeout": _f("info", "CST timeout (BEM)", _BEM),
    "bem_csd_timeout": _f("info", "CSD timeout (BEM)", _BEM),
    "bem_other": _f("info", "other BEM error bits", _BEM),
}

# SunSpec 802 Evt1 and 803 StrEvt1 / 804 Evt1 bits (same names), lower case
SUNSPEC_EVENTS: dict[str, FaultMeaning] = {
    "communication_error": _f("damaged", "BMS communication error", _BMS),
    "over_temp_alarm": _f("critical", "over-temperature alarm", _THERMAL),
    "over_temp_warning": _f("damaged", "over-temperature warning on an idle pack", _THERMAL),
    "under_temp_alarm": _f("damaged", "under-temperature alarm", _ALARM),
    "under_temp_warning": _f("review", "under-temperature warning", _WARNING),
    "over_charge_current_alarm": _f("damaged", "over charge-current alarm", _ALARM),
    "over_charge_current_warning": _f("review", "over charge-current warning", _WARNING),
    "over_discharge_current_alarm": _f("damaged", "over discharge-current alarm", _ALARM),
    "over_discharge_current_warning": _f("review", "over discharge-current warning", _WARNING),
    "over_volt_alarm": _f("damaged", "over-voltage alarm", _VOLTAGE),
    "over_volt_warning": _f("review", "over-voltage warning", _WARNING),
    "under_volt_alarm": _f("damaged", "under-voltage alarm", _VOLTAGE),
    "under_volt_warning": _f("review", "under-voltage warning", _WARNING),
    "under_soc_min_alarm": _f("damaged", "state of charge below minimum alarm", _ALARM),
    "under_soc_min_warning": _f("review", "state of charge below minimum warning", _WARNING),
    "over_soc_max_alarm": _f("damaged", "state of charge above maximum alarm", _ALARM),
    "over_soc_max_warning": _f("review", "state of charge above maximum warning", _WARNING),
    "voltage_imbalance_warning": _f("review", "cell voltage imbalance warning", _WARNING),
    "temperature_imbalance_alarm": _f("critical", "temperature imbalance alarm", _THERMAL),
    "temperature_imbalance_warning": _f("damaged", "temperature imbalance warning", _THERMAL),
    "contactor_error": _f("damaged", "contactor error", _ALARM),
    "fan_error": _f("damaged", "fan error", _ALARM),
    "ground_fault": _f("critical", "ground fault", _ISOLATION),
    "open_door_error": _f("damaged", "enclosure door open", _ALARM),
    "current_imbalance_warning": _f("review", "current imbalance warning", _WARNING),
    "other_alarm": _f("damaged", "other alarm", _ALARM),
    "other_warning": _f("review", "other warning", _WARNING),
    "reserved_1": _f("review", "reserved event bit set (meaning unknown)", _WARNING),
    "reserved_2": _f("review", "reserved event bit set (meaning unknown)", _WARNING),
    "configuration_alarm": _f("damaged", "configuration alarm", _ALARM),
    "configuration_warning": _f("review", "configuration warning", _WARNING),
    # not Evt1 bits: 802 State = 99, vendor/reserved event registers, 803/804 ConFail
    "state_fault": _f("damaged", "battery State is FAULT (802 State = 99)", _BMS),
    "vendor_event": _f("review", "vendor or reserved event bits set (meaning unknown)", _WARNING),
    "button_pushed": _f("info", "string disconnected by its button", _STATE),
    "str_ground_fault": _f("critical", "string ground fault", _ISOLATION),
    "outside_voltage_range": _f("damaged", "string outside its voltage range", _VOLTAGE),
    "string_not_enabled": _f("info", "string not enabled", _STATE),
    "fuse_open": _f("damaged", "string fuse open", _ALARM),
    "contactor_failure": _f("damaged", "string contactor failure", _ALARM),
    "precharge_failure": _f("damaged", "string precharge failure", _ALARM),
    "string_fault": _f("damaged", "string fault", _ALARM),
}

# Tokens a profile may give its DBC fault signals ([dbc.faults] token = "signal"); the loader
# refuses a profile whose token is not in the vocabulary.
DBC_TOKENS: dict[str, FaultMeaning] = {
    "limp_request": _f("damaged", "BMS requests limp mode", _BMS),
    "bms_fault": _f("damaged", "BMS fault flag", _BMS),
    "isolation": _f("critical", "isolation fault", _ISOLATION),
    "thermal_event": _f("critical", "thermal event", _THERMAL),
    "gas": _f("critical", "gas sensor alarm in the pack", _GAS),
    "venting": _f("critical", "cell venting detected", _GAS),
    "cell_imbalance_alarm": _f("damaged", "cell imbalance alarm", _VOLTAGE),
}

# Derived by the agent itself (reading builder, triage)
DERIVED: dict[str, FaultMeaning] = {
    "cell_imbalance": _f("damaged", "cell spread above the profile limit", _VOLTAGE),
    "insulation_low": _f("critical", "insulation resistance below 100 ohm/V", _ISOLATION),
}

FAULTS: dict[str, FaultMeaning] = {
    **GBT27930,
    **GBT27930_STOP,
    **SUNSPEC_EVENTS,
    **DBC_TOKENS,
    **DERIVED,
}

# UDS DTCs, where a method reads them, are reported as "dtc:<3-byte hex>": a stored, confirmed
# DTC is an active defect report of the BMS.
DTC_PREFIX = "dtc:"
_DTC = _f("damaged", "diagnostic trouble code stored", _BMS)
UNKNOWN = _f("damaged", "fault name not in the vocabulary (treated as an active alarm)", _ALARM)

# Bench sensors and technician observations on the same scale. A vapour is graded the same
# whoever notices it: standards.md 6.1 calls a solvent odour damaged when residual and critical
# when gassing is active; at the bench neither a nose nor one sensor reading can tell the two
# apart, so a vapour present now counts as active (critical) until an expert says otherwise.
GAS_ALARM = _f("critical", "gas/VOC sensor alarm at the bench", _GAS)
OBSERVATIONS: dict[str, FaultMeaning] = {
    "smoke": _f("critical", "smoke", _THERMAL),
    "fire": _f("critical", "flame or fire", _THERMAL),
    "sparks": _f("critical", "sparks", _THERMAL),
    "heat": _f("critical", "rising temperature without load", _THERMAL),
    "gassing": _f("critical", "active gas release", _GAS),
    "hissing": _f("critical", "hissing (venting)", _GAS),
    "odour": _f("critical", "solvent odour (electrolyte vapour present)", _GAS),
    "swelling": _f("damaged", "swelling", "SP 376 note c"),
    "deformation": _f("damaged", "casing deformation", "SP 376 note c"),
    "damage": _f("damaged", "physical or mechanical damage", "SP 376"),
    "dent": _f("damaged", "dented casing", "SP 376 note c"),
    "discolouration": _f("damaged", "discolouration or scorch marks", "SP 376 note c"),
    "leak": _f("damaged", "electrolyte leak", "leaked or vented (SP 376 note a)"),
    "corrosion": _f("damaged", "corrosion", "SP 376"),
    "crash": _f("damaged", "known crash vehicle", "misuse (SP 376 note b)"),
    "flood": _f("damaged", "known flood damage", "misuse (SP 376 note b)"),
    "loose_wiring": _f("damaged", "loose wiring", "SP 376"),
    # the kiosk's "label missing" button (issue 16): identity rests on the BMS alone
    "label_missing": _f("review", "label missing or unreadable", _NO_LABEL),
}


def meaning(name: str) -> FaultMeaning:
    """What a decoder's fault name means; unknown names count as an active alarm."""
    found = FAULTS.get(name)
    if found is not None:
        return found
    if name.startswith(DTC_PREFIX):
        return _DTC
    return UNKNOWN


def is_known(name: str) -> bool:
    """True when the vocabulary has an entry (or a prefix rule) for ``name``."""
    return name in FAULTS or name.startswith(DTC_PREFIX)
