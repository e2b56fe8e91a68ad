"""dataform: every conversion rule and error message, checked against the previous implementation.

The previous type-walking implementation lives on in bench/bench_dataform.py as
``baseline_to_plain`` / ``baseline_from_plain``; each rule below runs on both and the fuzz tests
compare both on random input, so results, error types and messages stay byte-for-byte the same.
"""

from __future__ import annotations

import copy
import enum
import importlib.util
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.config import AgentConfig
from edge_agent.dataform import DataFormError, bounded, from_plain, length, pattern, to_plain
from edge_agent.errors import ConfigError
from edge_agent.model import IdentificationEvent

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "schemas" / "examples").glob("*.json"))


def _load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_dataform", ROOT / "bench" / "bench_dataform.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_dataform"] = module  # dataclass machinery looks the module up
    spec.loader.exec_module(module)
    return module


BENCH = _load_bench()
BASE_FROM: Callable[..., Any] = BENCH.baseline_from_plain
BASE_TO: Callable[[Any], Any] = BENCH.baseline_to_plain


class Color(enum.Enum):
    """An enum field."""

    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True, kw_only=True)
class Inner:
    """A nested dataclass."""

    n: int = bounded(0, 10, default=0)


@dataclass(frozen=True, kw_only=True)
class Checked:
    """A dataclass whose own check fails with a plain ValueError."""

    lo: int = 0
    hi: int = 0

    def __post_init__(self) -> None:
        if self.lo > self.hi:
            raise ValueError(f"lo {self.lo} above hi {self.hi}")


@dataclass(frozen=True, kw_only=True)
class Sample:
    """One field of every supported kind."""

    req: str
    count: int = bounded(1, 65535, default=1)
    low: int = bounded(0, None, default=0)
    high: float = bounded(None, 2.5, default=0.0)
    ratio: float = bounded(0.05, 600, default=1.0)
    name: str = pattern(r"[a-z]+", default="abc")
    code: str = length(2, 4, default="ab")
    blob: bytes = length(1, None, default=b"x")
    flag: bool = False
    mode: Literal["auto", "5", "3.1.1"] = "auto"
    color: Color = Color.RED
    value: str | int | float | bool = ""
    maybe: float | None = None
    items: tuple[float, ...] = ()
    words: tuple[str, ...] = length(0, 2, default=())
    point: tuple[int, int] = (0, 0)
    table: dict[str, int] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)
    inners: tuple[Inner, ...] = ()
    checked: Checked = field(default_factory=Checked)
    where: Path = Path(".")
    extra: Any = None
    when: complex = 0j  # no plain form: unsupported


def _both(cls: Any, data: Any, **kw: Any) -> tuple[Any, Any]:
    """Outcome of the new and the baseline from_plain: the value or (type, text, key path)."""

    def run(fn: Callable[..., Any]) -> Any:
        try:
            return ("ok", fn(cls, data, **kw))
        except Exception as exc:  # comparing whatever either side raises
            return ("error", type(exc), str(exc), getattr(exc, "key_path", None))

    return run(from_plain), run(BASE_FROM)


def _error(data: dict[str, Any], **kw: Any) -> str:
    new, old = _both(Sample, {"req": "r", **data}, **kw)
    assert new == old
    assert new[0] == "error" and new[1] is DataFormError, new
    return str(new[2])


# --- to_plain -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Single:
    """attrgetter with one name returns a bare value: make sure that is handled."""

    only: tuple[int, ...]


@dataclass(frozen=True)
class Empty:
    """No fields at all."""


@dataclass
class Late:
    """A field outside __init__ is still part of the plain form."""

    a: int
    b: str = field(init=False, default="set later")


class Mode(enum.IntEnum):
    """An int enum: to_plain gives its value, not the enum."""

    ONE = 1


