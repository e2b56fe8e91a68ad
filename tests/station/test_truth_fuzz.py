"""Hypothesis: any decoded reading yields a valid, signed event whose verdict never rests on an
implausible or unavailable value (issue 14)."""

from __future__ import annotations

import math
from dataclasses import fields, replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.bms.can.reading import STATE_FIELDS, ReadingBuilder
from edge_agent.bms.chemistry import CHEMISTRIES
from edge_agent.bms.faults import FAULTS
from edge_agent.bms.plausibility import assess_reading
from edge_agent.bms.profile import ProfileLimits
from edge_agent.model import BmsIdentity, BmsReading, BmsState, Value
from edge_agent.station.reconcile import chemistry_of, reconcile
from edge_agent.station.settings import TriageSettings
from edge_agent.station.triage import SETTLING_CHECK, triage
from tests.station.truth_cases import GBT_CODE, identify_pure, readings_of

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-50.0, max_value=150.0),  # near the real ranges, so both sides show up
    st.integers(min_value=-(2**31), max_value=2**31),
)
NUMERIC_STATE = sorted(
    n for n in STATE_FIELDS if n not in {"faults", "cell_voltages", "temperatures"}
)
CHEMISTRY = st.sampled_from([*CHEMISTRIES, "unconfirmed:A", "garbage"])
FAULT_NAMES = st.lists(st.sampled_from([*FAULTS, "unknown_flag", "dtc:123456"]), max_size=3)
SETTINGS = TriageSettings()


@st.composite
def builder_readings(draw: st.DrawFn) -> BmsReading:
    """A reading as the CAN methods build it: arbitrary numbers through ReadingBuilder."""
    out = ReadingBuilder(profile="fuzz")
    out.methods.append("fuzz")
    for name in draw(st.lists(st.sampled_from(NUMERIC_STATE), unique=True)):
        out.put(name, draw(NUMBERS), f"fuzz:{name}")
    out.put("battery_type", draw(CHEMISTRY), "fuzz:type")
    for name in ("rated_capacity", "rated_voltage", "rated_energy"):
        if draw(st.booleans()):
            out.put(name, draw(NUMBERS), f"fuzz:{name}")
    out.put_cells(tuple(draw(st.lists(st.floats(allow_nan=True), max_size=8))), "fuzz:cells")
    out.put_temperatures(tuple(draw(st.lists(st.floats(allow_nan=True), max_size=4))))
    if draw(st.booleans()):
        out.put_unavailable("temperature_max", "0xFF", "fuzz:BSM", "byte 0xFF = not available")
    for token in draw(FAULT_NAMES):
        out.fault(token)
    return out.build(ProfileLimits(cell_voltage_v=(2.0, 4.4), temperature_c=(-30.0, 65.0)))


@st.composite
def raw_readings(draw: st.DrawFn) -> BmsReading:
    """A BmsReading made directly (as a backend outside the builder might): nothing marked."""
    state = {
        name: Value(value=draw(NUMBERS), unit="", method=f"raw:{name}")
        for name in draw(st.lists(st.sampled_from(NUMERIC_STATE), unique=True))
    }
    return BmsReading(
        status=draw(st.sampled_from(["ok", "partial", "failed"])),
        identity=BmsIdentity(
            battery_type=Value(value=draw(CHEMISTRY)),
            rated_energy=Value(value=draw(NUMBERS), unit="kWh"),
        ),
        state=BmsState(
            **state,  # type: ignore[arg-type]
            cell_voltages=tuple(draw(st.lists(st.floats(allow_nan=True), max_size=6))),
            faults=tuple(draw(FAULT_NAMES)),
        ),
    )


def _without_marked(reading: BmsReading) -> BmsReading:
    """The reading with every marked value removed: what triage may judge on."""

    def clean(obj: object) -> object:
        changes = {
            f.name: None
            for f in fields(obj)  # type: ignore[arg-type]
            if isinstance(getattr(obj, f.name), Value) and getattr(obj, f.name).quality
        }
        return replace(obj, **changes) if changes else obj  # type: ignore[type-var]

    return replace(reading, identity=clean(reading.identity), state=clean(reading.state))  # type: ignore[arg-type]


