"""Print a self-test report as a rich table or as JSON."""

from __future__ import annotations

import json
from typing import TextIO

from rich.console import Console
from rich.table import Table

from edge_agent.selftest.model import Report, Verdict

_STYLE = {
    Verdict.PASS: "green",
    Verdict.WARN: "yellow",
    Verdict.FAIL: "bold red",
    Verdict.SKIP: "dim",
}


def render_json(report: Report) -> str:
    """The report as one JSON document."""
    return json.dumps(report.as_plain(), indent=2, sort_keys=False)


def render_table(report: Report, stream: TextIO, *, width: int | None = None) -> None:
    """The report as a table with a verdict and next step per line, then a summary."""
    console = Console(file=stream, width=width or 160, highlight=False, soft_wrap=False)
    table = Table(title="edge-agent self-test", show_lines=False)
    table.add_column("check", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("req", no_wrap=True)
    table.add_column("detail")
    table.add_column("next step")
    for r in report.results:
        table.add_row(
            r.title,
            f"[{_STYLE[r.verdict]}]{r.verdict.value}[/]",
            "yes" if r.required else "no",
            r.detail,
            r.next_step or "-",
        )
    console.print(table)
    blocking = [r.name for r in report.results if r.blocks]
    if blocking:
        console.print(f"[bold red]FAILED[/]: required check(s) failed: {', '.join(blocking)}")
    else:
        console.print("[green]OK[/]: every required check passed")
