"""Ingest fixtures: a PostgreSQL server of the tests' own, ``db_url`` for both databases, the
gateway rig (site + upstream brokers, stations) from tests/support/gateway.py, and the
evidence store (a folder, or a bucket on a moto S3 server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.gateway import pki, recorder, rig  # noqa: F401
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401
from tests.support.s3 import moto_server, s3_evidence  # noqa: F401


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: an SQLite file, or a new database on the test PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ingest.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(params=["filesystem"])
def evidence(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, object]:
    """Settings overrides for the evidence store: none (the folder in data_dir), or
    ``{"evidence": ...}`` for a new bucket on the session's moto S3 server (param ``s3``)."""
    if request.param == "filesystem":
        return {}
    return {"evidence": s3_evidence(request.getfixturevalue("moto_server"), tmp_path)}
