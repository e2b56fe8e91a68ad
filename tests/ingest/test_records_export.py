"""``records export`` as XLSX and passport-style JSON, and corrections in records, on SQLite
and PostgreSQL: the workbook read back equals the CSV, formulas stay text, the passport
validates against its schema and follows a correction, bad arguments leave no file."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

import jsonschema
import openpyxl
import pytest

from edge_agent.cli import main
from edge_agent.ingest.db import Database
from edge_agent.ingest.ledger_xlsx import UNCONFIRMED
from edge_agent.ingest.store import EventRow, EventStore
from edge_agent.model import Consignor, IntakeRecord
from tests.ingest.helpers import new_event, signed_row, station_and_trust

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "passport-export.schema.json").read_text())
CODE = "03HPB0DA0001B1D8A0000001"
FORMULAS = ('=HYPERLINK("http://x","y")', "@SUM(A1:A2)", "+1+1", "-2+3")


def _stored(db_url: str, rows: list[EventRow]) -> None:
    with Database(db_url) as db:
        EventStore(db).store(rows)


def test_xlsx_equals_csv_and_formulas_stay_text(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    station, trust = station_and_trust(tmp_path)
    rows = []
    for i, text in enumerate(FORMULAS):
        intake = IntakeRecord(
            technician=text, consignor=Consignor(name=f"{text} {i}"), eu_status="waste"
        )
        rows.append(signed_row(station, trust, new_event(station, intake=intake)))
    _stored(db_url, rows)
    csv_path, xlsx_path = tmp_path / "ledger.csv", tmp_path / "ledger.xlsx"
    base = ["records", "export", "--database", db_url, "--from", "2026-11-27", "--to", "2026-11-27"]
    assert main([*base, "-o", str(csv_path)]) == 0
    assert main([*base, "--format", "xlsx", "-o", str(xlsx_path)]) == 0
    assert "4 records" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.part"))
    table = list(csv.reader(io.StringIO(csv_path.read_text(encoding="utf-8"))))
    book = openpyxl.load_workbook(xlsx_path)
    sheet = book["ledger"]
    cells = list(sheet.iter_rows())
    header = [str(c.value) for c in cells[0]]
    assert [h.removesuffix(" (unconfirmed)") for h in header] == table[0]
    assert "consignor_name (unconfirmed)" in header and "pack_code" in header
    assert len(cells) == len(table) == 5
    for xrow, crow in zip(cells[1:], table[1:], strict=True):
        for cell, text in zip(xrow, crow, strict=True):
            assert cell.data_type != "f", cell.value
            # the CSV prefixes a formula-like cell with ', the workbook keeps it as text
            expected = text[1:] if text[:2] in ("'=", "'+", "'-", "'@") else text
            assert ("" if cell.value is None else str(cell.value)) == expected
    technicians = [r[header.index("technician")].value for r in cells[1:]]
    assert sorted(technicians) == sorted(FORMULAS)  # event-id order, ids made in one ms
    notes = {r[0].value: r[2].value for r in book["columns"].iter_rows(min_row=2)}
    assert set(notes) == set(table[0])
    assert {c for c, note in notes.items() if "unconfirmed" in str(note)} == UNCONFIRMED


def test_passport_follows_a_correction_and_validates(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    station, trust = station_and_trust(tmp_path)
    first = new_event(station, pack=replace(new_event(station).pack, battery_type="lfp"))
    fixed = new_event(
        station,
        pack=replace(first.pack, battery_type="ncm", rated_capacity_ah=150.0),
        intake=IntakeRecord(eu_status="for_repurposing", eu_category="ev"),
        corrects=first.event_id,
    )
    _stored(db_url, [signed_row(station, trust, first), signed_row(station, trust, fixed)])
    # find shows the link both ways
    assert main(["records", "find", CODE, "--database", db_url]) == 0
    lines = {
        line["event_id"]: line for line in map(json.loads, capsys.readouterr().out.splitlines())
    }
    assert lines[first.event_id]["corrected_by"] == fixed.event_id
    assert lines[first.event_id]["corrects"] is None
    assert lines[fixed.event_id]["corrects"] == first.event_id
    assert lines[fixed.event_id]["corrected_by"] is None
    # the ledger and the passport use the correction; the original stays stored
    assert main(["records", "export", "--database", db_url, "--format", "json"]) == 0
    ledger = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(r["event_id"], r["battery_type"], r["corrects"]) for r in ledger] == [
        (fixed.event_id, "ncm", first.event_id)
    ]
    out = tmp_path / "passports"
    out.mkdir()
    argv = ["records", "export", "--database", db_url, "--format", "passport", "-o", str(out)]
    assert main([*argv, "--trust-store", str(tmp_path / "trust.json")]) == 0
    assert [p.name for p in out.iterdir()] == [f"{CODE}.json"]
    doc = json.loads((out / f"{CODE}.json").read_text(encoding="utf-8"))
    jsonschema.validate(doc, SCHEMA)
    assert doc["chemistry"] == "ncm" and doc["ratings"]["rated_capacity_ah"] == 150.0
    assert (doc["status"], doc["status_source"]) == ("for_repurposing", "intake.eu_status")
    assert doc["battery_category"] == "ev"
    sources = doc["source_events"]
    assert [s["event_id"] for s in sources] == [fixed.event_id, first.event_id]
    assert sources[0]["corrects"] == first.event_id
    assert {s["kid"] for s in sources} == {station.signer.kid.hex()}
    assert all(s["signature_reverified"] is True for s in sources)
    assert "status" in doc["unconfirmed"]
    # JSON lines to stdout: the same document, signatures not re-checked
    capsys.readouterr()
    assert main(argv[:-2]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    streamed = json.loads(line)
    jsonschema.validate(streamed, SCHEMA)
    assert streamed["source_events"][0]["signature_reverified"] is None
    with Database(db_url) as db:
        assert EventStore(db).count() == 2


def test_bad_arguments_one_line_and_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'ingest.sqlite3'}"
    station, trust = station_and_trust(tmp_path)
    _stored(url, [signed_row(station, trust, new_event(station))])
    out = tmp_path / "out"
    out.mkdir()
    base = ["records", "export", "--database", url]
    capsys.readouterr()  # the key set-up's log lines
    for argv in (
        [*base, "--from", "2026-13-40", "-o", str(out / "a.csv")],
        [*base, "--to", "tomorrow", "--format", "xlsx", "-o", str(out / "a.xlsx")],
        [*base, "--from", "2026-11-01'; --", "--format", "passport", "-o", str(out)],
        [*base, "--format", "xlsx"],
        [*base, "--format", "ods", "-o", str(out / "a.ods")],
        [*base, "-o", str(out / "missing" / "a.csv")],
        [*base, "--format", "xlsx", "-o", str(out / "missing" / "a.xlsx")],
        [*base, "--format", "passport", "-o", str(out / "missing")],
    ):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, (argv, err)
        assert not list(out.rglob("*")), argv
