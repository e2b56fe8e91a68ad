"""Profile validation, the BmsSource backend registry, and fuzzing the whole GB/T frame path."""

from __future__ import annotations

import asyncio

import can
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.bms import method_class, open_bms, read_bms
from edge_agent.bms.can.gbt27930_session import GbtCollector
from edge_agent.bms.can.j1939_tp import TpReceiver
from edge_agent.bms.can.profile_sections import GbtSection
from edge_agent.bms.can.reading import ReadingBuilder
from edge_agent.bms.profile import load_profile, load_profile_file
from edge_agent.bms.settings import BmsSettings, CanSettings
from edge_agent.errors import ConfigError, ProfileError
from edge_agent.sim.can_gbt import GbtBmsSimulator
from tests.support.can import channel_fixture, value, virtual  # noqa: F401

UDS_PROFILE = """
name = "x"
transport = "can"
methods = ["uds"]
[[uds.dids]]
did = 0x0101
field = "{field}"
codec = "{codec}"
"""


@pytest.mark.parametrize(
    ("field", "codec", "key", "message"),
    [
        ("sohh", "uint", "uds.dids[0].field", "unknown reading field 'sohh'"),
        ("soh", "ascii", "uds.dids[0].codec", "ascii gives text, soh is a number"),
    ],
)
def test_profile_field_names_are_checked_at_load(tmp_path, field, codec, key, message):
    path = tmp_path / "x.toml"
    path.write_text(UDS_PROFILE.format(field=field, codec=codec))
    with pytest.raises(ProfileError) as info:
        load_profile_file(path)
    assert info.value.key_path == f"x.{key}" and message in str(info.value)


def test_every_can_method_is_registered_and_reads(channel):
    from edge_agent.bms.can.profile_source import CanProfileSource

    profile = load_profile("gbt27930-generic")
    settings = BmsSettings(can=virtual(channel))
    with GbtBmsSimulator(channel=channel):
        for source in (
            method_class("gbt27930").from_profile(profile, settings),
            open_bms(profile, settings),
        ):
            reading = asyncio.run(source.read(8.0))
            assert reading.status == "ok" and value(reading.identity.serial)[0] == "1234"
    assert method_class("uds").__name__ == "UdsSource"
    assert method_class("dbc").__name__ == "DbcSource"
    assert type(open_bms(profile, settings)) is CanProfileSource
    with pytest.raises(ConfigError):
        CanProfileSource(
            profile=profile.__class__(name="m", transport="modbus", methods=("sunspec",)),
            can=virtual(channel),
        )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    0x182756F4,
                    0x1C0256F4,
                    0x1C0656F4,
                    0x1C1156F4,
                    0x181356F4,
                    0x1C1556F4,
                    0x1C1656F4,
                    0x181C56F4,
                    0x1CEC56F4,
                    0x1CEB56F4,
                    0x1CECF456,
                    0x7E8,
                ]
            ),
            st.binary(max_size=8),
        ),
        max_size=80,
    ),
    st.booleans(),
)
def test_fuzz_gbt_collector_with_arbitrary_frames(frames, passive):
    t = [0.0]
    receiver = TpReceiver(
        address=0x56, send=None if passive else (lambda i, d: None), clock=lambda: t[0]
    )
    collector = GbtCollector(section=GbtSection(), receiver=receiver)
    for can_id, data in frames:
        t[0] += 0.01
        collector.feed(can.Message(arbitration_id=can_id, data=data, is_extended_id=can_id > 0x7FF))
        collector.poll()
    out = ReadingBuilder()
    collector.apply(out)
    out.build()


def test_unopenable_bus_is_a_failed_reading_with_reason(tmp_path):
    tty = CanSettings(interface="slcan", channel=str(tmp_path / "no-such-tty"), open_delay_s=0.0)
    settings = BmsSettings(can=tty)
    r = asyncio.run(read_bms(load_profile("gbt27930-generic"), settings, 3.0))
    assert r.status == "failed" and r.problems[0].startswith("cannot open CAN bus slcan:")
    bad = BmsSettings(can=CanSettings(interface="no-such-interface", channel="x"))
    r = asyncio.run(read_bms(load_profile("uds-generic"), bad, 3.0))
    assert r.status == "failed" and "cannot open CAN bus no-such-interface:x" in r.problems[0]