def test_to_plain_rules() -> None:
    sample = Sample(req="r", items=(1.5, 2.0), point=(3, 4), color=Color.BLUE, where=Path("/x"))
    plain = to_plain(sample)
    assert plain == BASE_TO(sample)
    assert "maybe" not in plain and "extra" not in plain  # None fields are dropped
    assert plain["items"] == [1.5, 2.0] and type(plain["items"]) is list
    assert plain["point"] == [3, 4] and plain["color"] == "blue" and plain["where"] == "/x"
    assert plain["inner"] == {"n": 0} and plain["blob"] == b"x" and plain["when"] == 0j
    nested = ((1, 2), [None, Mode.ONE], {1: Path("/p"), "k": (Color.RED,)}, Inner(n=2))
    assert to_plain(nested) == [[1, 2], [None, 1], {"1": "/p", "k": ["red"]}, {"n": 2}]
    assert to_plain(nested) == BASE_TO(nested)
    assert type(to_plain(nested)[1][1]) is int
    assert to_plain(Single(only=(1,))) == {"only": [1]} == BASE_TO(Single(only=(1,)))
    assert to_plain(Empty()) == {} and to_plain(Late(a=1)) == {"a": 1, "b": "set later"}
    assert to_plain(Sample) is Sample  # a class is not an instance: unchanged
    assert to_plain(None) is None and to_plain("text") == "text"


def test_generated_code_handles_any_field_name() -> None:
    odd = make_dataclass("Odd", [("__x", int), ("in_", "str | None", field(default=None))])
    obj = odd(**{"__x": 1})
    assert to_plain(obj) == {"__x": 1} == BASE_TO(obj)
    assert from_plain(odd, {"__x": 2, "in_": "t"}) == odd(**{"__x": 2, "in_": "t"})
    new, old = _both(odd, {"in_": "t"})
    assert new == old and new[2] == "__x: is required"


@pytest.mark.parametrize("file", EXAMPLES, ids=lambda p: p.stem)
def test_examples_round_trip(file: Path) -> None:
    plain = json.loads(file.read_text(encoding="utf-8"))
    event = from_plain(IdentificationEvent, plain)
    assert to_plain(event) == plain
    assert event == BASE_FROM(IdentificationEvent, plain)


def test_config_round_trip() -> None:
    plain = to_plain(AgentConfig())
    assert plain == BASE_TO(AgentConfig())
    assert from_plain(AgentConfig, plain) == AgentConfig()


# --- from_plain: values ---------------------------------------------------------------------


def test_from_plain_converts_every_kind() -> None:
    data = {
        "req": "r",
        "items": [1, 2.5],
        "words": ["a", "b"],
        "point": [1, 2],
        "table": {"a": 1},
        "inner": {"n": 3},
        "inners": [{"n": 1}, {}],
        "color": "blue",
        "value": 3,
        "maybe": 2,
        "where": "~/x",
        "extra": {"any": [1]},
        "mode": "3.1.1",
    }
    new, old = _both(Sample, data)
    assert new == old
    got = new[1]
    assert got.items == (1.0, 2.5) and all(type(x) is float for x in got.items)
    assert got.words == ("a", "b") and got.point == (1, 2) and got.table == {"a": 1}
    assert got.inner == Inner(n=3) and got.inners == (Inner(n=1), Inner())
    assert got.color is Color.BLUE and got.value == 3 and type(got.value) is int
    assert got.maybe == 2.0 and type(got.maybe) is float
    assert got.where == Path.home() / "x" and got.extra == {"any": [1]} and got.mode == "3.1.1"
    for value in ("t", 7, 2.5, True, False):  # the union keeps the type it was given
        out = from_plain(Sample, {"req": "r", "value": value}).value
        assert out == value and type(out) is type(value)
    assert from_plain(Sample, {"req": "r", "maybe": None}).maybe is None
    big = {"req": "r", "items": [1e308, 1e308]}  # finite items whose sum is not
    assert from_plain(Sample, big).items == (1e308, 1e308) == BASE_FROM(Sample, big).items


