"""Run the registered checks concurrently, each with its own timeout, and collect a report."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence

from edge_agent.errors import ConfigError
from edge_agent.selftest.model import CheckContext, CheckResult, Outcome, Report, Verdict
from edge_agent.selftest.registry import CheckSpec, registered_checks

log = logging.getLogger("edge_agent.selftest")


class _Slot:
    """Where a check thread leaves its outcome."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.outcomes: list[Outcome] = []
        self.elapsed_s = 0.0


def _run_one(spec: CheckSpec, ctx: CheckContext, slot: _Slot) -> None:
    start = time.monotonic()
    try:
        got = spec.func(ctx)
        slot.outcomes = [got] if isinstance(got, Outcome) else list(got)
    except Exception as exc:  # a buggy or surprised check must not take the others down
        log.exception("self-test check %s raised", spec.name)
        slot.outcomes = [
            Outcome(
                verdict=Verdict.FAIL,
                detail=f"check crashed: {type(exc).__name__}: {exc}",
                next_step="run with --log-level debug and report the traceback",
            )
        ]
    slot.elapsed_s = time.monotonic() - start
    slot.done.set()


def select_checks(only: Iterable[str] | None = None) -> list[CheckSpec]:
    """Registered checks, optionally restricted by name; ConfigError names unknown ones."""
    specs = registered_checks()
    if not only:
        return specs
    wanted = list(only)
    known = {s.name for s in specs}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ConfigError(
            f"unknown self-test check(s) {unknown}; known: {sorted(known)}", key_path="--only"
        )
    return [s for s in specs if s.name in wanted]


def run_selftest(
    ctx: CheckContext,
    *,
    only: Sequence[str] | None = None,
    timeout_s: float | None = None,
) -> Report:
    """Start every check in its own daemon thread and wait for each up to its timeout."""
    specs = select_checks(only)
    slots: list[tuple[CheckSpec, _Slot, float]] = []
    start = time.monotonic()
    for spec in specs:
        slot = _Slot()
        limit = timeout_s if timeout_s is not None else spec.timeout_s
        # Daemon threads: a check hung in a driver call must not keep the process alive.
        thread = threading.Thread(
            target=_run_one,
            args=(spec, ctx, slot),
            name=f"edge-agent-selftest-{spec.name}",
            daemon=True,
        )
        thread.start()
        slots.append((spec, slot, limit))
    results: list[CheckResult] = []
    for spec, slot, limit in slots:
        remaining = start + limit - time.monotonic()
        required = spec.required(ctx.config)
        if not slot.done.wait(max(remaining, 0.0)):
            log.warning("self-test check %s timed out after %.1f s", spec.name, limit)
            outcomes = [
                Outcome(
                    verdict=Verdict.FAIL,
                    detail=f"no answer within {limit:g} s",
                    next_step="the part or its driver hangs: check cabling and power, then rerun",
                )
            ]
            elapsed = limit
        else:
            outcomes, elapsed = slot.outcomes, slot.elapsed_s
        for outcome in outcomes:
            results.append(
                CheckResult(
                    name=f"{spec.name}.{outcome.line}" if outcome.line else spec.name,
                    title=f"{spec.title} ({outcome.line})" if outcome.line else spec.title,
                    verdict=outcome.verdict,
                    required=required if outcome.required is None else outcome.required,
                    detail=outcome.detail,
                    next_step=outcome.next_step,
                    elapsed_s=elapsed,
                )
            )
    for r in results:
        log.debug("selftest %s %s: %s", r.name, r.verdict.value, r.detail)
    return Report(results=tuple(results))
