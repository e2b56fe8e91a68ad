"""Corrections in records (issue 17): the ``corrects`` column answers what the LIKE scan over
body_json answered, for chains and decoys, through the index, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from edge_agent.ingest.db import Database, Params
from edge_agent.ingest.evidence import EvidenceStore
from edge_agent.ingest.records import (
    Query,
    corrected_by,
    export_rows,
    find_with_links,
    superseded,
    verify_all,
    verify_row,
)
from edge_agent.ingest.store import EventStore
from tests.ingest.helpers import correction_chain, links_from_bodies, station_and_trust

CODE = "03HPB0DA0001B1D8A0000001"


def test_chains_and_decoys_give_the_answers_of_the_bodies(db_url: str, tmp_path: Path) -> None:
    station, trust = station_and_trust(tmp_path)
    chain = correction_chain(station, trust)
    a, b, c, d, decoy = (r.event_id for r in chain)
    assert f'"corrects": "{a}"' in chain[4].body_json  # the decoy holds the mark's text
    with Database(db_url) as db:
        store = EventStore(db)
        store.store(chain)
        ids = [r.event_id for r in chain]
        assert corrected_by(store, ids) == links_from_bodies(chain) == {a: d, b: c}
        assert corrected_by(store, [decoy, c]) == {}
        assert superseded(store) == {a, b}
        lines = find_with_links(store, Query(pack_code=CODE))
        assert [(x["event_id"], x["corrects"], x["corrected_by"]) for x in lines] == [
            (a, None, d),
            (b, a, c),
            (c, b, None),
            (d, a, None),
            (decoy, None, None),
        ]
        assert [r.event_id for r in export_rows(store, Query())] == [c, d, decoy]
        assert verify_all(store, trust, EvidenceStore(tmp_path / "evidence")).ok


def test_a_corrects_column_unlike_the_signed_body_is_a_mismatch(tmp_path: Path) -> None:
    station, trust = station_and_trust(tmp_path)
    chain = correction_chain(station, trust)
    assert verify_row(chain[1], trust) == ""
    for row, forged in ((chain[1], None), (chain[4], chain[0].event_id)):
        assert "query columns" in verify_row(replace(row, corrects=forged), trust)


def _plan(db: Database, sql: str, params: Params) -> list[str]:
    if db.dialect == "sqlite":
        return [str(r[-1]) for r in db.query(f"EXPLAIN QUERY PLAN {sql}", params)]
    return [str(r[0]) for r in db.query(f"EXPLAIN {sql}", params)]


def test_correction_lookups_read_the_index_not_the_table(db_url: str, tmp_path: Path) -> None:
    station, trust = station_and_trust(tmp_path)
    chain = correction_chain(station, trust)
    with Database(db_url) as db:
        store = EventStore(db)
        store.store(chain)
        if db.dialect == "postgresql":  # a table this small is scanned unless scans cost more
            db.query("SET enable_seqscan = off")
        seen: list[tuple[str, Params]] = []
        query = db.query

        def recording(sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
            seen.append((sql, params))
            return query(sql, params)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(db, "query", recording)
            corrected_by(store, [r.event_id for r in chain])
            superseded(store)
        assert len(seen) == 2
        for sql, params in seen:
            plan = _plan(db, sql, params)
            assert any("events_corrects" in step for step in plan), (sql, plan)
            assert not any(s == "SCAN events" or "Seq Scan on events" in s for s in plan), plan