ERRORS = [
    ({"count": 70000}, "count: must be 1..65535, got 70000"),
    ({"count": "1883"}, "count: must be an integer, got '1883'"),
    ({"count": True}, "count: must be an integer, got True"),
    ({"count": 1.0}, "count: must be an integer, got 1.0"),
    ({"low": -1}, "low: must be >= 0, got -1"),
    ({"high": 3}, "high: must be <= 2.5, got 3"),
    ({"ratio": 0}, "ratio: must be 0.05..600, got 0"),
    ({"ratio": 600.5}, "ratio: must be 0.05..600, got 600.5"),
    ({"ratio": "x"}, "ratio: must be a number, got 'x'"),
    ({"ratio": False}, "ratio: must be a number, got False"),
    ({"ratio": math.nan}, "ratio: must be a finite number, got nan"),
    ({"ratio": -math.inf}, "ratio: must be a finite number, got -inf"),
    ({"name": "A"}, "name: must match [a-z]+, got 'A'"),
    ({"name": 5}, "name: must be text, got 5"),
    ({"name": "X" * 100}, "name: must match [a-z]+, got '" + "X" * 56 + "..."),
    ({"code": "a"}, "code: length must be 2..4, got 1"),
    ({"blob": b""}, "blob: length must be at least 1, got 0"),
    ({"blob": "x"}, "blob: must be a byte string, got 'x'"),
    ({"flag": 1}, "flag: must be true or false, got 1"),
    ({"mode": "4"}, "mode: must be one of 'auto', '5', '3.1.1', got '4'"),
    ({"mode": 5}, "mode: must be one of 'auto', '5', '3.1.1', got 5"),
    ({"color": "green"}, "color: must be one of 'red', 'blue', got 'green'"),
    ({"color": []}, "color: must be one of 'red', 'blue', got []"),
    (
        {"value": [1]},
        "value: must be text, got [1]; must be an integer, got [1]; "
        "must be a number, got [1]; must be true or false, got [1]",
    ),
    (
        {"value": math.inf},
        "value: must be text, got inf; must be an integer, got inf; "
        "must be a finite number, got inf; must be true or false, got inf",
    ),
    (
        {"value": None},
        "value: must be text, got None; must be an integer, got None; "
        "must be a number, got None; must be true or false, got None",
    ),
    ({"maybe": "1"}, "maybe: must be a number, got '1'"),
    ({"items": "x"}, "items: must be a list, got 'x'"),
    ({"items": [1.0, "a"]}, "items[1]: must be a number, got 'a'"),
    ({"items": [1.0, math.inf]}, "items[1]: must be a finite number, got inf"),
    ({"items": [1e308, 1e308, True]}, "items[2]: must be a number, got True"),
    ({"words": ["a", "b", "c"]}, "words: length must be 0..2, got 3"),
    ({"words": ["a", 1]}, "words[1]: must be text, got 1"),
    ({"point": [1]}, "point: must have 2 items, got 1"),
    ({"point": [1, "a"]}, "point[1]: must be an integer, got 'a'"),
    ({"point": {"a": 1}}, "point: must be a list, got {'a': 1}"),
    ({"table": []}, "table: must be a table, got []"),
    ({"table": {"a": "x"}}, "table.a: must be an integer, got 'x'"),
    ({"table": {1: 2}}, "table: must be text, got 1"),
    ({"table": {1: "x"}}, "table.1: must be an integer, got 'x'"),  # value before key
    ({"inner": 5}, "inner: must be a table, got 5"),
    ({"inner": {"n": 11}}, "inner.n: must be 0..10, got 11"),
    ({"inner": {"m": 1, "n": 99}}, "inner.m: unknown key (expected one of: n)"),
    ({"inners": [{"n": 1}, {"n": -1}]}, "inners[1].n: must be 0..10, got -1"),
    ({"inners": [{}, 3]}, "inners[1]: must be a table, got 3"),
    ({"checked": {"lo": 2, "hi": 1}}, "checked: lo 2 above hi 1"),
    ({"where": 5}, "where: must be a path, got 5"),
    ({"when": 1}, "when: unsupported type <class 'complex'>"),
    ({"zzz": 1, "count": 0}, "zzz: unknown key (expected one of: req, count, low, high, ratio, "),
    ({"count": 0, "low": -1}, "count: must be 1..65535, got 0"),  # first field in field order
]


@pytest.mark.parametrize(("data", "message"), ERRORS)
def test_error_messages_match_the_baseline(data: dict[str, Any], message: str) -> None:
    assert _error(data).startswith(message)


