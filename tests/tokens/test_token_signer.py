"""The token signer against SoftHSM2 and a TPM 2.0 (swtpm + tpm2-pkcs11)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from pkcs11 import Attribute
from pkcs11 import exceptions as p11

from edge_agent.errors import TokenKeyError, TokenNotFoundError, TokenPinError
from edge_agent.event_codec import event_from_plain
from edge_agent.signing.algorithms import ES256, ESP256
from edge_agent.signing.events import sign_event, verify_event
from edge_agent.signing.keys import init_keys
from edge_agent.signing.signer import key_id
from edge_agent.signing.trust import StaticKeys
from edge_agent.tokens.configured import open_signer
from edge_agent.tokens.keys import create_key, find_key
from edge_agent.tokens.library import TokenSession
from edge_agent.tokens.signer import TokenSigner
from tests.conftest import ROOT
from tests.support.tokens import Token, write_pin

EXAMPLE = ROOT / "schemas" / "examples" / "healthy-lfp.json"


def make_key(token: Token, label: str = "station") -> bytes:
    """Create a key in the token; its kid."""
    with TokenSession(token.settings(label), rw=True) as tk:
        return key_id(create_key(tk).public_key)


def test_event_signed_in_the_token_verifies_with_its_public_key(token: Token) -> None:
    kid = make_key(token)
    with TokenSigner(token.settings()) as signer:
        assert signer.kid == kid and signer.alg == ESP256
        event = replace(event_from_plain(json.loads(EXAMPLE.read_text())), kid=kid.hex())
        message = sign_event(event, signer)
        verified = verify_event(message, StaticKeys.of(signer.public_key))
        assert verified.kid == kid and verified.alg == ESP256
        assert verified.event.event_id == event.event_id
        # ECDSA is randomised: two signatures differ, both verify
        assert sign_event(event, signer) != message


def test_legacy_ids_emit_es256(token: Token) -> None:
    make_key(token)
    with TokenSigner(token.settings(), legacy_alg_ids=True) as signer:
        assert signer.alg == ES256


def test_the_token_refuses_to_export_the_private_key(token: Token) -> None:
    make_key(token)
    with TokenSession(token.settings()) as tk:
        key = find_key(tk)
        assert key.provenance == {
            "sensitive": True,
            "extractable": False,
            "always_sensitive": True,
            "never_extractable": True,
            "local": True,
        }
        # SoftHSM2 answers CKR_ATTRIBUTE_SENSITIVE, tpm2-pkcs11 CKR_ATTRIBUTE_TYPE_INVALID
        with pytest.raises((p11.AttributeSensitive, p11.AttributeTypeInvalid)):
            key.private[Attribute.VALUE]


def test_a_second_init_is_refused_without_force(token: Token) -> None:
    first = make_key(token)
    with pytest.raises(TokenKeyError, match="--force"):
        make_key(token)
    with TokenSession(token.settings(), rw=True) as tk:
        second = key_id(create_key(tk, force=True).public_key)
    assert second != first
    with TokenSigner(token.settings()) as signer:
        assert signer.kid == second


def test_wrong_pin_is_a_pin_error(token: Token, tmp_path: Path) -> None:
    make_key(token)
    wrong = write_pin(tmp_path / "wrong-pin", "000000")
    with pytest.raises(TokenPinError, match="refused the PIN"):
        TokenSigner(token.settings(pin_file=wrong))


def test_missing_token_is_named(token: Token) -> None:
    make_key(token)
    with pytest.raises(TokenNotFoundError, match="no token labelled 'elsewhere'"):
        TokenSigner(replace(token.settings(), token_label="elsewhere"))


def test_deleted_key_fails_and_no_key_file_is_used_instead(token: Token, tmp_path: Path) -> None:
    make_key(token)
    with TokenSession(token.settings(), rw=True) as tk:
        key = find_key(tk)
        key.private.destroy()
    key_dir = tmp_path / "keys"
    init_keys(key_dir, "p256")  # a usable key file is right there: it must not be picked
    with pytest.raises(TokenKeyError, match="no private key labelled 'station'"):
        open_signer(key_dir=key_dir, pkcs11=token.settings())
