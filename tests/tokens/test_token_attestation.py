"""TPM attestation of the station's tpm2-pkcs11 key: swtpm manufactured with an EK certificate
from a local test CA (swtpm_setup + swtpm_localca), evidence made by ``keys attest``, verified
in Python and recorded by ``gateway trust add``; tampered, foreign and mismatched evidence is
refused with one line."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge_agent.errors import AttestationError, TpmError
from edge_agent.signing.keys import public_key_pem
from edge_agent.signing.tpm_attestation import (
    check_activation,
    load_ca_file,
    make_challenge,
    verify_evidence,
)
from edge_agent.signing.trust import TrustStore
from edge_agent.tokens.attestation import activate, produce_evidence
from edge_agent.tokens.keys import create_key
from edge_agent.tokens.library import TokenSession
from tests.conftest import ROOT
from tests.support.tokens import USER_PIN, Swtpm, Token, running_swtpm, swtpm_token


@dataclass
class Station:
    """A manufactured swtpm, a tpm2-pkcs11 token with two keys, and evidence for both."""

    tpm: Swtpm
    token: Token
    public: ec.EllipticCurvePublicKey
    other: ec.EllipticCurvePublicKey
    evidence: dict[str, Any]
    other_evidence: dict[str, Any]
    cas: list[x509.Certificate]

    def produce(self, public: ec.EllipticCurvePublicKey, nonce: bytes) -> dict[str, Any]:
        return produce_evidence(
            public,
            token_label=self.token.label,
            pin=USER_PIN,
            nonce=nonce,
            store=Path(self.token.env["TPM2_PKCS11_STORE"]),
            tcti_text=self.tpm.tcti,
        )


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    root = tmp_path_factory.mktemp("attest")
    with running_swtpm(root / "swtpm", manufactured=True) as tpm:
        token = swtpm_token(root / "tpm2", tpm)
        with pytest.MonkeyPatch.context() as mp:
            for name, value in token.env.items():
                mp.setenv(name, value)
            with TokenSession(token.settings(), rw=True) as session:
                public = create_key(session, force=False).public_key
            with TokenSession(token.settings("other"), rw=True) as session:
                other = create_key(session, force=False).public_key
        assert tpm.ca_file is not None
        st = Station(tpm, token, public, other, {}, {}, load_ca_file(tpm.ca_file.read_bytes()))
        st.evidence = st.produce(public, b"gateway-nonce-01")
        st.other_evidence = st.produce(other, b"gateway-nonce-01")
        yield st


def test_good_evidence_verifies_and_is_recorded(station: Station, tmp_path: Path) -> None:
    result = verify_evidence(
        station.evidence,
        station_key=station.public,
        tpm_cas=station.cas,
        nonce=b"gateway-nonce-01",
    )
    assert not result.attested and not result.ak_bound_to_ek  # no activation yet
    assert result.ek_issuer == "CN=swtpm-localca"
    assert {"fixedTPM", "fixedParent", "sensitiveDataOrigin", "sign"} <= set(result.key_attributes)
    store = TrustStore(tmp_path / "trust.json")
    kid = store.add(public_key_pem(station.public), station="st-01", site="a", attestation=result)
    store.save()
    entry = TrustStore.load(tmp_path / "trust.json").entry(kid.hex())
    assert entry is not None and entry.attestation == result
    # re-adding the key without evidence keeps what was proven about it
    store.add(public_key_pem(station.public), station="st-01", site="b")
    again = store.entry(kid.hex())
    assert again is not None and again.attestation == result


def _refused(station: Station, evidence: dict[str, Any], reason: str, **kw: Any) -> None:
    with pytest.raises(AttestationError) as caught:
        verify_evidence(evidence, station_key=station.public, tpm_cas=station.cas, **kw)
    assert caught.value.reason == reason, str(caught.value)


def _flip(hex_text: str, at: int) -> str:
    raw = bytearray(bytes.fromhex(hex_text))
    raw[at] ^= 0x01
    return raw.hex()


def test_tampered_certify_is_refused(station: Station) -> None:
    evidence = copy.deepcopy(station.evidence)
    evidence["certify_info"] = _flip(evidence["certify_info"], 40)  # inside extraData
    _refused(station, evidence, "signature")


def test_tampered_nonce_or_kid_binding_is_refused(station: Station) -> None:
    evidence = copy.deepcopy(station.evidence)
    evidence["nonce"] = b"another-nonce".hex()
    _refused(station, evidence, "qualifying_data")
    _refused(station, station.evidence, "nonce", nonce=b"fresh-nonce")


def test_another_keys_certify_is_refused(station: Station) -> None:
    _refused(station, station.other_evidence, "wrong_key")
    # the other key's certify presented with this key's public area and kid
    forged = copy.deepcopy(station.other_evidence)
    forged["kid"], forged["key_public"] = station.evidence["kid"], station.evidence["key_public"]
    _refused(station, forged, "name_mismatch")


def test_ek_certificate_from_unknown_ca_is_refused(station: Station) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swtpm-localca")])
    now = dt.datetime.now(dt.UTC)
    foreign = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # same issuer name as the swtpm CA, another key: the signature decides
    with pytest.raises(AttestationError) as caught:
        verify_evidence(station.evidence, station_key=station.public, tpm_cas=[foreign])
    assert caught.value.reason == "ek_chain"


def test_ek_public_not_matching_the_certificate_is_refused(station: Station) -> None:
    evidence = copy.deepcopy(station.evidence)
    evidence["ek_public"] = _flip(evidence["ek_public"], 100)
    _refused(station, evidence, "ek_mismatch")


def test_credential_activation_binds_the_ak_to_the_ek(station: Station) -> None:
    challenge, credential = make_challenge(station.evidence)
    answer = activate(challenge, tcti_text=station.tpm.tcti)
    assert answer == credential
    check_activation(hashlib.sha256(credential).hexdigest(), answer)
    with pytest.raises(AttestationError):
        check_activation(hashlib.sha256(credential).hexdigest(), bytes(32))


def _cli(station: Station, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**station.token.process_env(), "PYTHONPATH": str(ROOT)}
    env.pop("EDGE_AGENT_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def _token_flags(token: Token) -> list[str]:
    return [
        "--pkcs11",
        "--module",
        str(token.module),
        "--token-label",
        token.label,
        "--key-label",
        "station",
        "--pin-file",
        str(token.pin_file),
    ]


def test_cli_attest_challenge_activate_and_trust_add(station: Station, tmp_path: Path) -> None:
    ca = str(station.tpm.ca_file)
    trust = ["gateway", "--trust-store", str(tmp_path / "trust.json"), "trust"]
    pub = tmp_path / "station.pem"
    pub.write_bytes(public_key_pem(station.public))
    nonce = "6e6f6e6365"
    done = _cli(station, "keys", "attest", "--out", str(tmp_path / "ev.json"), "--nonce", nonce,
                *_token_flags(station.token))  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = _cli(station, *trust, "challenge", str(tmp_path / "ev.json"), "--tpm-ca", ca,
                "--nonce", nonce, "--out", str(tmp_path / "challenge.json"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = _cli(station, "keys", "attest", "--activate", str(tmp_path / "challenge.json"),
                "--out", str(tmp_path / "answer.json"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = _cli(station, *trust, "add", str(pub), "--station", "st-01", "--site", "plant-a",
                "--attestation", str(tmp_path / "ev.json"), "--tpm-ca", ca, "--nonce", nonce,
                "--activation", str(tmp_path / "answer.json"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in _cli(station, *trust, "list").stdout.splitlines()]
    assert len(rows) == 1
    assert rows[0]["attested"] is True and rows[0]["ak_bound_to_ek"] is True
    assert rows[0]["ek_issuer"] == "CN=swtpm-localca"
    entry = TrustStore.load(tmp_path / "trust.json").entry(rows[0]["kid"])
    assert entry is not None and entry.attestation is not None
    assert entry.attestation.ak_bound_to_ek and entry.attestation.nonce == nonce
    # an answer is good once: the challenge is forgotten after the key is recorded
    again = _cli(station, *trust, "add", str(pub), "--station", "st-01", "--site", "plant-a",
                 "--attestation", str(tmp_path / "ev.json"), "--tpm-ca", ca,
                 "--activation", str(tmp_path / "answer.json"))  # fmt: skip
    _one_line(again, "attestation refused (activation)")


def _one_line(done: subprocess.CompletedProcess[str], contains: str) -> None:
    assert done.returncode != 0, done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and contains in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_cli_refuses_evidence_of_another_key_and_a_foreign_ca(
    station: Station, tmp_path: Path
) -> None:
    trust = ["gateway", "--trust-store", str(tmp_path / "trust.json"), "trust"]
    pub = tmp_path / "station.pem"
    pub.write_bytes(public_key_pem(station.public))
    other = tmp_path / "other.json"
    other.write_text(json.dumps(station.other_evidence))
    done = _cli(station, *trust, "add", str(pub), "--station", "st-01", "--site", "a",
                "--attestation", str(other), "--tpm-ca", str(station.tpm.ca_file))  # fmt: skip
    _one_line(done, "attestation refused (wrong_key)")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(station.evidence))
    lone_root = tmp_path / "other-vendor.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Other TPM Vendor Root")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(7)
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    lone_root.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    done = _cli(station, *trust, "add", str(pub), "--station", "st-01", "--site", "a",
                "--attestation", str(good), "--tpm-ca", str(lone_root))  # fmt: skip
    _one_line(done, "attestation refused (ek_chain)")
    assert not (tmp_path / "trust.json").exists()  # nothing was trusted
    # good evidence without --activation: trusted, recorded as not attested
    done = _cli(station, *trust, "add", str(pub), "--station", "st-01", "--site", "a",
                "--attestation", str(good), "--tpm-ca", str(station.tpm.ca_file))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "AK-EK binding is NOT proven" in done.stderr
    (row,) = [json.loads(line) for line in _cli(station, *trust, "list").stdout.splitlines()]
    assert row["attested"] is False and row["ak_bound_to_ek"] is False


def _forged_with_software_ak(station: Station) -> dict[str, Any]:
    """Evidence a station without that TPM can make: a software "AK" signing a made-up certify
    of the station key, with the real (public) EK certificate attached."""
    import struct

    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    from edge_agent.signing.tpm_structures import (
        AK_ATTRIBUTES,
        ALG_ECC,
        ALG_ECDSA,
        ALG_NULL,
        ALG_SHA256,
        ECC_NIST_P256,
        GENERATED_VALUE,
        RH_ENDORSEMENT,
        RH_OWNER,
        ST_ATTEST_CERTIFY,
        b2,
        hierarchy_qn,
        parse_public,
        qualified_name,
        qualifying_data,
    )

    soft = ec.generate_private_key(ec.SECP256R1())
    nums = soft.public_key().public_numbers()
    ak_raw = (
        struct.pack(">HHI", ALG_ECC, ALG_SHA256, AK_ATTRIBUTES)
        + b2(b"")
        + struct.pack(">HHHHH", ALG_NULL, ALG_ECDSA, ALG_SHA256, ECC_NIST_P256, ALG_NULL)
        + b2(nums.x.to_bytes(32, "big"))
        + b2(nums.y.to_bytes(32, "big"))
    )
    ak = parse_public(ak_raw)
    key = parse_public(bytes.fromhex(station.evidence["key_public"]))
    parent = parse_public(bytes.fromhex(station.evidence["parent_public"]))
    kid, nonce = bytes.fromhex(station.evidence["kid"]), b"forged"
    attest = (
        struct.pack(">IH", GENERATED_VALUE, ST_ATTEST_CERTIFY)
        + b2(qualified_name(hierarchy_qn(RH_ENDORSEMENT), ak.name))
        + b2(qualifying_data(kid, nonce))
        + bytes(17 + 8)
        + b2(key.name)
        + b2(qualified_name(qualified_name(hierarchy_qn(RH_OWNER), parent.name), key.name))
    )
    r, s = decode_dss_signature(soft.sign(attest, ec.ECDSA(hashes.SHA256())))
    signature = struct.pack(">HH", ALG_ECDSA, ALG_SHA256)
    signature += b2(r.to_bytes(32, "big")) + b2(s.to_bytes(32, "big"))
    return {
        **station.evidence,
        "nonce": nonce.hex(),
        "ak_public": ak_raw.hex(),
        "certify_info": attest.hex(),
        "signature": signature.hex(),
    }


def test_software_ak_passes_the_evidence_checks_but_not_credential_activation(
    station: Station,
) -> None:
    forged = _forged_with_software_ak(station)
    # what docs/signing.md says: without activation, the AK-EK binding is NOT proven
    result = verify_evidence(forged, station_key=station.public, tpm_cas=station.cas)
    assert result.ak_bound_to_ek is False and result.attested is False
    challenge, _ = make_challenge(forged)
    before = _loaded(station.tpm)
    with pytest.raises(TpmError, match="cannot answer the challenge"):  # no AK with that Name
        activate(challenge, tcti_text=station.tpm.tcti)
    assert _loaded(station.tpm) == before  # the failed command's objects and session flushed


def test_keys_attest_on_a_softhsm_token_is_one_clear_line(softhsm: Token, tmp_path: Path) -> None:
    from edge_agent.tokens.keys import create_key as make

    with TokenSession(softhsm.settings(), rw=True) as session:
        make(session, force=False)
    env = {**softhsm.process_env(), "PYTHONPATH": str(ROOT), "TPM2_PKCS11_STORE": str(tmp_path)}
    env.pop("EDGE_AGENT_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "edge_agent", "keys", "attest", "--out", str(tmp_path / "e.json"),
         *_token_flags(softhsm)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no tpm2-pkcs11 store" in lines[0], done.stderr
    assert not (tmp_path / "e.json").exists()


def test_keys_attest_without_an_ek_certificate_is_one_clear_line(tmp_path: Path) -> None:
    with running_swtpm(tmp_path / "swtpm") as tpm:  # not manufactured: no EK certificate
        token = swtpm_token(tmp_path / "tpm2", tpm)
        env = {**token.process_env(), "PYTHONPATH": str(ROOT)}
        env.pop("EDGE_AGENT_CONFIG", None)
        run = [sys.executable, "-m", "edge_agent", "keys"]
        made = subprocess.run(
            [*run, "init", *_token_flags(token)],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        done = subprocess.run(
            [*run, "attest", "--out", str(tmp_path / "e.json"), *_token_flags(token)],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "EK certificate index is missing" in lines[0], done.stderr
    assert not (tmp_path / "e.json").exists()


def _loaded(tpm: Swtpm) -> str:
    env = {"PATH": "/usr/bin:/bin", "TPM2TOOLS_TCTI": tpm.tcti}
    out = []
    for kind in ("handles-transient", "handles-loaded-session"):
        done = subprocess.run(
            ["tpm2_getcap", kind], env=env, capture_output=True, text=True, timeout=60, check=True
        )
        out.append(done.stdout)
    return "".join(out)


def test_evidence_and_activation_leave_no_object_or_session_loaded(station: Station) -> None:
    before = _loaded(station.tpm)
    evidence = station.produce(station.public, b"n")
    challenge, credential = make_challenge(evidence)
    assert activate(challenge, tcti_text=station.tpm.tcti) == credential
    assert _loaded(station.tpm) == before