def test_missing_key_wrong_root_path_prefix_and_error_type() -> None:
    new, old = _both(Sample, {})
    assert new == old and new[2] == "req: is required" and new[3] == "req"
    new, old = _both(Sample, [1])
    assert new == old and new[2] == "must be a table, got [1]" and new[3] == ""
    new, old = _both(Sample, {"req": "r", "count": 0}, path="top.sample", error=ConfigError)
    assert new == old and new[1] is ConfigError
    assert new[2] == "top.sample.count: must be 1..65535, got 0" and new[3] == "top.sample.count"
    with pytest.raises(ConfigError) as info:
        from_plain(AgentConfig, {"uplink": {"mqtt": {"port": 70000}}}, error=ConfigError)
    assert str(info.value) == "uplink.mqtt.port: must be 1..65535, got 70000"
    assert info.value.key_path == "uplink.mqtt.port"


def test_numbers_beyond_float_and_print_range_are_typed_errors() -> None:
    """The one deliberate change: these raised OverflowError / ValueError before."""
    with pytest.raises(DataFormError) as info:
        from_plain(Sample, {"req": "r", "maybe": 10**400})
    assert str(info.value).startswith("maybe: must be a finite number, got 1000000")
    with pytest.raises(DataFormError) as info:
        from_plain(Sample, {"req": "r", "items": [1.0, -(10**400)]})
    assert str(info.value).startswith("items[1]: must be a finite number, got -1000000")
    huge = 10**5000  # str() refuses more than 4300 digits
    with pytest.raises(DataFormError) as info:
        from_plain(Sample, {"req": "r", "count": huge})
    assert str(info.value) == "count: must be 1..65535, got <int too large to show>"
    with pytest.raises(DataFormError) as info:
        from_plain(Sample, {"req": "r", "name": huge})
    assert str(info.value) == "name: must be text, got <int too large to show>"


# --- fuzz -----------------------------------------------------------------------------------

FIELD_NAMES = sorted(
    {
        *json.dumps([json.loads(p.read_text()) for p in EXAMPLES]).replace('"', " ").split(),
        *to_plain(AgentConfig()).keys(),
        *Sample.__dataclass_fields__,
    }
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["ok", "lfp", "synced", "auto", "red", "pass", "normal", "P903"])
    | st.binary(max_size=4)
)
PLAIN = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=4), inner, max_size=5)
    ),
    max_leaves=20,
)


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """A valid document with one node replaced, deleted or given an extra key."""
    doc = copy.deepcopy(base)
    node = doc
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return doc
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and child and draw(st.booleans()):
            node = child
            continue
        action = draw(st.sampled_from(["replace", "delete", "extra"]))
        if action == "replace" or isinstance(node, list):
            node[key] = draw(PLAIN)
        elif action == "delete":
            del node[key]
        else:
            node[draw(st.sampled_from(FIELD_NAMES))] = draw(PLAIN)
        return doc


EVENT_DOCS = [json.loads(p.read_text()) for p in EXAMPLES]
CASES = st.one_of(
    st.tuples(st.just(IdentificationEvent), st.sampled_from(EVENT_DOCS).flatmap(mutated)),
    st.tuples(st.just(AgentConfig), mutated(to_plain(AgentConfig()))),
    st.tuples(st.just(Sample), mutated({"req": "r", **to_plain(Sample(req="r"))})),
    st.tuples(st.sampled_from([IdentificationEvent, AgentConfig, Sample]), PLAIN),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CASES)
def test_fuzz_same_outcome_as_baseline(case: tuple[Any, Any]) -> None:
    cls, data = case
    new, old = _both(cls, data)
    assert new == old
    if new[0] == "ok":
        assert to_plain(new[1]) == BASE_TO(new[1])


BIG = st.integers() | st.integers(min_value=2**1024, max_value=2**1100) | st.just(10**5000)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EVENT_DOCS), st.data())
def test_fuzz_event_only_raises_dataform_error(base: Any, data: st.DataObject) -> None:
    base = copy.deepcopy(base)
    if data.draw(st.booleans()):  # also numbers no float or str() can hold
        base["readings"]["weight"]["mass_kg"] = data.draw(BIG)
    doc = data.draw(mutated(base) | PLAIN)
    try:
        event = from_plain(IdentificationEvent, doc)
    except DataFormError as exc:
        assert str(exc) and exc.problem
    else:
        assert from_plain(IdentificationEvent, to_plain(event)) == event


