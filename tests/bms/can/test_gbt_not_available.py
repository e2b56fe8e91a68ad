"""GB/T 27930 "not available" encodings (all ones) decode as None, never as a number."""

from __future__ import annotations

from edge_agent.bms.can import gbt27930 as gbt
from edge_agent.bms.can import gbt27930_encode as enc
from edge_agent.bms.can.reading import ReadingBuilder


def test_bsm_temperature_byte_ff_is_not_205_degc() -> None:
    data = bytes((0, 0xFF, 0, 0xFF, 0, 0, 0xC0))
    bsm = gbt.decode_bsm(data)
    assert (bsm.max_temperature_c, bsm.min_temperature_c) == (None, None)
    assert enc.encode_bsm(bsm) == data[:5] + b"\x00\xc0"  # and encodes back to 0xFF
    assert gbt.decode_bsm(bytes((0, 0xFE, 0, 0x00, 0, 0, 0xC0))).max_temperature_c == 204


def test_bcs_and_bcp_all_ones_fields_are_not_available() -> None:
    bcs = gbt.decode_bcs(b"\xff\xff\xff\xff\x70\x01\xff\x00\x00")
    assert (bcs.voltage_v, bcs.current_a, bcs.soc_pct) == (None, None, None)
    assert bcs.max_cell_voltage_v == 3.68
    bcp = gbt.decode_bcp(b"\xa4\x01\xa0\x0f" + b"\xff\xff" + b"\x10\x0e\x69" + b"\xff" * 4)
    assert (bcp.rated_energy_kwh, bcp.soc_pct, bcp.pack_voltage_v) == (None, None, None)
    assert enc.encode_bcs(bcs)[:4] == b"\xff\xff\xff\xff" and enc.encode_bcs(bcs)[6] == 0xFF


def test_not_available_values_reach_the_reading_as_marked_evidence() -> None:
    out = ReadingBuilder()
    out.put_unavailable("soc", "0xFF", "gbt27930:BCS", "0xFF = not available")
    out.put("soc", 56.3, "gbt27930:BCP")  # a real value from a later message replaces it
    out.put_unavailable("temperature_max", "0xFF", "gbt27930:BSM", "byte 0xFF = not available")
    reading = out.build()
    soc, t_max = reading.state.soc, reading.state.temperature_max
    assert soc is not None and (soc.value, soc.quality, soc.method) == (56.3, None, "gbt27930:BCP")
    assert any("gbt27930:BCS sent 0xFF" in p for p in reading.problems)
    assert t_max is not None and (t_max.value, t_max.quality) == ("0xFF", "unavailable")
