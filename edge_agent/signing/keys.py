"""Station key files: create (owner-only from the first byte), load with permission checks."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge_agent.errors import KeyFileError, SigningError
from edge_agent.signing.algorithms import PublicKey
from edge_agent.signing.signer import SoftwareSigner, key_id

log = logging.getLogger(__name__)

PRIVATE_KEY_FILE = "station.key.pem"
PUBLIC_KEY_FILE = "station.pub.pem"
_MAX_KEY_FILE = 64 * 1024

__all__ = ["init_keys", "key_id", "load_public_key", "load_signer", "public_key_pem"]


def public_key_pem(public_key: PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM of a public key."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write a file that does not exist yet with ``mode`` set at creation (no readable window)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)  # the umask may only have removed bits; make the mode exact
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(path: Path, data: bytes, mode: int) -> None:
    """Write via a fresh temporary file and rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    _write_new(tmp, data, mode)
    os.replace(tmp, path)


def init_keys(
    key_dir: Path, alg: Literal["ed25519", "p256"] = "ed25519", *, force: bool = False
) -> bytes:
    """Create a station key pair in ``key_dir`` and return its kid; refuse to overwrite."""
    if alg == "ed25519":
        private: Ed25519PrivateKey | ec.EllipticCurvePrivateKey = Ed25519PrivateKey.generate()
    elif alg == "p256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        raise SigningError(f"unknown key algorithm {alg!r} (expected ed25519 or p256)")
    key_path, pub_path = key_dir / PRIVATE_KEY_FILE, key_dir / PUBLIC_KEY_FILE
    if key_dir.exists() and not key_dir.is_dir():
        raise KeyFileError(f"{key_dir} is a file, not a key folder")
    try:
        key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not force and (key_path.exists() or pub_path.exists()):
            raise KeyFileError(
                f"{key_path} already exists; pass --force to replace the station key"
            )
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write = _replace if force else _write_new
        write(key_path, pem, 0o600)
        write(pub_path, public_key_pem(private.public_key()), 0o644)
    except FileExistsError:
        raise KeyFileError(f"{key_path} already exists; pass --force to replace it") from None
    except OSError as exc:
        if isinstance(exc, KeyFileError):
            raise
        raise KeyFileError(f"cannot write keys in {key_dir}: {exc.strerror or exc}") from None
    kid = key_id(private.public_key())
    log.info("created %s station key %s in %s", alg, kid.hex(), key_dir)
    return kid


def _read_private(path: Path) -> bytes:
    """Read the private key file, refusing one that group or others may read or write."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        # `keys init` would make a new kid that no verifier trusts: say so rather than suggest it
        raise KeyFileError(
            f"private key not found: {path}; restore station.key.pem from this station's "
            "backup (`edge-agent keys init` would create a NEW identity, a new kid that every "
            "gateway and verifier must trust again)"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"cannot open private key {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)  # the file we opened, not whatever the path points to later
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"private key {path} is not a regular file")
        if st.st_mode & 0o077:
            raise KeyFileError(
                f"private key {path} has mode {stat.S_IMODE(st.st_mode):04o}; "
                f"it must be readable by its owner only (chmod 600 {path})"
            )
        if st.st_size > _MAX_KEY_FILE:
            raise KeyFileError(f"private key {path} is implausibly large ({st.st_size} bytes)")
        return os.read(fd, _MAX_KEY_FILE + 1)
    finally:
        os.close(fd)


def load_signer(key_dir: Path, *, legacy_alg_ids: bool = False) -> SoftwareSigner:
    """The station signer from ``key_dir``; KeyFileError if missing, unsafe or malformed."""
    path = key_dir / PRIVATE_KEY_FILE
    data = _read_private(path)
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(
            f"private key {path} is not an unencrypted PKCS8 PEM key: {exc}"
        ) from None
    if not isinstance(private, Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise KeyFileError(
            f"private key {path} is a {type(private).__name__}, not Ed25519 or P-256"
        )
    try:
        return SoftwareSigner(private, legacy_alg_ids=legacy_alg_ids)
    except SigningError as exc:
        raise KeyFileError(f"private key {path}: {exc}") from None


def parse_public_key(data: bytes, *, source: str = "public key") -> PublicKey:
    """A station public key (Ed25519 or P-256) from PEM bytes; KeyFileError otherwise."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{source} is not a PEM public key: {exc}") from None
    if isinstance(key, Ed25519PublicKey) or (
        isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
    ):
        return key
    raise KeyFileError(f"{source} is a {type(key).__name__}, not Ed25519 or P-256")


def load_public_key(path: Path) -> PublicKey:
    """A station public key from a PEM file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"public key not found: {path}") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read public key {path}: {exc.strerror}") from None
    return parse_public_key(data, source=str(path))
