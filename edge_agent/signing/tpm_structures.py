"""TPM 2.0 structures the attestation needs (TPM 2.0 Library spec part 2), pure: no I/O.

Big-endian marshalling of TPMT_PUBLIC (ECC and RSA), TPMS_ATTEST of a certify, TPMT_SIGNATURE,
object Names and qualified Names, and the KDFa / MakeCredential of part 1 section 24, so a
gateway checks evidence with ``cryptography`` alone and no TPM.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

ALG_RSA = 0x0001
ALG_SHA256 = 0x000B
ALG_NULL = 0x0010
ALG_ECDSA = 0x0018
ALG_ECC = 0x0023
ALG_AES = 0x0006
ALG_CFB = 0x0043
ECC_NIST_P256 = 0x0003
GENERATED_VALUE = 0xFF544347  # TPM_GENERATED_VALUE, "\xffTCG"
ST_ATTEST_CERTIFY = 0x8017
RH_OWNER = 0x40000001
RH_ENDORSEMENT = 0x4000000B

# TPMA_OBJECT bits
FIXED_TPM = 1 << 1
ST_CLEAR = 1 << 2
FIXED_PARENT = 1 << 4
SENSITIVE_DATA_ORIGIN = 1 << 5
USER_WITH_AUTH = 1 << 6
ADMIN_WITH_POLICY = 1 << 7
NO_DA = 1 << 10
ENCRYPTED_DUPLICATION = 1 << 11
RESTRICTED = 1 << 16
DECRYPT = 1 << 17
SIGN = 1 << 18
ATTRIBUTE_NAMES = {
    FIXED_TPM: "fixedTPM",
    ST_CLEAR: "stClear",
    FIXED_PARENT: "fixedParent",
    SENSITIVE_DATA_ORIGIN: "sensitiveDataOrigin",
    USER_WITH_AUTH: "userWithAuth",
    ADMIN_WITH_POLICY: "adminWithPolicy",
    NO_DA: "noDA",
    ENCRYPTED_DUPLICATION: "encryptedDuplication",
    RESTRICTED: "restricted",
    DECRYPT: "decrypt",
    SIGN: "sign",
}

# An attestation key: restricted ECDSA-P256/SHA-256 signing key, a primary in the endorsement
# hierarchy (the same template gives the same key every time, so the station keeps no state).
AK_ATTRIBUTES = (
    FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | USER_WITH_AUTH | RESTRICTED | SIGN
)
# TCG EK Credential Profile, template L-1 (RSA 2048), policy = PolicySecret(TPM_RH_ENDORSEMENT)
EK_POLICY = bytes.fromhex("837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa")
EK_ATTRIBUTES = FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | ADMIN_WITH_POLICY
EK_ATTRIBUTES |= RESTRICTED | DECRYPT
EK_NV_INDEX_RSA = 0x01C00002


class TpmFormatError(ValueError):
    """Bytes that are not the TPM structure they should be."""


class Reader:
    """A cursor over marshalled bytes; every read checks the length."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, n: int) -> bytes:
        """The next ``n`` bytes."""
        if n < 0 or self.at + n > len(self.data):
            raise TpmFormatError(f"truncated at byte {self.at} (need {n})")
        out = self.data[self.at : self.at + n]
        self.at += n
        return out

    def u8(self) -> int:
        """One byte."""
        return self.take(1)[0]

    def u16(self) -> int:
        """A big-endian UINT16."""
        return int(struct.unpack(">H", self.take(2))[0])

    def u32(self) -> int:
        """A big-endian UINT32."""
        return int(struct.unpack(">I", self.take(4))[0])

    def u64(self) -> int:
        """A big-endian UINT64."""
        return int(struct.unpack(">Q", self.take(8))[0])

    def tpm2b(self) -> bytes:
        """A size-prefixed buffer."""
        return self.take(self.u16())

    def end(self) -> None:
        """Fail if bytes are left over."""
        if self.at != len(self.data):
            raise TpmFormatError(f"{len(self.data) - self.at} trailing bytes")


def b2(data: bytes) -> bytes:
    """A TPM2B: UINT16 size, then the bytes."""
    return struct.pack(">H", len(data)) + data


