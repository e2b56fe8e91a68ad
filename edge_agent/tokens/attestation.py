"""``keys attest``: evidence that the station's tpm2-pkcs11 key is resident in its TPM.

tpm2-pkcs11 keeps each key as TPM blobs in its store (``tpm2_pkcs11.sqlite3``): the public
area and the private blob wrapped by the token's primary key, and the key's auth value
encrypted (AES-256-GCM) with a wrapping key that is sealed in the TPM under the user PIN. This
module finds the key by its public point, loads it under the recorded primary, and has an
attestation key (AK, a primary in the endorsement hierarchy) certify it (TPM2_Certify), with
qualifying data binding the kid and the verifier's nonce. The evidence (JSON, format below)
also carries the EK's public area and certificate; the verifier is
``edge_agent.signing.tpm_attestation``.

Evidence (``version`` 1, all binary fields hex)::

    {"format": "edge-agent/tpm-attestation", "version": 1, "kid": "...", "nonce": "...",
     "key_public": TPMT_PUBLIC, "parent_public": TPMT_PUBLIC of the primary it was loaded under,
     "ak_public": TPMT_PUBLIC, "certify_info": TPMS_ATTEST, "signature": TPMT_SIGNATURE,
     "ek_public": TPMT_PUBLIC, "ek_certificate": DER}

A challenge from the gateway (``make_challenge``) is answered with ``activate``: only the TPM
holding the EK's private key, with the AK loaded, recovers the credential.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edge_agent.errors import TokenKeyError, TpmError
from edge_agent.signing.signer import key_id
from edge_agent.signing.tpm_structures import (
    EK_NV_INDEX_RSA,
    RH_ENDORSEMENT,
    ak_template,
    ek_template,
    qualifying_data,
)
from edge_agent.tokens.tpm import Tpm

EVIDENCE_FORMAT = "edge-agent/tpm-attestation"
STORE_FILE = "tpm2_pkcs11.sqlite3"
# tpm2-pkcs11 vendor attributes (CKA_VENDOR_DEFINED | 0x0F000000 | n)
CKA_TPM2_OBJAUTH_ENC = 0x8F000001
CKA_TPM2_PUB_BLOB = 0x8F000002
CKA_TPM2_PRIV_BLOB = 0x8F000003
CKA_CLASS, CKA_EC_POINT, CKO_PRIVATE_KEY = 0, 0x181, 3
_ATTR = re.compile(r'\?\s*!!int\s*"(\d+)"\s*:\s*!!(?:str|int|bool)\s*"([^"]*)"')


def store_dir(environ: dict[str, str] | None = None) -> Path:
    """Where tpm2-pkcs11 keeps its store: $TPM2_PKCS11_STORE, else its default places."""
    env = os.environ if environ is None else environ
    if env.get("TPM2_PKCS11_STORE"):
        return Path(env["TPM2_PKCS11_STORE"])
    for path in (Path.home() / ".tpm2_pkcs11", Path("/etc/tpm2_pkcs11")):
        if (path / STORE_FILE).exists():
            return path
    return Path("/etc/tpm2_pkcs11")


def tcti(environ: dict[str, str] | None = None) -> str:
    """The TCTI tpm2-pkcs11 uses: $TPM2_PKCS11_TCTI, else the kernel resource manager."""
    env = os.environ if environ is None else environ
    return env.get("TPM2_PKCS11_TCTI") or env.get("TPM2TOOLS_TCTI") or "device:/dev/tpmrm0"


def _attributes(yaml_text: str) -> dict[int, str]:
    """The scalar attributes of a tobject (tpm2-pkcs11 writes them as a flat YAML map)."""
    return {int(k): v for k, v in _ATTR.findall(yaml_text)}


def _point(public: ec.EllipticCurvePublicKey) -> bytes:
    return public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


class StoredKey:
    """A key's blobs and the token's seal object, as read from the tpm2-pkcs11 store."""

    def __init__(self, store: Path, token_label: str, public: ec.EllipticCurvePublicKey) -> None:
        path = store / STORE_FILE
        if not path.exists():
            raise TokenKeyError(f"no tpm2-pkcs11 store at {path} (set TPM2_PKCS11_STORE)")
        want = "04" + f"{65:02x}" + _point(public).hex()
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tok = db.execute(
                "SELECT tokens.id, pobjects.config, pobjects.objauth FROM tokens "
                "JOIN pobjects ON tokens.pid = pobjects.id WHERE tokens.label = ?",
                (token_label,),
            ).fetchone()
            if tok is None:
                raise TokenKeyError(f"no token {token_label!r} in the tpm2-pkcs11 store {path}")
            seal = db.execute(
                "SELECT userpub, userpriv, userauthsalt FROM sealobjects WHERE tokid = ?",
                (tok[0],),
            ).fetchone()
            rows = db.execute("SELECT attrs FROM tobjects WHERE tokid = ?", (tok[0],)).fetchall()
        except sqlite3.Error as exc:
            raise TokenKeyError(f"cannot read the tpm2-pkcs11 store {path}: {exc}") from None
        finally:
            db.close()
        match = [
            a
            for a in (_attributes(r[0]) for r in rows)
            if a.get(CKA_CLASS) == str(CKO_PRIVATE_KEY) and a.get(CKA_EC_POINT) == want
        ]
        if len(match) != 1:
            raise TokenKeyError(
                f"{len(match)} private keys with kid {key_id(public).hex()} in the store {path}"
            )
        found = re.search(r'"esys-tr"\s*:\s*!!str\s*"([0-9a-f]+)"', tok[1])
        if found is None:
            raise TokenKeyError(f"the token's primary key in {path} is not a persistent key")
        self.parent_handle = int(found.group(1)[:8], 16)
        self.parent_auth = bytes(tok[2] or "", "ascii")
        self.public_blob = bytes.fromhex(match[0][CKA_TPM2_PUB_BLOB])
        self.private_blob = bytes.fromhex(match[0][CKA_TPM2_PRIV_BLOB])
        self.auth_encrypted = bytes.fromhex(match[0][CKA_TPM2_OBJAUTH_ENC]).decode("ascii")
        if seal is None or not seal[0] or not seal[1]:
            raise TokenKeyError(f"token {token_label!r} in {path} has no user PIN set")
        self.seal_public, self.seal_private, self.seal_salt = (
            bytes(seal[0]),
            bytes(seal[1]),
            seal[2],
        )

    def object_auth(self, tpm: Tpm, pin: str) -> bytes:
        """The key's auth value: unseal the wrapping key with the PIN, decrypt the auth."""
        auth = hashlib.sha256(pin.encode() + self.seal_salt.encode()).digest()[:16].hex()
        handle = tpm.load(self.parent_handle, self.seal_public, self.seal_private, self.parent_auth)
        try:
            wrapping = bytes.fromhex(tpm.unseal(handle, auth.encode()).decode("ascii"))
        finally:
            tpm.flush(handle)
        iv, tag, ciphertext = (bytes.fromhex(p) for p in self.auth_encrypted.split(":"))
        return AESGCM(wrapping).decrypt(iv, ciphertext + tag, None)


