"""Station key files: creation modes, refusal to overwrite, refusal to load unsafe keys."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from edge_agent.errors import KeyFileError, SigningError
from edge_agent.signing.keys import (
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    init_keys,
    load_public_key,
    load_signer,
)
from edge_agent.signing.signer import key_id


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("alg", "ids"), [("ed25519", (-19, -8)), ("p256", (-9, -7))])
def test_init_writes_owner_only_key_and_public_key(
    tmp_path: Path, alg: str, ids: tuple[int, int]
) -> None:
    key_dir = tmp_path / "keys"
    old = os.umask(0)  # even a permissive umask must not widen the key file
    try:
        kid = init_keys(key_dir, alg)  # type: ignore[arg-type]
    finally:
        os.umask(old)
    assert len(kid) == 16
    assert _mode(key_dir / PRIVATE_KEY_FILE) == 0o600
    assert _mode(key_dir / PUBLIC_KEY_FILE) == 0o644
    assert _mode(key_dir) == 0o700
    assert (key_dir / PRIVATE_KEY_FILE).read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert key_id(load_public_key(key_dir / PUBLIC_KEY_FILE)) == kid
    assert load_signer(key_dir).kid == kid
    assert load_signer(key_dir).alg == ids[0]
    assert load_signer(key_dir, legacy_alg_ids=True).alg == ids[1]


def test_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    kid = init_keys(tmp_path, "ed25519")
    before = (tmp_path / PRIVATE_KEY_FILE).read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        init_keys(tmp_path, "p256")
    assert (tmp_path / PRIVATE_KEY_FILE).read_bytes() == before
    new = init_keys(tmp_path, "p256", force=True)
    assert new != kid and load_signer(tmp_path).kid == new
    assert _mode(tmp_path / PRIVATE_KEY_FILE) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [PRIVATE_KEY_FILE, PUBLIC_KEY_FILE]


def test_refuses_dangling_symlink_in_place_of_the_key(tmp_path: Path) -> None:
    (tmp_path / PRIVATE_KEY_FILE).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(KeyFileError):
        init_keys(tmp_path, "ed25519")
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602, 0o620])
def test_refuses_keys_others_can_access(tmp_path: Path, mode: int) -> None:
    init_keys(tmp_path, "ed25519")
    os.chmod(tmp_path / PRIVATE_KEY_FILE, mode)
    with pytest.raises(KeyFileError, match=f"{mode:04o}.*chmod 600"):
        load_signer(tmp_path)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_accepts_owner_only_keys(tmp_path: Path, mode: int) -> None:
    kid = init_keys(tmp_path, "p256")
    os.chmod(tmp_path / PRIVATE_KEY_FILE, mode)
    assert load_signer(tmp_path).kid == kid


def _write_key(path: Path, data: bytes) -> None:
    path.mkdir(exist_ok=True)
    fd = os.open(path / PRIVATE_KEY_FILE, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, data)
    os.close(fd)


def test_refuses_missing_malformed_and_foreign_keys(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match=r"not found.*keys init"):
        load_signer(tmp_path / "none")
    _write_key(
        tmp_path / "junk", b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n"
    )
    with pytest.raises(KeyFileError, match="not an unencrypted PKCS8"):
        load_signer(tmp_path / "junk")
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_key(tmp_path / "rsa", rsa_pem)
    with pytest.raises(KeyFileError, match="not Ed25519 or P-256"):
        load_signer(tmp_path / "rsa")
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_key(tmp_path / "p384", p384)
    with pytest.raises(KeyFileError, match=r"SECP384R1|unsupported"):
        load_signer(tmp_path / "p384")
    (tmp_path / "dir" / PRIVATE_KEY_FILE).mkdir(parents=True)
    os.chmod(tmp_path / "dir" / PRIVATE_KEY_FILE, 0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_signer(tmp_path / "dir")
    encrypted = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    _write_key(tmp_path / "enc", encrypted)
    with pytest.raises(KeyFileError):
        load_signer(tmp_path / "enc")


def test_public_key_errors(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="not found"):
        load_public_key(tmp_path / "nope.pem")
    (tmp_path / "bad.pem").write_text("hello")
    with pytest.raises(KeyFileError, match="not a PEM public key"):
        load_public_key(tmp_path / "bad.pem")


def test_unknown_algorithm_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="unknown key algorithm"):
        init_keys(tmp_path, "rsa")  # type: ignore[arg-type]
    assert not (tmp_path / PRIVATE_KEY_FILE).exists()
