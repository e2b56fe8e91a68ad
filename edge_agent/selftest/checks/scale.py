"""Scale check: the scale node reports a stable weight near zero with nothing docked.

It reads the weight taken by the nodes check's probe (one pass over the ports per run).
"""

from __future__ import annotations

from edge_agent.model import WeightReading
from edge_agent.selftest.checks.nodes import probe_nodes
from edge_agent.selftest.model import (
    CheckContext,
    Outcome,
    SelftestConfig,
    failed,
    passed,
    skipped,
    warned,
)

TARE_STEP = "remove the load and tare: edge-agent node tare"


def scale_outcome(reading: WeightReading, config: SelftestConfig) -> Outcome:
    """Judge one weight reading taken with nothing docked."""
    if reading.status == "failed" or reading.mass_kg is None:
        why = "; ".join(reading.problems) or "no weight"
        return failed(
            f"scale gives no usable weight: {why}",
            "check the load cell wiring to the HX711/NAU7802 board, then `edge-agent node monitor`",
        )
    kg = reading.mass_kg
    division = reading.division_kg or 0.0
    tolerance = max(2 * division, 0.02)
    shown = f"{kg:.3f} kg (e = {division * 1000:g} g)"
    if not reading.stable:
        return warned(
            f"not stable: {shown}; {'; '.join(reading.problems)}",
            "make sure nothing touches the platform and it stands level on a firm floor; rerun",
        )
    if abs(kg) > config.station.dock_weight_threshold_kg:
        # above the dock threshold the station would start identifying an empty bench
        return failed(f"{shown} with nothing docked", TARE_STEP)
    if abs(kg) > tolerance:
        return warned(f"{shown} with nothing docked (more than 2 e off zero)", TARE_STEP)
    if "scale not calibrated" in reading.problems:
        return warned(
            f"stable at {shown} but not calibrated",
            "calibrate: edge-agent node calibrate --zero, then --span KG with a test weight",
        )
    return passed(f"stable at {shown}")


def check_scale(ctx: CheckContext) -> Outcome:
    """The scale node reports a stable weight near zero with nothing docked."""
    if not ctx.config.nodes.ports:
        return skipped("no nodes configured")
    probe = probe_nodes(ctx)
    if probe.weight is None:
        if not probe.hellos:
            return failed("no node answered, so no scale", "fix the Nodes line first")
        return failed(
            "no node reports the scale role",
            "add the scale node's port to nodes.ports (`edge-agent node list` shows roles)",
        )
    outcome = scale_outcome(probe.weight, ctx.config)
    return Outcome(
        verdict=outcome.verdict,
        detail=f"{probe.scale_port}: {outcome.detail}",
        next_step=outcome.next_step,
    )
