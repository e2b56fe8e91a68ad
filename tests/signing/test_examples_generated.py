"""schemas/examples/*.json are what the code makes (schemas/make_examples.py), not hand-written."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from types import ModuleType

from tests.support.signing import EXAMPLES, ROOT


def _make_examples() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_examples", ROOT / "schemas" / "make_examples.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_is_regenerated_unchanged() -> None:
    made = _make_examples().build_examples()
    on_disk = {p.stem for p in EXAMPLES.glob("*.json")}
    assert on_disk == set(made), "an example without a generator, or a missing file"
    for name, plain in made.items():
        stored = json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))
        assert stored == plain, f"{name}.json is stale: run python schemas/make_examples.py"


def test_examples_show_what_the_code_decides() -> None:
    made = _make_examples().build_examples()
    healthy, damaged, dead = made["healthy-lfp"], made["damaged-mismatch"], made["bms-unreadable"]
    assert (healthy["triage"]["transport_class"], healthy["triage"]["disposition"]) == (
        "normal",
        "reuse_candidate",
    )
    assert healthy["readings"]["bms"]["state"]["soh"]["method"].startswith("sunspec:")
    assert damaged["pack"]["component_codes"][0]["product_level"] == "module"
    assert damaged["pack"]["pack_code"][3] == "P"
    assert damaged["intake"]["special_provision"] == "SP376"
    assert dead["triage"]["transport_class"] == "undiagnosable"
    assert "serial" not in dead["pack"]  # the label's daily sequence is not a serial


def test_check_mode_of_the_script() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "schemas" / "make_examples.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
