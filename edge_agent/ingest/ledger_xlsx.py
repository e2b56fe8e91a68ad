"""The intake ledger as XLSX: openpyxl in write-only mode, so memory stays flat for any size."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import Cell, WriteOnlyCell

from edge_agent.ingest.records import LEDGER_COLUMNS, ledger_row
from edge_agent.ingest.store import EventRow

# column -> (source in the event, confidence), as the table in docs/ingest.md states them
COLUMN_NOTES: dict[str, tuple[str, str]] = {
    "intake_date": ("clock.utc (date)", "confirmed: date of intake"),
    "event_utc": ("clock.utc", "confirmed: date of intake"),
    "event_id": ("event_id", "ours"),
    "site": ("site", "ours"),
    "station": ("station", "ours"),
    "enterprise_id": ("intake.enterprise_id", "unconfirmed"),
    "pack_code": ("pack.pack_code", "confirmed (GB/T 34014 code)"),
    "code_kind": ("pack.code_kind", "confirmed (GB/T 34014 code)"),
    "vin": ("pack.vin", "confirmed for dismantlers; unconfirmed for recyclers"),
    "manufacturer": ("pack.manufacturer", "unconfirmed"),
    "battery_type": ("pack.battery_type", "confirmed (dismantler intake)"),
    "rated_energy_kwh": ("pack.rated_energy_kwh", "unconfirmed"),
    "mass_kg": ("readings.weight.mass_kg", "unconfirmed"),
    "consignor_name": ("intake.consignor.name", "unconfirmed"),
    "consignor_uscc": ("intake.consignor.uscc", "unconfirmed"),
    "un_number": ("intake.un_number", "confirmed (ADR 2025)"),
    "special_provision": ("intake.special_provision", "confirmed (ADR 2025)"),
    "transport_class": ("triage.transport_class", "confirmed (ADR 2025)"),
    "packing_instruction": ("triage.packing_instruction", "confirmed (ADR 2025)"),
    "disposition": ("triage.disposition", "ours"),
    "eu_status": ("intake.eu_status", "confirmed (EU 2023/1542 Annex XIII)"),
    "eu_category": ("intake.eu_category", "confirmed (EU 2023/1542 Annex XIII)"),
    "soh_percent": ("readings.bms.state.soh", "confirmed field (EU)"),
    "soh_definition": ("intake.soh_definition", "as the profile states it"),
    "technician": ("intake.technician", "ours"),
    "observations": ("observations", "ours"),
    "evidence_sha256": ("evidence[].sha256", "ours"),
    "corrects": ("corrects", "ours (event id of the corrected original)"),
}
UNCONFIRMED = frozenset(c for c, (_, note) in COLUMN_NOTES.items() if "unconfirmed" in note)
LEDGER_SHEET = "ledger"
COLUMNS_SHEET = "columns"


def _cell(sheet: Any, value: Any) -> Cell:
    # strings go in as text cells (data_type "s"): a leading = + - @ never becomes a formula
    cell = WriteOnlyCell(sheet, value=None if value == "" else value)
    if isinstance(value, str) and value:
        cell.data_type = "s"
    return cell


def header(column: str) -> str:
    """The header cell of a ledger column (``*unconfirmed*`` ones marked)."""
    return f"{column} (unconfirmed)" if column in UNCONFIRMED else column


def write_xlsx(rows: Iterable[EventRow], path: Path) -> int:
    """Write the ledger (sheet ``ledger``) and what each column means (``columns``); rows."""
    # open the target first: an unwritable path fails before any worksheet is started
    with path.open("wb") as out:
        book = Workbook(write_only=True)
        ledger = book.create_sheet(LEDGER_SHEET)
        ledger.append([header(c) for c in LEDGER_COLUMNS])
        count = 0
        for row in rows:
            record = ledger_row(row)
            ledger.append([_cell(ledger, record[c]) for c in LEDGER_COLUMNS])
            count += 1
        notes = book.create_sheet(COLUMNS_SHEET)
        notes.append(["column", "from the event", "confidence"])
        for column in LEDGER_COLUMNS:
            source, confidence = COLUMN_NOTES[column]
            notes.append([_cell(notes, column), _cell(notes, source), _cell(notes, confidence)])
        book.save(out)
    return count
