"""A BMS that only reports the lithium-ion family (SunSpec 802) agrees with a label's LFP/NCM."""

from __future__ import annotations

from dataclasses import replace

import pytest

from edge_agent.station.chemistry import same_chemistry
from edge_agent.station.reconcile import reconcile
from tests.support.station import gbt, healthy_readings

MAKERS = {"001": ("CATL",)}


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("lfp", "lithium_ion", True),
        ("lithium_ion", "ncm", True),
        ("lithium_ion", "lithium_ion", True),
        ("lead_acid", "lithium_ion", False),
        ("lithium_ion", "nimh", False),
        ("lfp", "ncm", False),
        ("lfp", "lfp", True),
        ("other", "lithium_ion", None),
    ],
)
def test_same_chemistry_family(a: str, b: str, expected: bool | None) -> None:
    assert same_chemistry(a, b) is expected


def test_sunspec_family_token_does_not_fail_the_label_check() -> None:
    readings = healthy_readings()
    bms = replace(
        readings.bms, identity=replace(readings.bms.identity, battery_type=gbt("lithium_ion"))
    )
    checks = {c.name: c for c in reconcile(replace(readings, bms=bms), manufacturers=MAKERS).checks}
    assert checks["label_vs_bms.battery_type"].status == "pass"
    assert checks["label_vs_bms.battery_type"].detail == "label lfp, BMS lithium_ion"
    lead = replace(readings.bms, identity=replace(bms.identity, battery_type=gbt("lead_acid")))
    checks = {
        c.name: c for c in reconcile(replace(readings, bms=lead), manufacturers=MAKERS).checks
    }
    assert checks["label_vs_bms.battery_type"].status == "fail"