@dataclass(frozen=True)
class TpmPublic:
    """A parsed TPMT_PUBLIC (ECC P-256 or RSA) and its marshalled bytes."""

    raw: bytes
    type: int
    name_alg: int
    attributes: int
    auth_policy: bytes
    ecc_point: tuple[int, int] | None = None
    rsa_modulus: int | None = None
    rsa_exponent: int = 65537
    scheme: int = ALG_NULL

    @property
    def name(self) -> bytes:
        """The object's Name: nameAlg || H(TPMT_PUBLIC)."""
        if self.name_alg != ALG_SHA256:
            raise TpmFormatError(f"name algorithm 0x{self.name_alg:04x} is not SHA-256")
        return struct.pack(">H", ALG_SHA256) + hashlib.sha256(self.raw).digest()

    def attribute_names(self) -> list[str]:
        """The set TPMA_OBJECT bits by name."""
        return [n for bit, n in ATTRIBUTE_NAMES.items() if self.attributes & bit]

    def ec_public_key(self) -> ec.EllipticCurvePublicKey:
        """The ECC P-256 public key; TpmFormatError for another type."""
        if self.ecc_point is None:
            raise TpmFormatError("not an ECC P-256 key")
        try:
            return ec.EllipticCurvePublicNumbers(*self.ecc_point, ec.SECP256R1()).public_key()
        except ValueError as exc:
            raise TpmFormatError(f"ECC point: {exc}") from None

    def rsa_public_key(self) -> rsa.RSAPublicKey:
        """The RSA public key; TpmFormatError for another type."""
        if self.rsa_modulus is None:
            raise TpmFormatError("not an RSA key")
        try:
            return rsa.RSAPublicNumbers(self.rsa_exponent, self.rsa_modulus).public_key()
        except ValueError as exc:
            raise TpmFormatError(f"RSA key: {exc}") from None


def parse_public(raw: bytes) -> TpmPublic:
    """Parse a TPMT_PUBLIC (no size prefix); ECC must be P-256."""
    r = Reader(raw)
    kind, name_alg, attributes = r.u16(), r.u16(), r.u32()
    policy = r.tpm2b()
    if kind == ALG_ECC:
        symmetric = r.u16()
        if symmetric != ALG_NULL:
            r.take(4)  # keyBits, mode
        scheme = r.u16()
        if scheme != ALG_NULL:
            r.u16()  # scheme hash
        curve, kdf = r.u16(), r.u16()
        if kdf != ALG_NULL:
            r.u16()
        if curve != ECC_NIST_P256:
            raise TpmFormatError(f"curve 0x{curve:04x} is not NIST P-256")
        x, y = r.tpm2b(), r.tpm2b()
        r.end()
        point = (int.from_bytes(x, "big"), int.from_bytes(y, "big"))
        return TpmPublic(raw, kind, name_alg, attributes, policy, ecc_point=point, scheme=scheme)
    if kind == ALG_RSA:
        symmetric = r.u16()
        if symmetric != ALG_NULL:
            r.take(4)
        scheme = r.u16()
        if scheme != ALG_NULL:
            r.u16()
        r.u16()  # keyBits
        exponent = r.u32() or 65537
        modulus = r.tpm2b()
        r.end()
        return TpmPublic(
            raw,
            kind,
            name_alg,
            attributes,
            policy,
            rsa_modulus=int.from_bytes(modulus, "big"),
            rsa_exponent=exponent,
        )
    raise TpmFormatError(f"object type 0x{kind:04x} is neither ECC nor RSA")


def ak_template() -> bytes:
    """TPMT_PUBLIC of the attestation key (unique empty: the TPM derives the key)."""
    params = struct.pack(">HHHHHH", ALG_NULL, ALG_ECDSA, ALG_SHA256, ECC_NIST_P256, ALG_NULL, 0)
    return struct.pack(">HHI", ALG_ECC, ALG_SHA256, AK_ATTRIBUTES) + b2(b"") + params + b2(b"")


def ek_template() -> bytes:
    """TPMT_PUBLIC of the RSA 2048 EK (TCG EK profile template L-1)."""
    params = struct.pack(">HHHHHI", ALG_AES, 128, ALG_CFB, ALG_NULL, 2048, 0)
    head = struct.pack(">HHI", ALG_RSA, ALG_SHA256, EK_ATTRIBUTES) + b2(EK_POLICY)
    return head + params + b2(bytes(256))


