"""`edge-agent selftest`: check every configured bus, sensor and service, with a next step per line.

Public API::

    from edge_agent.selftest import CheckContext, register_check, run_selftest, passed, failed
    register_check("nodes", my_hello_check, title="Nodes say hello",
                   required=lambda cfg: bool(cfg.nodes.ports), replace=True)
    report = run_selftest(CheckContext(config=agent_config))  # any SelftestConfig
    report.exit_code                 # 0 when every required check passed

The built-in checks live in ``selftest.checks``, one module per part.
"""

from __future__ import annotations

from edge_agent.selftest.builtin import register_builtin_checks
from edge_agent.selftest.model import (
    CheckContext,
    CheckResult,
    Outcome,
    Report,
    SelftestConfig,
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
    "Outcome",
    "Report",
    "SelftestConfig",
    "Verdict",
    "always",
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
    "skipped",
    "unregister_check",
    "warned",
]
