"""Numbered schema migrations for SQLite and PostgreSQL, recorded in ``schema_version``.

Each migration is a list of statements per dialect; ``migrate`` applies the ones above the
stored version, each in its own transaction together with its ``schema_version`` row, so a
crash leaves the database at a whole version. Never edit a released migration: add one.
"""

from __future__ import annotations

from typing import Literal

Dialect = Literal["sqlite", "postgresql"]

_BLOB = {"sqlite": "BLOB", "postgresql": "BYTEA"}


def _v1(d: Dialect) -> list[str]:
    blob = _BLOB[d]
    return [
        f"""CREATE TABLE events (
            event_id TEXT PRIMARY KEY,
            site TEXT NOT NULL,
            station TEXT NOT NULL,
            kid TEXT NOT NULL,
            boot_epoch BIGINT NOT NULL,
            seq BIGINT NOT NULL,
            event_utc TEXT NOT NULL,
            received_utc TEXT NOT NULL,
            pack_code TEXT,
            disposition TEXT NOT NULL,
            transport_class TEXT NOT NULL,
            cose {blob} NOT NULL,
            body_json TEXT NOT NULL)""",
        "CREATE INDEX events_pack_code ON events (pack_code)",
        "CREATE INDEX events_event_utc ON events (event_utc)",
        """CREATE TABLE evidence (
            event_id TEXT NOT NULL REFERENCES events (event_id),
            sha256 TEXT NOT NULL,
            kind TEXT NOT NULL,
            media_type TEXT NOT NULL,
            size BIGINT NOT NULL,
            PRIMARY KEY (event_id, sha256))""",
        "CREATE INDEX evidence_sha256 ON evidence (sha256)",
    ]


def _v2(d: Dialect) -> list[str]:
    ident = "INTEGER PRIMARY KEY" if d == "sqlite" else "BIGINT GENERATED ALWAYS AS IDENTITY"
    return [
        """CREATE TABLE evidence_blobs (
            sha256 TEXT PRIMARY KEY,
            size BIGINT NOT NULL,
            stored_utc TEXT NOT NULL)""",
        f"""CREATE TABLE refusals (
            id {ident},
            received_utc TEXT NOT NULL,
            topic TEXT NOT NULL,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL,
            event_id TEXT,
            payload_sha256 TEXT NOT NULL)""",
        "CREATE INDEX refusals_received ON refusals (received_utc)",
    ]


def _v3(d: Dialect) -> list[str]:
    """Query columns for records (VIN, station, disposition) and the append-only rule."""
    statements = [
        "ALTER TABLE events ADD COLUMN vin TEXT",
        "CREATE INDEX events_vin ON events (vin)",
        "CREATE INDEX events_station ON events (site, station, event_utc)",
        "CREATE INDEX events_disposition ON events (disposition, event_utc)",
    ]
    tables = ("events", "evidence", "evidence_blobs")
    if d == "sqlite":
        for table in tables:
            for op in ("UPDATE", "DELETE"):
                statements.append(
                    f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'stored records are never changed'); END"
                )
    else:
        statements.append(
            "CREATE FUNCTION battrace_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'stored records are never changed'; END $$"
        )
        for table in tables:
            statements.append(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION battrace_append_only()"
            )
    return statements


def _v4(d: Dialect) -> list[str]:
    """``corrects`` as an indexed column (was a LIKE scan of body_json), backfilled."""
    # the backfill is the one UPDATE ever: the append-only trigger is lifted for it inside
    # this migration's transaction, so no other writer sees events unguarded
    if d == "sqlite":
        lift = ["DROP TRIGGER events_no_update"]
        backfill = (
            "UPDATE events SET corrects = json_extract(body_json, '$.corrects') "
            "WHERE json_type(body_json, '$.corrects') = 'text'"
        )
        restore = [
            "CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
            "BEGIN SELECT RAISE(ABORT, 'stored records are never changed'); END"
        ]
    else:
        lift = ["ALTER TABLE events DISABLE TRIGGER events_append_only"]
        backfill = (
            "UPDATE events SET corrects = body_json::jsonb ->> 'corrects' "
            "WHERE jsonb_typeof(body_json::jsonb -> 'corrects') = 'string'"
        )
        restore = ["ALTER TABLE events ENABLE TRIGGER events_append_only"]
    return [
        "ALTER TABLE events ADD COLUMN corrects TEXT",
        *lift,
        backfill,
        *restore,
        # partial: most events correct nothing; ``corrects = ?``/``IN``/``IS NOT NULL`` use it
        "CREATE INDEX events_corrects ON events (corrects) WHERE corrects IS NOT NULL",
    ]


MIGRATIONS = (_v1, _v2, _v3, _v4)
LATEST = len(MIGRATIONS)


def statements(version: int, dialect: Dialect) -> list[str]:
    """The SQL of migration ``version`` (1-based) for ``dialect``."""
    return MIGRATIONS[version - 1](dialect)
