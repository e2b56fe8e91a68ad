"""schemas/ (JSON Schema, CDDL, examples) and edge_agent/model.py must describe the same event."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import cbor2
import jsonschema
import pytest

from edge_agent.dataform import _hints
from edge_agent.event_codec import EventFormatError, encode_event, event_from_plain, event_to_plain
from edge_agent.model import IdentificationEvent
from edge_agent.signing.events import verify_event
from edge_agent.signing.keys import load_public_key
from edge_agent.signing.trust import StaticKeys
from tests.conftest import require_real_part
from tests.support.signing import EXAMPLES, ROOT

SCHEMA = json.loads((ROOT / "schemas" / "event-v1.schema.json").read_text(encoding="utf-8"))
CDDL = (ROOT / "schemas" / "event-v1.cddl").read_text(encoding="utf-8")
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def test_there_are_at_least_three_examples() -> None:
    names = {p.stem for p in EXAMPLE_FILES}
    assert {"healthy-lfp", "damaged-mismatch", "bms-unreadable"} <= names


def test_schema_is_valid_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_example_validates_and_round_trips(path: Path) -> None:
    plain = json.loads(path.read_text(encoding="utf-8"))
    VALIDATOR.validate(plain)
    event = event_from_plain(plain)
    assert event_to_plain(event) == plain
    assert cbor2.loads(encode_event(event)) == plain


# --- JSON Schema <-> dataclasses ------------------------------------------------------------


def _deref(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    assert ref.startswith("#/$defs/"), ref
    return dict(root["$defs"][ref.split("/")[-1]])


def _check(tp: Any, node: dict[str, Any], where: str, meta: Any = None, root: Any = None) -> None:
    """Walk a type hint and its schema node together; fail on any disagreement."""
    root = SCHEMA if root is None else root
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            _check(args[0], node, where, meta, root=root)
            return
        want = {{str: "string", int: "integer", float: "number", bool: "boolean"}[a] for a in args}
        assert set(node["type"]) == want, where
        return
    if origin is typing.Literal:
        assert node["enum"] == list(typing.get_args(tp)), where
        return
    if origin is tuple:
        args = typing.get_args(tp)
        assert node["type"] == "array", where
        if len(args) == 2 and args[1] is Ellipsis:
            _check(args[0], node["items"], f"{where}[]", root=root)
        else:
            assert len(node["prefixItems"]) == len(args) and node["items"] is False, where
            for i, a in enumerate(args):
                _check(a, node["prefixItems"][i], f"{where}[{i}]", root=root)
        if meta and "min_len" in meta:
            assert (node.get("minItems"), node.get("maxItems")) == (
                meta["min_len"],
                meta["max_len"],
            ), where
        return
    if origin is dict:
        assert node["type"] == "object", where
        _check(typing.get_args(tp)[1], node["additionalProperties"], f"{where}{{}}", root=root)
        return
    if dataclasses.is_dataclass(tp):
        assert "$ref" in node or where == "", f"{where}: expected a $ref to {tp.__name__}"
        if "$ref" in node:
            assert node["$ref"] == f"#/$defs/{tp.__name__}", where
        obj = _deref(node, root)
        fields = dataclasses.fields(tp)
        assert obj["type"] == "object" and obj["additionalProperties"] is False, where
        assert set(obj["properties"]) == {f.name for f in fields}, f"{where}: properties differ"
        assert set(obj["required"]) == {f.name for f in fields if _required(f)}, (
            f"{where}: required differs"
        )
        hints = _hints(tp)
        for f in fields:
            _check(
                hints[f.name],
                obj["properties"][f.name],
                f"{where}.{f.name}".lstrip("."),
                f.metadata,
                root=root,
            )
        return
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    assert node["type"] == names[tp], f"{where}: {node['type']} != {names[tp]}"
    meta = meta or {}
    if "pattern" in meta:
        assert node["pattern"] == f"^{meta['pattern'].pattern}$", where
    else:
        assert "pattern" not in node, where
    assert node.get("minimum") == meta.get("min") and node.get("maximum") == meta.get("max"), where


def test_json_schema_matches_the_model() -> None:
    _check(IdentificationEvent, SCHEMA, "")
    used = set(re.findall(r'"#/\$defs/(\w+)"', json.dumps(SCHEMA)))
    assert used == set(SCHEMA["$defs"]), "unused or missing $defs"


def test_sync_check_notices_a_model_change() -> None:
    """The walker must fail when the schema lacks a field (guards against a vacuous check)."""
    broken = json.loads(json.dumps(SCHEMA))
    del broken["$defs"]["Clock"]["properties"]["state"]
    with pytest.raises(AssertionError, match="properties differ"):
        _check(IdentificationEvent, broken, "", root=broken)


# --- CDDL -----------------------------------------------------------------------------------


def _cddl_rules() -> dict[str, dict[str, bool]]:
    """Rule name -> {field: optional?} for every map rule in the CDDL file."""
    rules: dict[str, dict[str, bool]] = {}
    text = "\n".join(line.split(";")[0] for line in CDDL.splitlines())
    for name, body in re.findall(r"^(\w+) = \{\n(.*?)\n\}", text, flags=re.M | re.S):
        entries = re.findall(r"^\s+(\? )?(\w+):", body, flags=re.M)
        rules[name] = {field: bool(opt) for opt, field in entries}
    return rules


def _dataclasses(tp: Any, seen: dict[str, type]) -> dict[str, type]:
    for arg in typing.get_args(tp):
        _dataclasses(arg, seen)
    if dataclasses.is_dataclass(tp) and tp.__name__ not in seen:
        seen[tp.__name__] = tp  # type: ignore[assignment]
        for hint in _hints(tp).values():
            _dataclasses(hint, seen)
    return seen


def test_cddl_names_every_field() -> None:
    rules = _cddl_rules()
    classes = _dataclasses(IdentificationEvent, {})
    assert set(rules) == set(classes)
    assert next(iter(rules)) == "IdentificationEvent"  # the first rule is the root
    for name, cls in classes.items():
        fields = {f.name: not _required(f) for f in dataclasses.fields(cls)}
        assert rules[name] == fields, name


def _pycddl() -> Any:
    try:
        import pycddl
    except ImportError:
        require_real_part(False, "pycddl (CDDL validator)")
    return pycddl


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_examples_validate_against_the_cddl(path: Path) -> None:
    pycddl = _pycddl()
    event = event_from_plain(json.loads(path.read_text(encoding="utf-8")))
    pycddl.Schema(CDDL).validate_cbor(encode_event(event))


MUTATIONS = [
    ("seq", lambda p: p.__setitem__("seq", -1)),
    ("unknown key", lambda p: p.__setitem__("colour", "red")),
    ("status enum", lambda p: p["readings"]["weight"].__setitem__("status", "fine")),
    ("kid pattern", lambda p: p.__setitem__("kid", "ABC")),
    ("missing triage", lambda p: p.pop("triage")),
    ("version", lambda p: p.__setitem__("v", 2)),
    ("clock", lambda p: p["clock"].__setitem__("utc", "yesterday")),
    ("evidence size", lambda p: p["evidence"][0].__setitem__("size", -5)),
]


@pytest.mark.parametrize(("what", "mutate"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_schema_cddl_and_model_reject_the_same_mistakes(what: str, mutate: Any) -> None:
    plain = json.loads((EXAMPLES / "healthy-lfp.json").read_text(encoding="utf-8"))
    mutate(plain)
    assert not VALIDATOR.is_valid(plain), what
    with pytest.raises(EventFormatError):
        event_from_plain(plain)
    pycddl = _pycddl()
    with pytest.raises(pycddl.ValidationError):
        pycddl.Schema(CDDL).validate_cbor(cbor2.dumps(plain))


# --- signed forms ---------------------------------------------------------------------------


def test_sign_examples_script(tmp_path: Path) -> None:
    out = tmp_path / "signed"
    result = subprocess.run(
        [sys.executable, str(ROOT / "schemas" / "sign_examples.py"), "--out", str(out)],
        capture_output=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    keys = StaticKeys.of(load_public_key(out / "keys" / "station.pub.pem"))
    for path in EXAMPLE_FILES:
        verified = verify_event((out / f"{path.stem}.cose").read_bytes(), keys)
        expected = json.loads(path.read_text(encoding="utf-8")) | {"kid": verified.kid.hex()}
        assert event_to_plain(verified.event) == expected