def qualified_name(parent_qualified: bytes, name: bytes) -> bytes:
    """QN = nameAlg || H(QN(parent) || Name) (part 1, 16.6)."""
    return struct.pack(">H", ALG_SHA256) + hashlib.sha256(parent_qualified + name).digest()


def hierarchy_qn(handle: int) -> bytes:
    """The qualified name of a hierarchy is its handle."""
    return struct.pack(">I", handle)


@dataclass(frozen=True)
class CertifyInfo:
    """A parsed TPMS_ATTEST of type certify."""

    qualified_signer: bytes
    extra_data: bytes
    clock: int
    reset_count: int
    restart_count: int
    safe: bool
    firmware_version: int
    name: bytes
    qualified_name: bytes


def parse_certify(raw: bytes) -> CertifyInfo:
    """Parse a TPMS_ATTEST; TpmFormatError unless it is a TPM-generated certify."""
    r = Reader(raw)
    if r.u32() != GENERATED_VALUE:
        raise TpmFormatError("magic is not TPM_GENERATED_VALUE")
    kind = r.u16()
    if kind != ST_ATTEST_CERTIFY:
        raise TpmFormatError(f"attestation type 0x{kind:04x} is not certify")
    signer, extra = r.tpm2b(), r.tpm2b()
    clock, resets, restarts, safe = r.u64(), r.u32(), r.u32(), r.u8()
    firmware = r.u64()
    name, qualified = r.tpm2b(), r.tpm2b()
    r.end()
    return CertifyInfo(
        signer, extra, clock, resets, restarts, bool(safe), firmware, name, qualified
    )


def parse_ecdsa_signature(raw: bytes) -> tuple[int, int]:
    """(r, s) of a TPMT_SIGNATURE that is ECDSA with SHA-256."""
    rd = Reader(raw)
    alg, hash_alg = rd.u16(), rd.u16()
    if alg != ALG_ECDSA or hash_alg != ALG_SHA256:
        raise TpmFormatError(f"signature 0x{alg:04x}/0x{hash_alg:04x} is not ECDSA/SHA-256")
    r_, s_ = rd.tpm2b(), rd.tpm2b()
    rd.end()
    return int.from_bytes(r_, "big"), int.from_bytes(s_, "big")


def kdfa(key: bytes, label: bytes, context_u: bytes, context_v: bytes, bits: int) -> bytes:
    """KDFa with HMAC-SHA-256 (part 1, 11.4.10.2)."""
    out = b""
    counter = 0
    while len(out) * 8 < bits:
        counter += 1
        block = struct.pack(">I", counter) + label + b"\0" + context_u + context_v
        out += hmac.new(key, block + struct.pack(">I", bits), hashlib.sha256).digest()
    return out[: bits // 8]


def make_credential(
    ek: TpmPublic, object_name: bytes, credential: bytes, seed: bytes
) -> tuple[bytes, bytes]:
    """TPM2_MakeCredential in software for an RSA EK: (TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET).

    Only the TPM holding the EK's private key, with ``object_name`` loaded, recovers
    ``credential`` (TPM2_ActivateCredential)."""
    label = padding.OAEP(
        mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=b"IDENTITY\0"
    )
    secret = ek.rsa_public_key().encrypt(seed, label)
    sym_key = kdfa(seed, b"STORAGE", object_name, b"", 128)
    encryptor = Cipher(algorithms.AES(sym_key), CFB(bytes(16))).encryptor()
    enc_identity = encryptor.update(b2(credential)) + encryptor.finalize()
    hmac_key = kdfa(seed, b"INTEGRITY", b"", b"", 256)
    outer = hmac.new(hmac_key, enc_identity + object_name, hashlib.sha256).digest()
    return b2(b2(outer) + enc_identity), b2(secret)


def qualifying_data(kid: bytes, nonce: bytes) -> bytes:
    """TPM2_Certify's qualifying data: binds the station kid and the verifier's nonce."""
    return hashlib.sha256(b"edge-agent/tpm-certify/v1\0" + kid + nonce).digest()
