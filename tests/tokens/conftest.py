"""Token fixtures: ``token`` runs each test against SoftHSM2 and against a TPM 2.0 (swtpm)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.tokens import Token, running_swtpm, softhsm_token, swtpm_token


@pytest.fixture(params=["softhsm2", "tpm2"])
def token(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Token]:
    """An initialised token in tmp_path; its environment is set for in-process use too."""
    if request.param == "softhsm2":
        tok = softhsm_token(tmp_path / "softhsm")
        for name, value in tok.env.items():
            monkeypatch.setenv(name, value)
        yield tok
        return
    with running_swtpm(tmp_path / "swtpm") as tpm:
        tok = swtpm_token(tmp_path / "tpm2", tpm)
        for name, value in tok.env.items():
            monkeypatch.setenv(name, value)
        yield tok


@pytest.fixture
def softhsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Token:
    """A SoftHSM2 token only (for tests about the module and PIN plumbing)."""
    tok = softhsm_token(tmp_path / "softhsm")
    for name, value in tok.env.items():
        monkeypatch.setenv(name, value)
    return tok