def ek_certificate(tpm: Tpm) -> bytes:
    """The RSA EK certificate (DER) from its NV index, without the padding some TPMs add."""
    raw = tpm.nv_read_all(EK_NV_INDEX_RSA)
    if len(raw) < 4 or raw[0] != 0x30 or raw[1] != 0x82:
        raise TpmError("the EK certificate NV index does not hold a DER certificate")
    return raw[: 4 + int.from_bytes(raw[2:4], "big")]


def produce_evidence(
    public: ec.EllipticCurvePublicKey,
    *,
    token_label: str,
    pin: str,
    nonce: bytes,
    store: Path,
    tcti_text: str,
) -> dict[str, Any]:
    """Certify the station key by the AK and collect the evidence (see the module doc)."""
    kid = key_id(public)
    stored = StoredKey(store, token_label, public)
    with Tpm(tcti_text) as tpm:
        parent_public = tpm.read_public(stored.parent_handle)
        obj_auth = stored.object_auth(tpm, pin)
        ek_cert = ek_certificate(tpm)
        ek, ek_public = tpm.create_primary(RH_ENDORSEMENT, ek_template())
        tpm.flush(ek)
        key = tpm.load(
            stored.parent_handle, stored.public_blob, stored.private_blob, stored.parent_auth
        )
        try:
            ak, ak_public = tpm.create_primary(RH_ENDORSEMENT, ak_template())
            try:
                attest, signature = tpm.certify(key, obj_auth, ak, qualifying_data(kid, nonce))
            finally:
                tpm.flush(ak)
        finally:
            tpm.flush(key)
    return {
        "format": EVIDENCE_FORMAT,
        "version": 1,
        "kid": kid.hex(),
        "nonce": nonce.hex(),
        "key_public": stored.public_blob[2:].hex(),
        "parent_public": parent_public.hex(),
        "ak_public": ak_public.hex(),
        "certify_info": attest.hex(),
        "signature": signature.hex(),
        "ek_public": ek_public.hex(),
        "ek_certificate": ek_cert.hex(),
    }


def activate(challenge: dict[str, Any], *, tcti_text: str) -> bytes:
    """Answer a gateway challenge: the credential only this TPM's EK and AK can recover."""
    try:
        blob = bytes.fromhex(challenge["credential_blob"])
        secret = bytes.fromhex(challenge["encrypted_secret"])
    except (KeyError, TypeError, ValueError):
        raise TpmError("the challenge lacks credential_blob / encrypted_secret hex") from None
    with Tpm(tcti_text) as tpm:
        ak, _ = tpm.create_primary(RH_ENDORSEMENT, ak_template())
        try:
            ek, _ = tpm.create_primary(RH_ENDORSEMENT, ek_template())
            try:
                return tpm.activate_credential(ak, ek, blob, secret)
            except TpmError as exc:
                raise TpmError(
                    f"this TPM cannot answer the challenge (rc 0x{exc.rc:x}): it was made for "
                    "another EK or AK, or it is damaged",
                    rc=exc.rc,
                ) from None
            finally:
                tpm.flush(ek)
        finally:
            tpm.flush(ak)
