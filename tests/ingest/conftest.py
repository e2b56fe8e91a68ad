"""Ingest fixtures: a PostgreSQL server of the tests' own, ``db_url`` for both databases, the
gateway rig (site + upstream brokers, stations) from tests/support/gateway.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.gateway import pki, recorder, rig  # noqa: F401
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: an SQLite file, or a new database on the test PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ingest.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))
