"""`edge-agent selftest`: check every configured bus, sensor and service, with a next step per line.

Public API::

    from edge_agent.selftest import CheckContext, register_check, run_selftest, passed, failed
    register_check("nodes", my_hello_check, title="Nodes say hello",
                   required=lambda cfg: bool(cfg.nodes.ports), replace=True)
    set_frame_gate(my_gate)          # (frame, LabelSettings) -> GateResult
    report = run_selftest(CheckContext(config=load_config(path)))
    report.exit_code                 # 0 when every required check passed
"""

from __future__ import annotations

from edge_agent.selftest.builtin import register_builtin_checks
from edge_agent.selftest.frame_gate import (
    GateResult,
    basic_frame_gate,
    current_frame_gate,
    set_frame_gate,
)
from edge_agent.selftest.model import (
    CheckContext,
    CheckResult,
    Outcome,
    Report,
    Verdict,
    failed,
    passed,
    skipped,
    warned,
)
from edge_agent.selftest.registry import (
    CheckSpec,
    always,
    get_check,
    never,
    register_check,
    registered_checks,
    unregister_check,
)
from edge_agent.selftest.render import render_json, render_table
from edge_agent.selftest.runner import run_selftest

register_builtin_checks()

__all__ = [
    "CheckContext",
    "CheckResult",
    "CheckSpec",
    "GateResult",
    "Outcome",
    "Report",
    "Verdict",
    "always",
    "basic_frame_gate",
    "current_frame_gate",
    "failed",
    "get_check",
    "never",
    "passed",
    "register_builtin_checks",
    "register_check",
    "registered_checks",
    "render_json",
    "render_table",
    "run_selftest",
    "set_frame_gate",
    "skipped",
    "unregister_check",
    "warned",
]
