"""UDS identification over ISO-TP against the in-process ECU simulator."""

from __future__ import annotations

from dataclasses import replace

import pytest

from edge_agent.bms.can.profile_sections import UdsDid
from edge_agent.bms.can.uds_codecs import decode_bcd_date, decode_did
from edge_agent.bms.profile import load_profile
from edge_agent.errors import FrameError
from edge_agent.sim.can_uds import DEFAULT_DIDS, UdsEcuSimulator, UdsSimConfig
from tests.support.can import (
    channel_fixture,  # noqa: F401 - fixtures
    read,
    value,
    virtual,
)


def profile(name: str = "uds-example-vendor", **uds):
    p = load_profile(name)
    return replace(p, uds=replace(p.uds, request_timeout_s=0.4, **uds))


def dids_with_soh() -> dict[int, bytes]:
    dids = dict(DEFAULT_DIDS)
    dids[0x0105] = (943).to_bytes(2, "big")
    return dids


def test_identification_dids_describe_the_ecu_and_the_vendor_did_the_pack(channel):
    with UdsEcuSimulator(channel=channel, config=UdsSimConfig(dids=dids_with_soh())) as sim:
        r = read(profile(), virtual(channel))
    assert r.status == "ok", r.problems
    i = r.identity
    # F18A/F18B/F18C are the BMS controller's, never the pack's manufacturer, date or serial
    assert i.serial is None and i.manufacturer is None and i.production_date is None
    assert i.part_number is None and i.hardware_version is None and i.software_version is None
    assert value(i.vin) == ("WVWZZZE1ZPP012345", "", "uds:F190")
    ecu = i.ecu
    assert ecu is not None
    assert value(ecu.serial) == ("BMS0042137755", "", "uds:F18C")
    assert value(ecu.system_supplier_id) == ("LGES", "", "uds:F18A")
    assert value(ecu.part_number) == ("24A915B-00", "", "uds:F187")
    assert value(ecu.manufacturing_date) == ("2022-03-14", "", "uds:F18B")
    assert value(ecu.hardware_number) == ("HW-5Q0915", "", "uds:F191")  # a number, not a version
    assert value(ecu.supplier_hardware_version) == ("H07", "", "uds:F193")
    assert value(ecu.supplier_software_version) == ("S0815", "", "uds:F195")
    assert ecu.supplier_hardware_number is None and ecu.supplier_software_number is None
    assert value(r.state.soh) == (94.3, "%", "uds:0105")
    asked = {int.from_bytes(req[1:3], "big") for req in sim.ecu.requests if req[0] == 0x22}
    assert asked == {0x0105, 0xF190, *range(0xF187, 0xF18D), *range(0xF191, 0xF196)}


def test_generic_profile_reads_only_standard_identifiers_on_the_bms_ids(channel):
    generic = load_profile("uds-generic")
    assert generic.uds is not None and generic.uds.dids == ()
    assert (generic.uds.tx_id, generic.uds.rx_id) == (0x7E4, 0x7EC)  # not the engine ECU
    assert (generic.uds.p2_s, generic.uds.p2_star_s) == (0.05, 5.0)  # ISO 14229-2
    with UdsEcuSimulator(channel=channel, config=UdsSimConfig(dids=dids_with_soh())) as sim:
        r = read(profile("uds-generic"), virtual(channel))
    assert r.status == "ok", r.problems
    assert r.state.soh is None
    asked = {int.from_bytes(req[1:3], "big") for req in sim.ecu.requests if req[0] == 0x22}
    assert all(did >= 0xF180 for did in asked)


def test_response_pending_twice_then_an_answer_at_1_2_s_is_read(channel):
    config = UdsSimConfig(pending_dids=(0xF18C,), pending_count=2, answer_delay_s=1.2)
    generic = load_profile("uds-generic")  # the default timing: P2 50 ms, P2* 5 s
    with UdsEcuSimulator(channel=channel, config=config):
        r = read(generic, virtual(channel), timeout=8.0)
    assert r.status == "ok", r.problems
    assert r.identity.ecu is not None
    assert value(r.identity.ecu.serial) == ("BMS0042137755", "", "uds:F18C")


