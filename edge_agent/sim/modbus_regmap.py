"""A simulated register-map device: values in engineering units encoded with a profile's map."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from edge_agent.bms.modbus.profile_sections import ARRAY_TARGETS, RegisterDef, RegisterMapSection
from edge_agent.bms.modbus.registers import float_to_words, int_to_words, text_to_words
from edge_agent.errors import SimulatorError
from edge_agent.sim.modbus_server import Fault, ModbusDeviceSim

RegValue = int | float | str | Sequence[float]

# What the BYD-style simulator reports (engineering units), keyed by register name.
BYD_VALUES: dict[str, RegValue] = {
    "manufacturer": "BYD",
    "model": "BYD Battery-Box Premium HV",
    "bms_version": "3.26",
    "serial": "P030T020Z2109180001",
    "rated_energy": 11.04,
    "soc": 76.54,
    "pack_voltage": 409.6,
    "temperature_min": -2.5,
    "temperature_max": 18.4,
    "soh": 99.0,
}
# Readable areas of a BYD BMU (registers outside them answer "illegal data address").
BYD_AREAS = ((100, 68), (200, 13), (300, 24))
# Fixed words a BYD BMU carries besides the mapped values ("SI", protocol 1; BMU "5.0").
BYD_STATIC = {100: [0x5349, 1], 134: text_to_words("5.0", 8), 166: [1, 0], 300: [3], 302: [128 + 3]}


def encode_register(reg: RegisterDef, value: RegValue, word_order: str) -> list[int]:
    """Registers holding ``value`` as ``reg`` describes it (inverse of the reader)."""
    if reg.type == "string":
        words = text_to_words(str(value), reg.count)
        return [((w & 0xFF) << 8) | (w >> 8) for w in words] if reg.swap_bytes else words
    items = (
        list(value)
        if reg.field in ARRAY_TARGETS and not isinstance(value, str | int | float)
        else [value]
    )
    little = (reg.word_order or word_order) == "little"
    size = reg.words // reg.count
    out: list[int] = []
    for item in items[: reg.count]:
        if isinstance(item, str):
            raise SimulatorError(f"numeric register given text {item!r}")
        if not isinstance(item, int | float):
            raise SimulatorError(f"register {reg.address} needs a number, got {item!r}")
        raw = (float(item) - reg.offset) / reg.scale
        if reg.type == "f32":
            out.extend(float_to_words(raw, 2, little_word_first=little))
        else:
            out.extend(int_to_words(round(raw), size, little_word_first=little))
    return out + [0] * (reg.words - len(out))


def regmap_registers(
    section: RegisterMapSection,
    values: Mapping[str, RegValue],
    *,
    areas: Sequence[tuple[int, int]] | None = None,
    static: Mapping[int, Sequence[int]] | None = None,
) -> dict[int, list[int]]:
    """Register blocks (start -> words) for a device implementing ``section`` with ``values``.

    ``areas`` are the readable address ranges (default: one range spanning every register);
    registers outside them are absent, as on a device with holes in its map.
    """
    regs = section.registers
    if areas is None:
        low = min(r.address for r in regs.values())
        high = max(r.address + r.words for r in regs.values())
        areas = ((low, high - low),)
    memory: dict[int, int] = {}
    for start, count in areas:
        memory.update(dict.fromkeys(range(start, start + count), 0))
    for address, words in (static or {}).items():
        memory.update(zip(range(address, address + len(words)), words, strict=True))
    for name, value in values.items():
        if name not in regs:
            raise SimulatorError(f"no register {name!r} in the map")
        reg = regs[name]
        words = encode_register(reg, value, section.word_order)
        for offset, word in enumerate(words):
            if reg.address + offset not in memory:
                raise SimulatorError(
                    f"register {name} at {reg.address} lies outside the device areas"
                )
            memory[reg.address + offset] = word
    return {start: [memory[a] for a in range(start, start + count)] for start, count in areas}


def regmap_device(
    section: RegisterMapSection,
    values: Mapping[str, RegValue],
    *,
    areas: Sequence[tuple[int, int]] | None = None,
    static: Mapping[int, Sequence[int]] | None = None,
    device_id: int = 1,
    faults: Sequence[Fault] = (),
) -> ModbusDeviceSim:
    """A ``ModbusDeviceSim`` serving ``values`` through ``section`` (start_tcp/start_rtu_pty)."""
    return ModbusDeviceSim(
        regmap_registers(section, values, areas=areas, static=static),
        device_id=device_id,
        faults=faults,
    )


def byd_device(
    *,
    device_id: int = 1,
    faults: Sequence[Fault] = (),
    values: Mapping[str, RegValue] | None = None,
) -> ModbusDeviceSim:
    """The BYD Battery-Box style device of the shipped ``byd-batterybox`` profile."""
    from edge_agent.bms.profile import load_profile

    section = load_profile("byd-batterybox").regmap
    if section is None:
        raise SimulatorError("byd-batterybox profile has no [regmap] section")
    return regmap_device(
        section,
        values or BYD_VALUES,
        areas=BYD_AREAS,
        static=BYD_STATIC,
        device_id=device_id,
        faults=faults,
    )
