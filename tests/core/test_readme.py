"""README stays true: every command it lists exists, and the quick start scripts are there."""

from __future__ import annotations

import os
import re
from pathlib import Path

from edge_agent.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def test_quick_start_has_exactly_two_commands_and_they_exist() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["./scripts/demo", "./scripts/test"]
    for command in commands:
        assert os.access(ROOT / command, os.X_OK), command


def test_every_command_in_the_table_is_a_real_subcommand() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("## The `edge-agent` command", 1)[1].split("## ", 1)[0]
    listed = {m.group(1) for m in re.finditer(r"^\| `([a-z-]+)", table, re.M)}
    parser = build_parser()
    subcommands = next(a for a in parser._actions if a.dest == "command").choices  # type: ignore[attr-defined]
    assert listed, "no commands found in the README table"
    assert listed <= set(subcommands), listed - set(subcommands)
    for path in re.findall(r"`((?:docs|hardware|firmware)/[\w./-]+\.md)`", text):
        assert (ROOT / path).is_file(), path
