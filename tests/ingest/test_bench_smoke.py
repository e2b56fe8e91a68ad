"""CI runs the ingest benchmark in smoke mode: it must work and print its table."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_real_part
from tests.support.bench import run_smoke
from tests.support.gateway import MOSQUITTO
from tests.support.postgres import pg_bin


@pytest.mark.timeout(300)
def test_bench_ingest_smoke() -> None:
    require_real_part(Path(MOSQUITTO).exists(), "mosquitto")
    require_real_part(pg_bin() is not None, "PostgreSQL server binaries (initdb, pg_ctl)")
    out = run_smoke("bench_ingest.py", timeout=280)
    lines = out.stdout.splitlines()
    one = next(ln for ln in lines if ln.startswith("ingest, 1 worker"))
    base = next(ln for ln in lines if ln.startswith("executemany INSERT (baseline)"))
    assert float(one[44:].split()[0]) > 0 and float(base[44:].split()[0]) > 0
    assert "ratio ingest/executemany:" in out.stdout
    checked = next(ln for ln in lines if ln.startswith("verify_sign1 + executemany (baseline)"))
    assert float(checked[44:].split()[0]) > 0
    assert "ratio ingest/(verify_sign1 + executemany):" in out.stdout
    assert "second worker gain:" in out.stdout
    assert "records find CODE among 10000 stored" in out.stdout
    links = next(ln for ln in lines if "with correction links (records find" in ln)
    assert float(links.split()[-3]) > 0  # median ms of the command a user runs
    # the per-event split and the ceiling the signature alone sets
    signature = next(ln for ln in lines if "of which the signature alone" in ln)
    assert float(signature.split()[-2]) > 0
    assert "with every other step free, ingest/executemany <=" in out.stdout
