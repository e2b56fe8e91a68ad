"""One small database seam over sqlite3 and psycopg 3: transactions, ``?`` parameters, migrate.

SQL is written once with ``?`` placeholders (never string-formatted values) and rewritten to
psycopg's ``%s`` for PostgreSQL. SQLite runs in WAL mode with ``synchronous=FULL``: a
committed batch is on disk before the broker is acknowledged. ``Tx.bulk_insert`` is
PostgreSQL's COPY (one stream per table, no per-row statement) and a plain executemany on
SQLite; a key already stored makes it raise ``DuplicateRowError``.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from edge_agent.errors import DuplicateRowError, IngestError
from edge_agent.ingest.migrations import LATEST, Dialect, statements

Params = Sequence[Any]
# pg_advisory_xact_lock key: one migrator at a time when several workers start together
_MIGRATION_LOCK = 0x62617474
_PG_UNIQUE_VIOLATION = "23505"
_SQLITE_DUPLICATE = frozenset({"SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE"})


class Tx(Protocol):
    """The calls a transaction offers."""

    def execute(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Run one statement; rows if it returns any."""
        ...

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        """Run one statement for many parameter rows."""
        ...

    def bulk_insert(self, table: str, columns: Sequence[str], rows: Sequence[Params]) -> None:
        """Insert rows (no ON CONFLICT); DuplicateRowError if a key is already stored."""
        ...


class Database:
    """A connection to the ingest database (SQLite file or PostgreSQL server)."""

    def __init__(self, url: str) -> None:
        self.url = url
        # one transaction at a time on this connection (the worker and a reader may share it)
        self._lock = threading.RLock()
        self.dialect: Dialect
        try:
            if url.startswith("sqlite:///"):
                self.dialect = "sqlite"
                path = Path(url[len("sqlite:///") :])
                path.parent.mkdir(parents=True, exist_ok=True)
                self._sqlite = sqlite3.connect(
                    path, isolation_level=None, check_same_thread=False, timeout=30
                )
                self._sqlite.execute("PRAGMA journal_mode=WAL")
                self._sqlite.execute("PRAGMA synchronous=FULL")
                self._sqlite.execute("PRAGMA foreign_keys=ON")
            elif url.startswith(("postgresql://", "postgres://")):
                import psycopg

                self.dialect = "postgresql"
                self._pg = psycopg.connect(url, autocommit=True)
            else:
                raise IngestError(f"database must be sqlite:///PATH or postgresql://...: {url!r}")
        except (sqlite3.Error, OSError) as exc:
            raise IngestError(f"cannot open {url}: {exc}") from exc
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg"):
                raise IngestError(f"cannot connect to the database: {exc}") from exc
            raise

    def close(self) -> None:
        """Close the connection."""
        if self.dialect == "sqlite":
            self._sqlite.close()
        else:
            self._pg.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One transaction: committed when the block ends, rolled back on an exception."""
        with self._lock, self._translated():
            if self.dialect == "sqlite":
                with _SqliteTx(self._sqlite) as tx:
                    yield tx
            else:
                with self._pg.transaction(), self._pg.cursor() as cur:
                    yield _PgTx(cur)

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except IngestError:
            raise
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorname", "") in _SQLITE_DUPLICATE:
                raise DuplicateRowError(f"database error: {exc}") from exc
            raise IngestError(f"database error: {exc}") from exc
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg"):
                if getattr(exc, "sqlstate", None) == _PG_UNIQUE_VIOLATION:
                    raise DuplicateRowError(f"database error: {exc}") from exc
                raise IngestError(f"database error: {exc}") from exc
            raise

    def query(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Rows of one read-only statement."""
        with self.transaction() as tx:
            return tx.execute(sql, params)

    def version(self) -> int:
        """The applied schema version (0 for an empty database)."""
        with self.transaction() as tx:
            if self.dialect == "postgresql":
                tx.execute("SELECT pg_advisory_xact_lock(?)", [_MIGRATION_LOCK])
            tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)")
            rows = tx.execute("SELECT MAX(version) FROM schema_version")
        return int(rows[0][0] or 0)

    def migrate(self, target: int = LATEST) -> int:
        """Apply the migrations above the stored version up to ``target``; the new version."""
        current = self.version()
        if current > LATEST:
            raise IngestError(f"database schema {current} is newer than this program ({LATEST})")
        for version in range(current + 1, target + 1):
            with self.transaction() as tx:
                if self.dialect == "postgresql":
                    tx.execute("SELECT pg_advisory_xact_lock(?)", [_MIGRATION_LOCK])
                    done = tx.execute("SELECT 1 FROM schema_version WHERE version = ?", [version])
                    if done:
                        continue
                for sql in statements(version, self.dialect):
                    tx.execute(sql)
                tx.execute("INSERT INTO schema_version (version) VALUES (?)", [version])
        return self.version()


_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _target(table: str, columns: Sequence[str]) -> str:
    """``table (col, ...)`` for a bulk insert; the names come from the code, checked anyway."""
    if not all(_NAME.fullmatch(name) for name in (table, *columns)):
        raise IngestError(f"bad table or column name in a bulk insert into {table[:64]!r}")
    return f"{table} ({', '.join(columns)})"


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> _SqliteTx:
        self._conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type else "COMMIT")

    def execute(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        self._conn.executemany(sql, rows)

    def bulk_insert(self, table: str, columns: Sequence[str], rows: Sequence[Params]) -> None:
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT INTO {_target(table, columns)} VALUES ({marks})"  # noqa: S608 (names checked)
        self._conn.executemany(sql, rows)


class _PgTx:
    def __init__(self, cur: Any) -> None:
        self._cur = cur

    def execute(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        self._cur.execute(sql.replace("?", "%s"), params)
        return list(self._cur.fetchall()) if self._cur.description else []

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        if rows:
            self._cur.executemany(sql.replace("?", "%s"), rows)

    def bulk_insert(self, table: str, columns: Sequence[str], rows: Sequence[Params]) -> None:
        if rows:
            with self._cur.copy(f"COPY {_target(table, columns)} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
