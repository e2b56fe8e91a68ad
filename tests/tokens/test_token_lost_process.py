"""The station's token goes away while ``edge-agent run`` runs (SoftHSM2: its token folder is
moved away) and comes back: identifications fail with one clear error and sign nothing in the
meantime, the log says so once, and signing resumes with the same key when the token is back."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from edge_agent.station.control import request_identify
from tests.support.gateway import wait_until
from tests.support.tokens import Token, softhsm_token
from tests.tokens.test_token_end_to_end import Rig, identify, rig  # noqa: F401  (the rig fixture)

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Token:
    """SoftHSM2: its token can be taken away by moving a folder."""
    tok = softhsm_token(tmp_path / "softhsm")
    for name, value in tok.env.items():
        monkeypatch.setenv(name, value)
    return tok


def log_lines(text: str, contains: str) -> list[str]:
    return [line for line in text.splitlines() if contains in line]


def test_station_signs_nothing_while_its_token_is_away_then_resumes(
    rig: Rig,  # noqa: F811
    tmp_path: Path,
) -> None:
    tokens = rig.token.pin_file.parent / "tokens"
    station = rig.start_station()
    try:
        before = identify(station, 2)
        assert not rig.upstream_events.wait_for(before, 60)
        assert wait_until(lambda: rig.outbox_rows() == 0, 60)
        shutil.move(tokens, tmp_path / "away")
        for _ in range(3):
            answer = asyncio.run(request_identify(station.socket, [], 20.0))
            assert not answer["ok"], answer
            assert f"token '{rig.token.label}'" in answer["error"], answer
            assert "\n" not in answer["error"]
        # nothing was signed with anything else: no event stored, nothing forwarded
        assert rig.outbox_rows() == 0
        assert set(rig.upstream_events.counts) == set(before)
        lost = log_lines(station.err(), "nothing is signed until it is back")
        assert len(lost) == 1, station.err()
        assert json.loads(lost[0])["level"] == "error"
        assert "Traceback" not in station.err()
        shutil.move(tmp_path / "away", tokens)
        after = identify(station, 2)
        assert not rig.upstream_events.wait_for(before + after, 60)
        assert wait_until(lambda: rig.outbox_rows() == 0, 60)
        assert len(log_lines(station.err(), f"token key {rig.station_kid} is back")) == 1
    finally:
        station.close()
    # every event upstream once, each verified against the trust store holding the token key
    assert dict(rig.upstream_events.counts) == dict.fromkeys(before + after, 1)
