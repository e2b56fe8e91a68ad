"""The one registry of BMS methods: built-in names, entry-point plug-ins, typed errors."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.bms import ENTRY_POINT_GROUP, known_methods, method_class, open_bms, read_bms
from edge_agent.bms.profile import PackProfile, load_profile
from edge_agent.bms.settings import BmsSettings, ModbusSettings
from edge_agent.errors import BmsBackendError, ConfigError, ProfileError
from tests.support.can import channel_fixture, value, virtual  # noqa: F401

PLUGIN = """
from edge_agent.bms.can.source_base import CanMethodSource


async def collect_fake(bus, profile, out, budget_s):
    out.put("serial", "PLUGIN-7", "fake")
    out.put("soc", 42.0, "fake")


class FakeSource(CanMethodSource):
    name = "fake"
    fixed_methods = ("fake",)
    collect = staticmethod(collect_fake)


NOT_A_SOURCE = object()
"""

ENTRY_POINTS = f"""
[{ENTRY_POINT_GROUP}]
fake = fake_bms_plugin:FakeSource
broken = fake_bms_plugin_missing:Nothing
notsource = fake_bms_plugin:NOT_A_SOURCE
gbt27930 = fake_bms_plugin:FakeSource
"""


@pytest.fixture(name="plugin")
def plugin_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An installed distribution (a dist-info on sys.path) that registers BMS methods."""
    (tmp_path / "fake_bms_plugin.py").write_text(PLUGIN)
    info = tmp_path / "fake_bms_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-bms-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(ENTRY_POINTS))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("fake_bms_plugin", None)


def test_builtin_methods_are_known_without_plugins():
    assert list(known_methods())[:5] == ["gbt27930", "uds", "dbc", "sunspec", "regmap"]
    assert method_class("sunspec").transport == "modbus"
    assert method_class("regmap").__name__ == "RegisterMapSource"


def test_unknown_method_is_a_config_error_listing_the_known_ones():
    with pytest.raises(ConfigError, match="unknown BMS method 'nope'") as info:
        method_class("nope")
    assert "gbt27930, uds, dbc, sunspec, regmap" in str(info.value)
    profile = PackProfile(name="x", transport="can", methods=("gbt27930", "nope"))
    with pytest.raises(ProfileError, match="unknown BMS method 'nope'") as info:
        open_bms(profile, BmsSettings())
    assert info.value.key_path == "x.methods"


def test_methods_must_match_the_profile_transport():
    with pytest.raises(ProfileError, match="'sunspec' is not a CAN method"):
        open_bms(PackProfile(name="x", transport="can", methods=("sunspec",)), BmsSettings())
    with pytest.raises(ProfileError, match="needs at least one method"):
        open_bms(PackProfile(name="x", transport="can", methods=()), BmsSettings())


def test_only_can_sessions_are_recorded(tmp_path):
    settings = BmsSettings(modbus=ModbusSettings(url="tcp://127.0.0.1:1"))
    with pytest.raises(ConfigError, match="only a CAN session"):
        open_bms(load_profile("sunspec-battery"), settings, record=tmp_path / "x.log")


def test_entry_point_method_is_found_and_read(plugin, channel):
    assert known_methods()["fake"] == "fake_bms_plugin:FakeSource"
    assert method_class("fake").__module__ == "fake_bms_plugin"
    profile = PackProfile(name="plugged", transport="can", methods=("fake",))
    reading = asyncio.run(read_bms(profile, BmsSettings(can=virtual(channel)), 3.0))
    assert reading.status == "ok", reading.problems
    assert reading.methods == ("fake",)
    assert value(reading.identity.serial) == ("PLUGIN-7", "", "fake")
    assert value(reading.state.soc) == (42.0, "%", "fake")


def test_builtin_names_cannot_be_taken_by_entry_points(plugin):
    assert method_class("gbt27930").__name__ == "GbtSource"
    assert known_methods()["gbt27930"] == "edge_agent.bms.can.gbt27930_source:GbtSource"


@pytest.mark.parametrize(
    ("name", "why"),
    [("broken", "ModuleNotFoundError"), ("notsource", "not a BmsSource subclass")],
)
def test_broken_entry_point_is_a_typed_error(plugin, name, why):
    with pytest.raises(BmsBackendError, match=why) as info:
        method_class(name)
    assert isinstance(info.value, ImportError) and isinstance(info.value, ConfigError)
    assert info.value.method == name and info.value.target.startswith("fake_bms_plugin")
    profile = PackProfile(name="x", transport="can", methods=(name,))
    with pytest.raises(BmsBackendError):
        open_bms(profile, BmsSettings())


def test_the_guide_names_the_entry_point_group():
    guide = Path(__file__).resolve().parents[2] / "docs" / "add-a-pack-profile.md"
    assert f'[project.entry-points."{ENTRY_POINT_GROUP}"]' in guide.read_text()
