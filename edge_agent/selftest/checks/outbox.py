"""Outbox rows check: WARN while events the gateway rejected (or the broker refused) are held."""

from __future__ import annotations

from edge_agent.selftest.checks.disk import outbox_path
from edge_agent.selftest.model import CheckContext, Outcome, passed, warned
from edge_agent.uplink.outbox import Outbox


def check_outbox_rows(ctx: CheckContext) -> Outcome:
    """No held rejected or refused rows; otherwise a warning naming how many and why."""
    path = outbox_path(ctx)
    if not path.exists():
        return passed(f"no outbox yet at {path}")
    with Outbox(path, ctx.config.uplink.outbox) as outbox:
        states = outbox.state_counts()
        held = [r for r in outbox.rows(limit=10_000) if r.state in ("rejected", "refused")]
    if held:
        reasons = sorted({r.reason or r.last_error or "?" for r in held})
        return warned(
            f"{states['rejected']} rejected and {states['refused']} refused rows held "
            f"(reasons: {', '.join(reasons)[:200]})",
            "see `edge-agent outbox list`; fix the cause, then `edge-agent outbox retry ID` "
            "(or --all)",
        )
    pending = states["stored"] + states["sent"] + states["accepted"]
    return passed(f"{pending} rows on their way, none rejected")