def test_union_member_order_is_kept_when_an_equal_union_was_seen_first() -> None:
    # int | str == str | int; a converter cache keyed by the union alone reported the members
    # in the order of whichever union was compiled first
    @dataclass(frozen=True, kw_only=True)
    class First:
        v: int | str

    @dataclass(frozen=True, kw_only=True)
    class Second:
        v: str | int

    with pytest.raises(DataFormError, match=r"must be an integer.*must be text"):
        from_plain(First, {"v": None})
    with pytest.raises(DataFormError, match=r"must be text.*must be an integer"):
        from_plain(Second, {"v": None})


def test_instances_hold_what_their_constructor_would_store() -> None:
    # from_plain fills the instance dict of a plain frozen dataclass directly (no __init__):
    # the same fields, in field order, defaults shared, factories called per instance
    for path in EXAMPLES:
        doc = json.loads(path.read_text())
        event = from_plain(IdentificationEvent, doc)
        assert event == BASE_FROM(IdentificationEvent, doc)
        for obj in _objects(event):
            kwargs = {name: getattr(obj, name) for name in obj.__dataclass_fields__}
            built = type(obj)(**kwargs)
            assert list(vars(obj).items()) == list(vars(built).items())

    @dataclass(frozen=True, kw_only=True)
    class Factories:
        tags: dict[str, str] = field(default_factory=dict)
        fixed: tuple[int, ...] = ()

    one, two = from_plain(Factories, {}), from_plain(Factories, {})
    assert one.tags == {} and one.tags is not two.tags and one.fixed is two.fixed


def test_classes_with_their_own_init_steps_are_still_built_by_calling_them() -> None:
    seen: list[str] = []

    @dataclass(frozen=True, kw_only=True)
    class Checked:
        n: int

        def __post_init__(self) -> None:
            seen.append("post_init")
            if self.n == 13:
                raise ValueError("unlucky")

    @dataclass(kw_only=True)
    class Guarded:
        n: int

        def __setattr__(self, name: str, value: Any) -> None:
            seen.append(f"set {name}")
            super().__setattr__(name, value)

    @dataclass(frozen=True, kw_only=True, slots=True)
    class Slotted:
        n: int = 1

    assert from_plain(Checked, {"n": 1}).n == 1
    with pytest.raises(DataFormError, match="unlucky"):
        from_plain(Checked, {"n": 13})
    assert from_plain(Guarded, {"n": 2}).n == 2
    assert from_plain(Slotted, {}).n == 1
    assert seen == ["post_init", "post_init", "set n"]


def _objects(obj: Any) -> list[Any]:
    """``obj`` and every dataclass instance inside it."""
    found = [obj] if hasattr(obj, "__dataclass_fields__") else []
    values = (
        [getattr(obj, n) for n in obj.__dataclass_fields__]
        if found
        else list(obj.values())
        if isinstance(obj, dict)
        else list(obj)
        if isinstance(obj, tuple | list)
        else []
    )
    for value in values:
        found += _objects(value)
    return found


def test_values_taken_inline_convert_as_through_their_converter() -> None:
    # the generated code takes common values without calling the converter: same results and
    # the same errors for everything around them
    @dataclass(frozen=True, kw_only=True)
    class Shortcuts:
        pair: tuple[int, int] = (0, 0)
        many: tuple[float, ...] = ()
        some: tuple[str, ...] | None = length(1, 3, default=None)
        kind: Literal["a", "b"] | Literal[1] = "a"
        code: str = pattern(r"[a-z]{2}", default="ab")
        n: int = bounded(0, 10, default=0)
        x: float = bounded(None, 1.5, default=0.0)
        free: float = 0.0

    cases: list[dict[str, Any]] = [
        {"pair": []},
        {"many": []},
        {"many": [1, 2.5]},
        {"some": []},
        {"kind": "b"},
        {"kind": 1},
        {"kind": True},
        {"code": "xy"},
        {"code": "xyz"},
        {"n": 10},
        {"n": 11},
        {"n": True},
        {"x": 1.5},
        {"x": 2.0},
        {"x": 1},
        {"free": math.inf},
        {"free": -0.0},
    ]
    for doc in cases:
        new, old = _both(Shortcuts, doc)
        assert new == old, doc