def _check(bms: BmsReading, label_type: str, observations: tuple[str, ...]) -> None:
    readings = readings_of(
        bms, code=GBT_CODE, mass_kg=300.0, label_fields={"battery_type": label_type}
    )
    event = identify_pure(readings, observations)  # valid, signed, verified, schema-checked
    marked = assess_reading(bms, chemistry_of(readings))
    clean = replace(readings, bms=_without_marked(marked))
    rec = reconcile(clean, manufacturers={"001": ("CATL",)})
    judged = triage(clean, rec.checks, observations, SETTINGS)
    full = event.triage
    assert full.transport_class == judged.transport_class, (full.reasons, judged.reasons)
    implausible = [
        f.name
        for f in fields(BmsState)
        if isinstance(getattr(marked.state, f.name), Value)
        and getattr(marked.state, f.name).quality == "implausible"
    ]
    if implausible and full.transport_class == "normal":
        assert full.disposition == "expert_review", full.reasons
    elif not implausible:
        assert full.disposition == judged.disposition, (full.reasons, judged.reasons)
    signed_marks = {
        f.name
        for f in fields(BmsState)
        if f.name in SETTLING_CHECK
        and isinstance(getattr(event.readings.bms.state, f.name), Value)
        and getattr(event.readings.bms.state, f.name).quality
    }
    assert set(full.unjudged or ()) == signed_marks  # the event shows what triage set aside
    for value in (*fields(BmsState),):
        v = getattr(event.readings.bms.state, value.name)
        if isinstance(v, Value) and isinstance(v.value, float):
            assert math.isfinite(v.value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(builder_readings(), CHEMISTRY, st.lists(st.sampled_from(["swelling", "odour"]), max_size=1))
def test_builder_readings_never_rest_on_implausible_values(
    bms: BmsReading, label_type: str, observations: list[str]
) -> None:
    _check(bms, label_type, tuple(observations))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_readings(), CHEMISTRY)
def test_unmarked_readings_are_marked_before_they_are_judged_or_signed(
    bms: BmsReading, label_type: str
) -> None:
    _check(bms, label_type, ())


def test_6500_percent_soh_is_never_a_reuse_candidate() -> None:
    bms = BmsReading(
        status="ok",
        identity=BmsIdentity(battery_type=Value(value="lfp")),
        state=BmsState(soh=Value(value=6500.0, unit="%", method="uds:0105")),
    )
    event = identify_pure(readings_of(bms, code=GBT_CODE, mass_kg=300.0))
    assert event.triage.disposition == "expert_review"
    assert any("SOH" in r or "soh" in r for r in event.triage.reasons)
    assert event.triage.unjudged == ("soh",)


def test_assessment_is_idempotent() -> None:
    bms = BmsReading(
        status="ok",
        state=BmsState(
            soh=Value(value=6500.0, unit="%"),
            temperature_max=Value(value=float("nan"), unit="degC"),
            cell_voltages=(3.3, float("nan")),
        ),
    )
    once = assess_reading(bms)
    assert assess_reading(once) == once
    assert once.status == "partial"
    assert once.state.temperature_max == Value(
        value="nan", unit="degC", quality="unavailable", note="not a number"
    )
    assert once.state.cell_voltages == (3.3,)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.integers(min_value=0, max_value=2**32 - 2),
    state=st.sampled_from([1, 2, 3, 4, 5, 6, 99, 1234]),
    soh=st.integers(min_value=0, max_value=65534),
    soc=st.integers(min_value=0, max_value=65534),
    con_fail=st.integers(min_value=0, max_value=12),
)
def test_any_sunspec_events_state_and_percentages(
    events: int, state: int, soh: int, soc: int, con_fail: int
) -> None:
    from edge_agent.bms.faults import is_known
    from tests.station.truth_cases import small_battery, sunspec_reading

    battery = small_battery(
        events=events, state=state, soh=soh / 10, soc=soc / 10, extra={804: {"ConFail": con_fail}}
    )
    bms = sunspec_reading(battery)
    assert all(is_known(name) for name in bms.state.faults), bms.state.faults
    assert ("state_fault" in bms.state.faults) == (state == 99)
    _check(bms, "lfp", ())


@st.composite
def gbt_frame_readings(draw: st.DrawFn) -> BmsReading:
    """A reading decoded from arbitrary GB/T 27930 payloads by the collector (as on the bus)."""
    import time

    from edge_agent.bms.can import gbt27930 as gbt
    from edge_agent.bms.can.gbt27930_session import GbtCollector
    from edge_agent.bms.can.j1939_tp import TpReceiver
    from edge_agent.bms.profile import load_profile

    profile = load_profile("gbt27930-generic")
    assert profile.gbt27930 is not None
    receiver = TpReceiver(address=gbt.CHARGER, send=None, clock=time.monotonic)
    c = GbtCollector(section=profile.gbt27930, receiver=receiver)
    for name, size in (("BRM", 49), ("BCP", 13), ("BCS", 9), ("BSM", 7), ("BST", 4), ("BEM", 4)):
        if draw(st.booleans()):
            c._message(gbt.PGN_BY_NAME[name], draw(st.binary(min_size=0, max_size=size)))
    if draw(st.booleans()):
        c._message(gbt.PGN_BY_NAME["BMV"], draw(st.binary(min_size=2, max_size=24)))
    if draw(st.booleans()):
        c._message(gbt.PGN_BY_NAME["BMT"], draw(st.binary(min_size=1, max_size=8)))
    out = ReadingBuilder(profile=profile.name)
    c.apply(out)
    out.methods.append("gbt27930")
    return out.build(profile.limits)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    gbt_frame_readings(), CHEMISTRY, st.lists(st.sampled_from(["swelling", "odour"]), max_size=1)
)
def test_any_gbt27930_frames_never_rest_on_implausible_values(
    bms: BmsReading, label_type: str, observations: list[str]
) -> None:
    from edge_agent.bms.faults import is_known

    assert all(is_known(name) for name in bms.state.faults), bms.state.faults
    _check(bms, label_type, tuple(observations))
