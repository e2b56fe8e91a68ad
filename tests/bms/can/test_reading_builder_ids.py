"""A later identifier for an already filled identity field is kept, not dropped."""

from __future__ import annotations

from edge_agent.bms.can.reading import ReadingBuilder
from edge_agent.model import Value


def test_second_hardware_number_goes_to_other_ids_and_state_duplicates_do_not() -> None:
    builder = ReadingBuilder(profile="uds-generic")
    builder.put("hardware_version", "HW-SUPPLIER-07", "uds:F193")
    builder.put("hardware_version", "VM-HW-1234", "uds:F191")
    builder.put("hardware_version", "HW-SUPPLIER-07", "uds:F192")  # same text: nothing new
    builder.put("software_version", "SW 4.2", "uds:F195")
    builder.put("soc", 50.0, "dbc:SOC")
    builder.put("soc", 51.0, "gbt27930:BCS")  # state values are not identifiers
    reading = builder.build()
    ident = reading.identity
    assert ident.hardware_version == Value(value="HW-SUPPLIER-07", method="uds:F193")
    assert ident.other_ids == {"uds:F191": Value(value="VM-HW-1234", method="uds:F191")}
    assert reading.state.soc is not None and reading.state.soc.value == 50.0


def test_ecu_fields_build_the_ecu_identity_apart_from_the_pack() -> None:
    builder = ReadingBuilder(profile="uds-generic")
    builder.put("ecu.serial", "BMS0042", "uds:F18C")
    builder.put("ecu.system_supplier_id", "LGES", "uds:F18A")
    builder.put("serial", "PACK-77", "gbt27930:BRM")
    ident = builder.build().identity
    assert ident.serial == Value(value="PACK-77", method="gbt27930:BRM")
    assert ident.ecu is not None
    assert ident.ecu.serial == Value(value="BMS0042", method="uds:F18C")
    assert ident.ecu.system_supplier_id == Value(value="LGES", method="uds:F18A")
    assert ident.manufacturer is None


def test_no_other_ids_when_nothing_extra() -> None:
    builder = ReadingBuilder()
    builder.put("serial", "ABC", "uds:F18C")
    assert builder.build().identity.other_ids is None
