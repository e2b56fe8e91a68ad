"""docs/modbus.md stays true: its commands parse, its profile example loads, its API runs."""

from __future__ import annotations

import re
import shlex
import textwrap
from pathlib import Path

import pytest

from edge_agent.bms.profile import load_profile_file
from edge_agent.cli import build_parser
from tests.support.bms_modbus import run

DOC = Path(__file__).resolve().parents[3] / "docs" / "modbus.md"


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), re.S)


def test_every_command_in_the_guide_parses() -> None:
    commands = [line for block in _blocks("console") for line in block.splitlines() if line.strip()]
    assert len(commands) >= 6
    parser = build_parser()
    for line in commands:
        argv = shlex.split(line)
        assert argv[0] == "edge-agent"
        args = parser.parse_args(argv[1:])
        assert callable(args.func), line


def test_profile_example_loads(tmp_path: Path) -> None:
    (example,) = _blocks("toml")
    path = tmp_path / "my-bmu.toml"
    path.write_text(example)
    profile = load_profile_file(path)
    assert profile.regmap is not None
    assert profile.regmap.registers["current"].word_order == "little"
    assert profile.regmap.registers["cells"].words == 16


def test_in_process_example_runs() -> None:
    (example,) = _blocks("python")
    imports, _, body = example.partition("\n\n")
    namespace: dict[str, object] = {}
    source = (
        imports
        + "\n\nasync def example():\n"
        + textwrap.indent(body, "    ")
        + "    return reading\n"
    )
    exec(compile(source, str(DOC), "exec"), namespace)  # the guide's own code
    reading = run(namespace["example"]())  # type: ignore[operator]
    assert reading.status == "ok"
    assert reading.identity.device.serial.value == "BMS-0001"  # type: ignore[union-attr]


@pytest.mark.parametrize("flag", ["--fault busy@40070x2", "--fault disconnect+20"])
def test_fault_specs_in_the_guide_are_valid(flag: str) -> None:
    from edge_agent.commands.sim.bms_modbus import parse_fault

    fault = parse_fault(flag.split()[1])
    assert fault.kind in {"busy", "disconnect"}
