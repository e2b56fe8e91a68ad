"""Realistic readings for station tests: a healthy LFP pack and variations of it."""

from __future__ import annotations

from dataclasses import replace

from edge_agent.model import (
    BmsIdentity,
    BmsReading,
    BmsState,
    LabelCode,
    LabelReading,
    Readings,
    SensorReading,
    Value,
    WeightReading,
)

PACK_CODE = "001PBA1000001NABB1234567"  # CATL, pack, LFP, 2020-11-11 per the unconfirmed tables


def gbt(value: str | float | int, unit: str = "", msg: str = "BRM") -> Value:
    """A value as the GB/T 27930 backend would report it."""
    return Value(value=value, unit=unit, method=f"gbt27930:{msg}")


def healthy_bms(**state_changes: object) -> BmsReading:
    """A readable LFP pack: 280 Ah x 345.6 V = 96.8 kWh, SOH 92 %, tight cells."""
    cells = tuple(3.300 + 0.001 * (i % 5) for i in range(108))
    state = BmsState(
        pack_voltage=gbt(356.9, "V", "BCP"),
        soc=gbt(55.0, "%", "BCP"),
        soh=Value(value=92.0, unit="%", method="uds:F1A0"),
        cell_voltage_min=gbt(min(cells), "V", "BMV"),
        cell_voltage_max=gbt(max(cells), "V", "BMV"),
        cell_voltage_mean=gbt(round(sum(cells) / len(cells), 4), "V", "BMV"),
        cell_voltage_spread=gbt(round(max(cells) - min(cells), 4), "V", "BMV"),
        cell_voltages=cells,
        temperature_min=gbt(21.0, "°C", "BSM"),
        temperature_max=gbt(24.0, "°C", "BSM"),
        temperatures=(21.0, 22.0, 24.0, 23.0),
    )
    state = replace(state, **state_changes)  # type: ignore[arg-type]
    return BmsReading(
        status="ok",
        transport="can",
        methods=("gbt27930",),
        profile="gbt27930-generic",
        identity=BmsIdentity(
            manufacturer=gbt("CATL"),
            serial=gbt("00012345"),
            production_date=gbt("2020-11-11"),
            battery_type=gbt("lfp"),
            rated_capacity=gbt(280.0, "Ah"),
            rated_voltage=gbt(345.6, "V"),
            vin=gbt("LGXCE6CB5L0123456"),
        ),
        state=state,
    )


def label_with(code: str = PACK_CODE, **fields: str) -> LabelReading:
    """A label reading carrying one GB/T 34014 code with parsed fields."""
    parsed = {
        "manufacturer": code[:3],
        "product_type": code[3],
        "battery_type": "lfp",
        "spec": code[5:7],
        "traceability": code[7:14],
        "production_date": "2020-11-11",
        "serial": code[17:],
    }
    parsed.update(fields)
    return LabelReading(
        status="ok",
        codes=(
            LabelCode(
                symbology="QRCode", text=code, kind="gbt34014", fields=parsed, decode_pass="plain"
            ),
        ),
        frames=1,
    )


def healthy_readings() -> Readings:
    """Label, BMS and a 600 kg weight that agree (96.8 kWh / 600 kg = 161 Wh/kg)."""
    return Readings(
        bms=healthy_bms(),
        label=label_with(),
        weight=WeightReading(
            status="ok", mass_kg=600.0, stable=True, division_kg=0.5, node_id="scale-1"
        ),
        sensors=SensorReading(
            status="ok", node_id="sensors-1", temperatures_c=(22.5,), gas_level=0.05
        ),
    )