def test_pending_without_an_answer_is_busy_not_silent(channel):
    config = UdsSimConfig(pending_dids=(0xF18C,), pending_count=1, answer_delay_s=30.0)
    slow = profile("uds-generic", p2_star_s=0.5)
    with UdsEcuSimulator(channel=channel, config=config):
        r = read(slow, virtual(channel), timeout=6.0)
    assert r.status == "partial", r.problems
    assert "uds:F18C: response pending (0x78) 1 time(s), then no answer within 1.00 s" in r.problems
    assert value(r.identity.vin) == ("WVWZZZE1ZPP012345", "", "uds:F190")


def test_negative_responses_and_timeouts_are_per_did(channel):
    config = UdsSimConfig(
        dids=dids_with_soh(),
        nrc={0xF190: 0x33, 0x0105: 0x22},
        silent_dids=(0xF18C,),
        pending_dids=(0xF18A,),
    )
    with UdsEcuSimulator(channel=channel, config=config):
        r = read(profile(), virtual(channel))
    assert r.status == "partial"
    assert "uds:F190: negative response 0x33 (SecurityAccessDenied)" in r.problems
    assert "uds:0105: negative response 0x22 (ConditionsNotCorrect)" in r.problems
    assert "uds:F18C: no response within 0.40 s" in r.problems
    assert r.identity.ecu is not None
    assert value(r.identity.ecu.system_supplier_id) == ("LGES", "", "uds:F18A")  # after 0x78
    assert r.identity.vin is None and r.identity.ecu.serial is None
    # an unsupported optional standard DID (0x31) is not a problem: F192/F194 are absent
    assert not any("F192" in p or "F194" in p for p in r.problems)


def test_silent_ecu_fails_with_reason_then_next_read_works(channel):
    with UdsEcuSimulator(channel=channel, config=UdsSimConfig(silent=True)):
        r = read(profile(), virtual(channel), timeout=4.0)
    assert r.status == "failed"
    assert r.problems == ("no UDS response from id 0x7ec to requests on 0x7e4 at 500000 bit/s",)
    with UdsEcuSimulator(channel=channel):
        ecu = read(profile(), virtual(channel)).identity.ecu
        assert ecu is not None and ecu.serial is not None


def test_29bit_ids(channel):
    config = UdsSimConfig(tx_id=0x18DAF1DB, rx_id=0x18DADBF1, extended_ids=True)
    with UdsEcuSimulator(channel=channel, config=config):
        r = read(profile(tx_id=0x18DADBF1, rx_id=0x18DAF1DB, extended_ids=True), virtual(channel))
    assert value(r.identity.vin)[0] == "WVWZZZE1ZPP012345"


def test_did_codecs():
    assert decode_bcd_date(bytes.fromhex("20220314")) == "2022-03-14"
    assert decode_did(UdsDid(did=1, field="soh", codec="uint", scale=0.5), b"\x00\xc8") == 100.0
    assert (
        decode_did(
            UdsDid(did=1, field="current", codec="sint", byte_order="little", length=2), b"\xfe\xff"
        )
        == -2
    )
    assert (
        decode_did(UdsDid(did=1, field="serial", codec="hex", start=1), b"\x00\xab\xcd") == "ABCD"
    )
    assert decode_did(UdsDid(did=1, field="serial"), b"SN42\x00\x00") == "SN42"
    for spec, raw in (
        (UdsDid(did=1, field="serial"), b"\x01\x02"),
        (UdsDid(did=1, field="production_date", codec="bcd_date"), b"\x22\x13\x01"),
        (UdsDid(did=1, field="soh", codec="uint", length=4), b"\x00"),
    ):
        with pytest.raises(FrameError):
            decode_did(spec, raw)
