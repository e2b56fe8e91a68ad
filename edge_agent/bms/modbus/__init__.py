"""BMS acquisition over Modbus TCP/RTU: SunSpec battery models and declarative register maps.

Entry points:
- ``profile_source.ModbusProfileSource``, the composite ``bms.registry.open_bms`` returns
- ``sunspec_source.SunSpecSource`` and ``regmap_source.RegisterMapSource`` (``BmsSource`` backends)
- ``planner.plan_reads`` (pure read coalescing), ``sunspec_decode.decode_model`` (pure decoder)
"""

# public modules; importing the package imports none of them
__all__ = [
    "link",
    "planner",
    "profile_sections",
    "profile_source",
    "registers",
    "regmap",
    "regmap_source",
    "sunspec_decode",
    "sunspec_models",
    "sunspec_reader",
    "sunspec_source",
]
