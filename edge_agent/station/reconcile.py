"""Cross-checks between label, BMS, weight and the pack profile; the reconciled identity.

A pack whose label and BMS disagree is flagged (``fail``), never guessed: the identity keeps
the label's code and records where every field came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from edge_agent.bms.plausibility import assess_reading, usable
from edge_agent.bms.profile import PackProfile
from edge_agent.model import (
    BmsReading,
    Check,
    CheckStatus,
    LabelCode,
    PackIdentity,
    Readings,
    Value,
    WeightReading,
)
from edge_agent.station import identity
from edge_agent.station.chemistry import energy_band, resolve, same_chemistry

PACK_KINDS = ("gbt34014", "gbt34014_cascade")
DATE_TOLERANCE_DAYS = 45  # cells/modules are often dated weeks before pack assembly
ENERGY_SLACK = 0.25  # beyond the band by up to 25 % -> warn, more -> fail


@dataclass(frozen=True, kw_only=True)
class Reconciliation:
    """The reconciled identity and the checks that led to it."""

    pack: PackIdentity
    checks: tuple[Check, ...]


def pack_label_code(codes: tuple[LabelCode, ...]) -> LabelCode | None:
    """The label's pack-level GB/T 34014 code (24-char first, then the cascade form), if any."""
    from edge_agent.station import identity

    return identity.pack_label_code(codes)


def passport_code(codes: tuple[LabelCode, ...]) -> LabelCode | None:
    """The label's EU battery-passport identifier, if any."""
    from edge_agent.station import identity

    return identity.passport_code(codes)


def _text(value: Value | None) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    return str(value.value).strip() or None


def _number(value: Value | None) -> float | None:
    """A number fit to judge on: None when absent, text, implausible or unavailable."""
    return usable(value)


def chemistry_of(readings: Readings) -> str | None:
    """The chemistry to judge with: a definite token beats an unconfirmed label letter."""
    label = pack_label_code(readings.label.codes)
    return resolve(label.fields.get("battery_type") if label else None,
                   _text(readings.bms.identity.battery_type))[0]  # fmt: skip


def rated_energy_kwh(bms: BmsReading) -> float | None:
    """Rated energy from the BMS, or rated capacity x rated voltage when only those exist."""
    energy = _number(bms.identity.rated_energy)
    if energy is not None:
        return energy
    capacity = _number(bms.identity.rated_capacity)
    voltage = _number(bms.identity.rated_voltage)
    if capacity is not None and voltage is not None and capacity > 0 and voltage > 0:
        return capacity * voltage / 1000.0
    return None


def reconcile(
    readings: Readings,
    *,
    profile: PackProfile | None = None,
    manufacturers: Mapping[str, tuple[str, ...]] | None = None,
) -> Reconciliation:
    """Run every cross-check and build the reconciled pack identity."""
    label = pack_label_code(readings.label.codes)
    passport = passport_code(readings.label.codes)
    chemistry = chemistry_of(readings)
    bms = assess_reading(readings.bms, chemistry)  # marked values never decide a check
    bms_ok = bms.status in ("ok", "partial")
    checks: list[Check] = []

    components = identity.component_codes(readings.label.codes, bms if bms_ok else None)
    if label is None:
        detail = (
            "no pack-level GB/T 34014 code on the label"
            + (" (passport identifier found)" if passport else "")
            + ("; " + "; ".join(readings.label.problems) if readings.label.problems else "")
        )
        checks.append(
            Check(name="label.code", status="warn" if passport else "fail", detail=detail)
        )
    else:
        checks.append(Check(name="label.code", status="pass", detail=f"{label.kind} {label.text}"))
    if readings.label.ocr_check == "fail":  # printed code differs from the barcode: no guess
        detail = next((p for p in readings.label.problems if p.startswith("OCR and barcode")), "")
        checks.append(Check(name="label.ocr_vs_barcode", status="fail", detail=detail))

    if not bms_ok:
        reason = "; ".join(bms.problems) or "no answer"
        checks.append(Check(name="bms.read", status="fail", detail=f"BMS not readable: {reason}"))
    else:
        checks.extend(_label_vs_bms(label, bms, manufacturers or {}))
        if profile is not None:
            checks.extend(_bms_vs_limits(bms, profile))
    checks.extend(_weight_vs_energy(readings.weight, bms, chemistry))
    if profile is not None and label is not None:
        checks.extend(_code_vs_profile(label, profile))
    checks.extend(identity.identity_checks(label, components))

    pack = identity.pack_identity(
        label,
        passport,
        bms if bms_ok else None,
        codes=readings.label.codes,
        manufacturers=manufacturers,
        rated_energy_kwh=rated_energy_kwh(bms) if bms_ok else None,
    )
    return Reconciliation(pack=pack, checks=tuple(checks))


