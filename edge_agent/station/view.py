"""Technician-facing terminal view (rich): identity, condition, checks, triage, next step."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from edge_agent.model import IdentificationEvent, Value

STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}
CLASS_STYLE = {
    "normal": "green",
    "damaged_defective": "bold yellow",
    "critical": "bold white on red",
    "undiagnosable": "bold yellow",
}


def _v(value: Value | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value.value, float):
        return f"{value.value:.{digits}f} {value.unit}".strip()
    return f"{value.value} {value.unit}".strip()


def render_event(event: IdentificationEvent, *, published: bool | None = None) -> Panel:
    """One panel with everything the technician needs for the pack on the bench."""
    pack = event.pack
    bms = event.readings.bms
    ident = Table.grid(padding=(0, 2))
    ident.add_column(style="bold")
    ident.add_column()
    ident.add_row("Pack code", pack.pack_code or Text("not read", style="bold red"))
    if pack.passport_id:
        ident.add_row("Passport", pack.passport_id)
    if pack.component_codes:
        listed = ", ".join(f"{c.product_level} {c.code}" for c in pack.component_codes)
        ident.add_row("Components", Text(listed, style="yellow"))
    maker = " ".join(x for x in (pack.manufacturer_code, pack.manufacturer_name) if x)
    ident.add_row("Manufacturer", maker or pack.manufacturer or "-")
    ident.add_row("Chemistry", pack.battery_type or "-")
    made = pack.production_date or "-"
    if pack.production_date and pack.production_date_confidence == "extrapolated":
        made += " (extrapolated)"
    ident.add_row("Made", made)
    ident.add_row("VIN", pack.vin or "-")
    energy = f"{pack.rated_energy_kwh:.1f} kWh" if pack.rated_energy_kwh else "-"
    ident.add_row("Rated energy", energy)

    state = bms.state
    cond = Table.grid(padding=(0, 2))
    cond.add_column(style="bold")
    cond.add_column()
    cond.add_row(
        "BMS", f"{bms.status} via {', '.join(bms.methods) or '-'} ({bms.profile or 'no profile'})"
    )
    cond.add_row("Voltage / SOC", f"{_v(state.pack_voltage)} / {_v(state.soc, 0)}")
    cond.add_row("SOH", _v(state.soh, 0))
    cond.add_row(
        "Cells",
        f"min {_v(state.cell_voltage_min, 3)}  max {_v(state.cell_voltage_max, 3)}  "
        f"spread {_v(state.cell_voltage_spread, 3)}",
    )
    cond.add_row("Temperature", f"{_v(state.temperature_min)} .. {_v(state.temperature_max)}")
    weight = event.readings.weight
    mass = f"{weight.mass_kg:.1f} kg" if weight.mass_kg is not None else "-"
    cond.add_row("Weight", f"{mass} ({'stable' if weight.stable else weight.status})")
    if state.faults:
        cond.add_row("Faults", Text(", ".join(state.faults), style="bold red"))
    ecu = bms.identity.ecu
    if ecu is not None and (ecu.serial or ecu.part_number):
        cond.add_row("BMS ECU", f"serial {_v(ecu.serial)}, part {_v(ecu.part_number)}")
    device = bms.identity.device
    if device is not None and (device.manufacturer or device.serial):
        cond.add_row("BMS device", f"{_v(device.manufacturer)}, serial {_v(device.serial)}")
    others = bms.identity.other_ids or {}
    if others:
        first_key = next(iter(others))
        cond.add_row("Other IDs", f"{len(others)} (e.g. {first_key} = {others[first_key].value})")

    checks = Table(show_header=True, header_style="bold", expand=True, box=None)
    checks.add_column("check")
    checks.add_column("result")
    checks.add_column("detail", overflow="fold")
    for check in event.checks:
        checks.add_row(
            check.name, Text(check.status.upper(), style=STATUS_STYLE[check.status]), check.detail
        )

    tri = event.triage
    verdict = Text()
    verdict.append(
        f" {tri.transport_class.replace('_', '/').upper()} ", style=CLASS_STYLE[tri.transport_class]
    )
    verdict.append(
        f"  {tri.packing_instruction}  ->  {tri.disposition.replace('_', ' ')}\n", style="bold"
    )
    for reason in tri.reasons:
        verdict.append(f"  - {reason}\n")
    intake = event.intake
    if intake is not None and intake.un_number:
        transport = intake.un_number + (
            f" {intake.special_provision}" if intake.special_provision else ""
        )
        verdict.append(f"  {transport}  EU status: {intake.eu_status or 'open'}\n")
    if tri.next_step:
        verdict.append(f"Next: {tri.next_step}", style="bold cyan")

    problems = [
        f"{name}: {p}"
        for name, reading_problems in (
            ("bms", bms.problems),
            ("label", event.readings.label.problems),
            ("weight", weight.problems),
        )
        for p in reading_problems
    ]
    parts: list[Table | Text] = [ident, Text(""), cond, Text(""), checks, Text(""), verdict]
    if problems:
        parts.append(Text("\n" + "\n".join(problems), style="yellow"))
    footer = f"event {event.event_id}  seq {event.boot_epoch}.{event.seq}"
    if published is not None:
        footer += "  published" if published else "  stored, waiting for broker"
    return Panel(Group(*parts), title=f"{event.station} @ {event.site}", subtitle=footer)


def print_event(
    event: IdentificationEvent, *, console: Console | None = None, published: bool | None = None
) -> None:
    """Print the panel to the terminal."""
    (console or Console()).print(render_event(event, published=published))
