"""Hostile trust stores, topics and inputs for `verify` and the gateway: one line, exit 2."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.errors import ConfigError
from edge_agent.signing.signer import key_id
from edge_agent.signing.trust import MAX_TRUST_BYTES, TrustStore
from tests.support.cli import one_line_error


def _store_with(tmp_path: Path, **fields: object) -> Path:
    key = Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    kid = key_id(key.public_key()).hex()  # type: ignore[arg-type]
    entry = {"public_key": pem.decode(), **fields}
    path = tmp_path / "trust.json"
    path.write_text(json.dumps({"version": 1, "keys": {kid: entry}}))
    return path


def test_topic_not_utf8(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store = _store_with(tmp_path)
    line = one_line_error(capsys, "verify", "--trust", str(store), "--topic", "a\udcff")
    assert "--topic" in line and "UTF-8" in line


def test_deeply_nested_trust_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        TrustStore.load(path)
    one_line_error(capsys, "verify", "--trust", str(path), contains="nested too deeply")


def test_impossible_date(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = _store_with(tmp_path, not_after="2026-13-45T00:00:00Z")
    with pytest.raises(ConfigError) as caught:
        TrustStore.load(path)
    assert caught.value.key_path.endswith(".not_after")
    line = one_line_error(capsys, "verify", "--trust", str(path))
    assert "2026-13-45" in line and "not_after" in line


def test_dev_zero_refused_fast(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    one_line_error(capsys, "verify", "--trust", "/dev/zero", contains="not a regular file")
    assert time.monotonic() - started < 5


def test_fifo_refused_without_blocking(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    fifo = tmp_path / "trust.fifo"
    os.mkfifo(fifo)
    one_line_error(capsys, "verify", "--trust", str(fifo), contains="not a regular file")


def test_oversized_trust_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with path.open("wb") as fh:
        fh.truncate(MAX_TRUST_BYTES + 10)
    one_line_error(capsys, "verify", "--trust", str(path), contains="larger than")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.one_of(
        st.text(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=34), inner, max_size=4)
            ),
            max_leaves=30,
        ).map(lambda value: json.dumps({"version": 1, "keys": value})),
        st.dictionaries(
            st.sampled_from(["public_key", "station", "not_before", "not_after", "revoked"]),
            st.none() | st.booleans() | st.text(max_size=30),
        ).map(lambda entry: json.dumps({"version": 1, "keys": {"0" * 32: entry}})),
    )
)
def test_fuzz_trust_store_json(tmp_path: Path, text: str) -> None:
    """Any trust store text loads or raises ConfigError; nothing else escapes."""
    path = tmp_path / "fuzz.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        TrustStore.load(path)
    except ConfigError:
        pass
