"""The Python example in docs/nodes.md runs as written (against the real firmware)."""

from __future__ import annotations

import asyncio
import re
import textwrap
from pathlib import Path
from typing import Any

from tests.support.nodes import require_micropython

DOC = Path(__file__).resolve().parents[2] / "docs" / "nodes.md"


def test_simulator_example_in_docs_runs() -> None:
    require_micropython()
    block = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[0]
    imports = "\n".join(x for x in block.splitlines() if x.startswith("from "))
    body = "\n".join(x for x in block.splitlines() if not x.startswith("from "))
    src = imports + "\n\nasync def example():\n" + textwrap.indent(body, "    ")
    src += "\n    return reading\n"
    ns: dict[str, Any] = {}
    exec(compile(src, str(DOC), "exec"), ns)
    reading = asyncio.run(asyncio.wait_for(ns["example"](), 60))
    assert reading.status == "ok" and reading.stable
    assert abs(reading.mass_kg - 312.5) <= 0.05