def _label_vs_bms(
    label: LabelCode | None, bms: BmsReading, manufacturers: Mapping[str, tuple[str, ...]]
) -> list[Check]:
    if label is None:
        return [Check(name="label_vs_bms", status="skip", detail="no label code to compare")]
    out: list[Check] = []
    fields = label.fields
    ident = bms.identity

    bms_serial = _text(ident.serial)
    # only a GB/T 34014 pack code from the BMS is compared with the label's: a module or cell
    # code is a component code, and a maker's own 19- or 24-character serial (BYD's
    # "P030T020Z2109180001") is no code at all, so neither is a disagreement
    if bms_serial and identity.is_pack_code(bms_serial):
        status: CheckStatus = "pass" if bms_serial.upper() == label.text.upper() else "fail"
        out.append(
            Check(
                name="label_vs_bms.code",
                status=status,
                detail=f"label {label.text}, BMS {bms_serial}",
            )
        )

    maker_code = fields.get("manufacturer")
    bms_maker = _text(ident.manufacturer)
    if maker_code and bms_maker:
        names = manufacturers.get(maker_code)
        if names is None:
            out.append(
                Check(
                    name="label_vs_bms.manufacturer",
                    status="skip",
                    detail=f"no name known for manufacturer code {maker_code} (BMS says {bms_maker})",
                )
            )
        else:
            said = bms_maker.upper()
            match = any(n.upper().startswith(said) or said.startswith(n.upper()) for n in names)
            out.append(
                Check(
                    name="label_vs_bms.manufacturer",
                    status="pass" if match else "fail",
                    detail=f"label code {maker_code} ({'/'.join(names)}), BMS says {bms_maker}",
                )
            )

    label_chem = fields.get("battery_type")
    bms_chem = _text(ident.battery_type)
    if label_chem and bms_chem:
        same = same_chemistry(label_chem, bms_chem)
        out.append(
            Check(
                name="label_vs_bms.battery_type",
                status="skip" if same is None else ("pass" if same else "fail"),
                detail=f"label {label_chem}, BMS {bms_chem}",
            )
        )

    label_date = _parse_date(fields.get("production_date"))
    bms_date = _parse_date(_text(ident.production_date))
    if label_date and bms_date:
        days = abs((label_date - bms_date).days)
        date_status: CheckStatus
        if days == 0:
            date_status = "pass"
        elif days <= DATE_TOLERANCE_DAYS:
            date_status = "warn"
        else:
            date_status = "fail"
        out.append(
            Check(
                name="label_vs_bms.production_date",
                status=date_status,
                detail=f"label {label_date.isoformat()}, BMS {bms_date.isoformat()} ({days} days apart)",
            )
        )
    if not out:
        out.append(Check(name="label_vs_bms", status="skip", detail="no field carried by both"))
    return out


def _parse_date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _weight_vs_energy(weight: WeightReading, bms: BmsReading, chemistry: str | None) -> list[Check]:
    energy = rated_energy_kwh(bms) if bms.status in ("ok", "partial") else None
    if weight.mass_kg is None or weight.status == "failed":
        return [Check(name="weight_vs_energy", status="skip", detail="no stable weight")]
    if energy is None:
        return [Check(name="weight_vs_energy", status="skip", detail="rated energy unknown")]
    if weight.mass_kg <= 0:
        return [
            Check(
                name="weight_vs_energy",
                status="fail",
                detail=f"implausible mass {weight.mass_kg} kg",
            )
        ]
    specific = energy * 1000.0 / weight.mass_kg
    lo, hi = energy_band(chemistry)
    detail = (
        f"{energy:.1f} kWh / {weight.mass_kg:.1f} kg = {specific:.0f} Wh/kg "
        f"(plausible for {chemistry or 'unknown chemistry'}: {lo:.0f}-{hi:.0f})"
    )
    status: CheckStatus
    if lo <= specific <= hi:
        status = "pass"
    elif lo * (1 - ENERGY_SLACK) <= specific <= hi * (1 + ENERGY_SLACK):
        status = "warn"
    else:
        status = "fail"
    return [Check(name="weight_vs_energy", status=status, detail=detail)]


def _bms_vs_limits(bms: BmsReading, profile: PackProfile) -> list[Check]:
    limits = profile.limits
    state = bms.state
    problems: list[str] = []

    def outside(
        name: str, value: float | None, band: tuple[float, float] | None, unit: str
    ) -> None:
        if value is not None and band is not None and not band[0] <= value <= band[1]:
            problems.append(f"{name} {value:g} {unit} outside {band[0]:g}..{band[1]:g}")

    outside("pack voltage", _number(state.pack_voltage), limits.pack_voltage_v, "V")
    outside("min cell voltage", _number(state.cell_voltage_min), limits.cell_voltage_v, "V")
    outside("max cell voltage", _number(state.cell_voltage_max), limits.cell_voltage_v, "V")
    outside("min temperature", _number(state.temperature_min), limits.temperature_c, "°C")
    outside("max temperature", _number(state.temperature_max), limits.temperature_c, "°C")
    outside("SOC", _number(state.soc), limits.soc_pct, "%")
    spread = _number(state.cell_voltage_spread)
    if (
        spread is not None
        and limits.max_cell_spread_v is not None
        and spread > limits.max_cell_spread_v
    ):
        problems.append(
            f"cell spread {spread * 1000:.0f} mV above {limits.max_cell_spread_v * 1000:.0f} mV"
        )
    if problems:
        return [Check(name="bms_vs_profile_limits", status="fail", detail="; ".join(problems))]
    return [
        Check(name="bms_vs_profile_limits", status="pass", detail=f"within {profile.name} limits")
    ]


def _code_vs_profile(label: LabelCode, profile: PackProfile) -> list[Check]:
    out: list[Check] = []
    maker = label.fields.get("manufacturer")
    if profile.manufacturer_codes and maker:
        ok = maker in profile.manufacturer_codes
        out.append(
            Check(
                name="code_vs_profile.manufacturer",
                status="pass" if ok else "fail",
                detail=f"code {maker}, profile {profile.name} expects {', '.join(profile.manufacturer_codes)}",
            )
        )
    chem = label.fields.get("battery_type")
    if profile.battery_type and chem:
        same = same_chemistry(chem, profile.battery_type)
        out.append(
            Check(
                name="code_vs_profile.battery_type",
                status="skip" if same is None else ("pass" if same else "fail"),
                detail=f"code {chem}, profile {profile.name} expects {profile.battery_type}",
            )
        )
    return out
