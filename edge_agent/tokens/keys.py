"""The P-256 key pair inside a token: find it by label, check it cannot leave, create it."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import Attribute, KeyType, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.constants import DEFAULT

from edge_agent.errors import TokenKeyError
from edge_agent.signing.signer import key_id
from edge_agent.tokens.library import TokenSession, context, translate

log = logging.getLogger(__name__)

# DER of the named curve prime256v1 / secp256r1 (OID 1.2.840.10045.3.1.7), as CKA_EC_PARAMS
P256_PARAMS = bytes.fromhex("06082a8648ce3d030107")
# what the token reports about where the private key came from and whether it can leave
PROVENANCE = (
    Attribute.SENSITIVE,
    Attribute.EXTRACTABLE,
    Attribute.ALWAYS_SENSITIVE,
    Attribute.NEVER_EXTRACTABLE,
    Attribute.LOCAL,
)


@dataclass(frozen=True)
class TokenKey:
    """The private key object, the public key, and what the token says about the private key."""

    private: Any  # pkcs11.PrivateKey with SignMixin
    public_key: ec.EllipticCurvePublicKey
    provenance: dict[str, bool]
    public: Any = None  # the public key object (pkcs11.PublicKey)
    label: str = ""  # CKA_LABEL both halves carry


def _point(der: bytes) -> bytes:
    """The SEC1 point from CKA_EC_POINT: a DER OCTET STRING (PKCS#11 2.40), or raw (some tokens)."""
    if len(der) >= 2 and der[0] == 0x04 and der[1] == len(der) - 2:
        return der[2:]
    return der


def _objects(tk: TokenSession, cls: ObjectClass, label: str | None = None) -> list[Any]:
    attrs = {Attribute.CLASS: cls, Attribute.LABEL: label or tk.settings.key_label}
    try:
        return list(tk.session.get_objects(attrs))
    except p11.PKCS11Error as exc:
        raise translate(exc, tk.settings, "searching for the key") from None


def find_key(tk: TokenSession, label: str | None = None) -> TokenKey:
    """The P-256 key pair labelled ``label`` (default: the configured key label);
    TokenKeyError if missing, ambiguous or exportable."""
    s = dataclasses.replace(tk.settings, key_label=label) if label else tk.settings
    where = f"token {s.token_label!r} ({s.module})"
    privates = _objects(tk, ObjectClass.PRIVATE_KEY, s.key_label)
    if not privates:
        raise TokenKeyError(
            f"no private key labelled {s.key_label!r} in {where}; create it with: "
            "edge-agent keys init --pkcs11 (a NEW key means a new kid every gateway must trust)",
            **context(s),
        )
    if len(privates) > 1:
        raise TokenKeyError(
            f"{len(privates)} private keys are labelled {s.key_label!r} in {where}", **context(s)
        )
    private = privates[0]
    try:
        key_type = private[Attribute.KEY_TYPE]
        key_id_attr = private[Attribute.ID]
        flags = {a.name.lower(): bool(private[a]) for a in PROVENANCE}
        # matched by CKA_ID, not label: a relabelling cut short leaves the halves' labels apart
        publics = list(
            tk.session.get_objects(
                {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.ID: key_id_attr}
            )
        )
        if len(publics) != 1:
            raise TokenKeyError(
                f"{where} holds {len(publics)} public keys for {s.key_label!r} (need exactly one "
                "with the private key's CKA_ID)",
                **context(s),
            )
        params = publics[0][Attribute.EC_PARAMS] if key_type == KeyType.EC else b""
        point = publics[0][Attribute.EC_POINT] if params == P256_PARAMS else b""
    except p11.PKCS11Error as exc:
        raise translate(exc, s, "reading the key's attributes") from None
    if key_type != KeyType.EC or params != P256_PARAMS:
        raise TokenKeyError(f"key {s.key_label!r} in {where} is not a P-256 key", **context(s))
    if not flags["sensitive"] or flags["extractable"]:
        raise TokenKeyError(
            f"key {s.key_label!r} in {where} can be exported (CKA_SENSITIVE false or "
            "CKA_EXTRACTABLE true); create a new one with edge-agent keys init --pkcs11",
            **context(s),
        )
    try:
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _point(point))
    except ValueError:
        raise TokenKeyError(
            f"key {s.key_label!r} in {where}: the public point is not on P-256", **context(s)
        ) from None
    return TokenKey(
        private=private, public_key=public, provenance=flags, public=publics[0], label=s.key_label
    )


def has_key(tk: TokenSession, label: str) -> bool:
    """Whether a private key labelled ``label`` is in the token."""
    return bool(_objects(tk, ObjectClass.PRIVATE_KEY, label))


def relabel_key(tk: TokenSession, key: TokenKey, label: str) -> None:
    """Give both halves of ``key`` the label ``label`` (CKA_LABEL; the key itself stays)."""
    try:
        # the private key first: find_key looks it up by label and its public half by CKA_ID
        key.private[Attribute.LABEL] = label
        key.public[Attribute.LABEL] = label
    except p11.PKCS11Error as exc:
        raise translate(exc, tk.settings, f"relabelling key {key.label!r} as {label!r}") from None


def destroy_key(tk: TokenSession, key: TokenKey) -> None:
    """Destroy both halves of ``key`` inside the token (the private key first)."""
    try:
        key.private.destroy()
        key.public.destroy()
    except p11.PKCS11Error as exc:
        raise translate(exc, tk.settings, f"destroying key {key.label!r}") from None


def create_key(tk: TokenSession, *, force: bool = False, label: str | None = None) -> TokenKey:
    """Generate a P-256 pair labelled ``label`` (default: the configured key label) inside the
    token (sensitive, never extractable); refuse a replace."""
    s = dataclasses.replace(tk.settings, key_label=label) if label else tk.settings
    existing = _objects(tk, ObjectClass.PRIVATE_KEY, s.key_label)
    existing += _objects(tk, ObjectClass.PUBLIC_KEY, s.key_label)
    if existing and not force:
        raise TokenKeyError(
            f"token {s.token_label!r} already holds a key labelled {s.key_label!r}; pass "
            "--force to replace it (a new key means a new kid every gateway must trust)",
            **context(s),
        )
    try:
        for obj in existing:
            obj.destroy()
        params = tk.session.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: P256_PARAMS}, local=True
        )
        # Only what a station key needs: tpm2-pkcs11 refuses templates that contradict the
        # TPM object (encrypt/derive flags), so those stay unset instead of False.
        params.generate_keypair(
            store=True,
            label=s.key_label,
            id=os.urandom(16),
            capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
            public_template={
                Attribute.VERIFY: True,
                Attribute.ENCRYPT: DEFAULT,
                Attribute.WRAP: DEFAULT,
            },
            private_template={
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.SIGN: True,
                Attribute.DECRYPT: DEFAULT,
                Attribute.UNWRAP: DEFAULT,
                Attribute.DERIVE: DEFAULT,
            },
        )
    except p11.PKCS11Error as exc:
        raise translate(exc, s, "creating the key") from None
    key = find_key(tk, s.key_label)
    log.info("created P-256 key %s as %s", key_id(key.public_key).hex(), s.describe())
    return key
