"""A token that goes away while a signer holds it (SoftHSM2: its token folder moved away):
signatures fail with a TokenError, one error line is logged, and signing resumes by itself
when the token is back, with the same key and never with another one. The same with swtpm
stopped and started again."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from edge_agent.errors import TokenError, TokenKeyError
from edge_agent.signing.signer import key_id
from edge_agent.tokens.keys import create_key, destroy_key, find_key
from edge_agent.tokens.library import TokenSession
from edge_agent.tokens.signer import TokenSigner, check_raw_signature
from tests.support.tokens import Token, running_swtpm, swtpm_token


def token_dir(token: Token) -> Path:
    return token.pin_file.parent / "tokens"


def test_signing_resumes_when_the_token_is_back(
    softhsm: Token, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = softhsm.settings("station")
    with TokenSession(settings, rw=True) as tk:
        create_key(tk)
    with TokenSigner(settings) as signer:
        kid = signer.kid
        assert check_raw_signature(signer.key.public_key, signer.sign(b"one"), b"one")
        shutil.move(token_dir(softhsm), tmp_path / "away")
        caplog.set_level(logging.WARNING, logger="edge_agent.tokens.signer")
        problems = []
        for _ in range(3):
            with pytest.raises(TokenError) as err:
                signer.sign(b"while away")
            problems.append(str(err.value))
        assert all("edge-test" in p and "\n" not in p for p in problems), problems
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "nothing is signed until it is back" in errors[0].message
        shutil.move(tmp_path / "away", token_dir(softhsm))
        raw = signer.sign(b"back")
        assert signer.kid == kid and check_raw_signature(signer.key.public_key, raw, b"back")
        assert [r.message for r in caplog.records if r.levelno == logging.WARNING] == [
            f"token key {kid.hex()} is back: signing again"
        ]


def test_a_replaced_key_is_never_used_by_a_signer_of_the_old_one(softhsm: Token) -> None:
    settings = softhsm.settings("station")
    with TokenSession(settings, rw=True) as tk:
        create_key(tk)
    with TokenSigner(settings) as signer:
        old = signer.kid
        with TokenSession(settings, rw=True) as tk:
            destroy_key(tk, find_key(tk))
            new = key_id(create_key(tk).public_key)
        for expected in ("vanished while signing", f"is now {new.hex()}, not {old.hex()}"):
            with pytest.raises(TokenKeyError, match=expected):
                signer.sign(b"x")


def test_signing_resumes_when_the_tpm_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # swtpm stopped (the TPM daemon gone), then started again on its state: a new port, so a
    # new TCTI, which tpm2-pkcs11 reads when the module is initialised again
    with running_swtpm(tmp_path / "swtpm") as tpm:
        token = swtpm_token(tmp_path / "tpm2", tpm)
        for name, value in token.env.items():
            monkeypatch.setenv(name, value)
        settings = token.settings("station")
        with TokenSession(settings, rw=True) as tk:
            create_key(tk)
        with TokenSigner(settings) as signer:
            kid = signer.kid
            tpm.stop()
            caplog.set_level(logging.WARNING, logger="edge_agent.tokens.signer")
            for _ in range(2):
                with pytest.raises(TokenError, match="edge-test"):
                    signer.sign(b"while away")
            assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1
            tpm.start()
            monkeypatch.setenv("TPM2_PKCS11_TCTI", tpm.tcti)
            raw = signer.sign(b"back")
            assert signer.kid == kid and check_raw_signature(signer.key.public_key, raw, b"back")


def test_two_signers_of_one_token_both_resume_and_keep_their_own_keys(
    softhsm: Token, tmp_path: Path
) -> None:
    # after the module is reset, session and object handles are numbered again: a signer
    # that was idle meanwhile must neither sign through nor close the other signer's session
    first, second = softhsm.settings("first"), softhsm.settings("second")
    for settings in (first, second):
        with TokenSession(settings, rw=True) as tk:
            create_key(tk)
    with TokenSigner(first) as a, TokenSigner(second) as b:
        shutil.move(token_dir(softhsm), tmp_path / "away")
        with pytest.raises(TokenError):
            a.sign(b"away")
        shutil.move(tmp_path / "away", token_dir(softhsm))
        assert check_raw_signature(a.key.public_key, a.sign(b"a1"), b"a1")  # a reset the module
        assert check_raw_signature(b.key.public_key, b.sign(b"b1"), b"b1")  # b reopens
        assert check_raw_signature(a.key.public_key, a.sign(b"a2"), b"a2")  # a's session lives
        assert a.kid != b.kid
