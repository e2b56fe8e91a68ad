"""TokenKeyRing: the next key made in the token, the statement signed by the old token key, the
switch by labels (resumable after a crash), retire destroying the old key in the token.

SoftHSM2 only: swtpm has no resource manager here, and a rotation holds the active key loaded
while it creates the next one, which exhausts the emulated TPM's three object slots (a Pi uses
the kernel's /dev/tpmrm0, which swaps objects out)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge_agent.signing.keyring import NEXT_DIR, SWITCH_FILE
from edge_agent.signing.keys import load_public_key
from edge_agent.signing.rotation import _OnlyKey, verify_rotation
from edge_agent.signing.signer import key_id
from edge_agent.signing.trust import iso_utc
from edge_agent.station.rotation import KeyRotator
from edge_agent.tokens.keyring import STATE_DIR, TokenKeyRing
from edge_agent.tokens.keys import create_key, find_key, has_key, relabel_key
from edge_agent.tokens.library import TokenSession
from edge_agent.uplink.outbox import OutboxMessage
from edge_agent.uplink.topics import StationTopics
from tests.support.tokens import Token

TOPICS = StationTopics("plant-a", "st-01", prefix="site/v1")


def labels(token: Token) -> dict[str, str]:
    """label -> kid of every private key in the token."""
    from pkcs11 import Attribute, ObjectClass

    with TokenSession(token.settings("station")) as tk:
        names = [
            o[Attribute.LABEL]
            for o in tk.session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
        ]
        return {n: key_id(find_key(tk, n).public_key).hex() for n in names}


def test_rotate_switch_and_retire_inside_the_token(softhsm: Token, tmp_path: Path) -> None:
    token = softhsm
    with TokenSession(token.settings("station"), rw=True) as tk:
        old_kid = key_id(create_key(tk).public_key).hex()
    queued: list[OutboxMessage] = []
    switched: list[str] = []
    ring = TokenKeyRing(token.settings("station"), tmp_path / "keys")
    try:
        rotator = KeyRotator(
            keys=ring,
            signer=ring.active(),
            topics=TOPICS,
            enqueue=queued.extend,
            receipts=True,
            on_switch=lambda s: switched.append(s.kid.hex()),
        )
        started = rotator.rotate(alg="ed25519")  # the file keys' default: a token key is P-256
        assert started.old_kid == old_kid and not started.switched
        assert labels(token) == {"station": old_kid, "station.next": started.new_kid}
        assert ring.is_pending() and ring.statement() == queued[0].payload
        # the statement: signed outside by the old token key, inside by the new one
        verified = verify_rotation(
            queued[0].payload,
            _OnlyKey(bytes.fromhex(old_kid), ring.active().public_key),
            site="plant-a",
            station="st-01",
        )
        assert verified.rotation.new_kid.hex() == started.new_kid
        # a second rotation waits for the first
        again = TokenKeyRing(token.settings("station"), tmp_path / "keys")
        assert again.is_pending() and KeyRotator(
            keys=again, signer=again.active(), topics=TOPICS, enqueue=queued.extend,
            receipts=True, on_switch=lambda s: None,
        ).pending_id == started.rotation_id  # fmt: skip
        again.close()
        # the gateway accepted: the configured label names the new key now
        rotator._switch()
        assert switched == [started.new_kid] and rotator.signer.kid.hex() == started.new_kid
        assert labels(token) == {"station": started.new_kid, f"station.old.{old_kid}": old_kid}
        assert not ring.is_pending()
        pem = tmp_path / "keys" / STATE_DIR / "retired" / f"{old_kid}.pub.pem"
        assert key_id(load_public_key(pem)).hex() == old_kid
        (kept,) = ring.retired()
        assert (kept.kid, kept.rotated_to, kept.private_key) == (
            old_kid,
            started.new_kid,
            f"station.old.{old_kid}",
        )
        # the overlap protects the old key from retire, then retire destroys it in the token
        assert ring.retire() == []
        assert ring.retire(now=datetime.now(UTC) + timedelta(days=8)) == [old_kid]
        assert labels(token) == {"station": started.new_kid}
        assert ring.retired()[0].private_key is None and pem.exists()
    finally:
        ring.close()


def test_an_interrupted_switch_is_finished_before_any_key_is_read(
    softhsm: Token, tmp_path: Path
) -> None:
    token = softhsm
    settings = token.settings("station")
    with TokenSession(settings, rw=True) as tk:
        old = key_id(create_key(tk).public_key).hex()
        new = key_id(create_key(tk, label="station.next").public_key).hex()
        # the crash: the plan was written and the old key relabelled, the new one not yet
        relabel_key(tk, find_key(tk), f"station.old.{old}")
        assert not has_key(tk, "station")
    plan_dir = tmp_path / "keys" / STATE_DIR / NEXT_DIR
    plan_dir.mkdir(parents=True)
    plan = {"old_kid": old, "new_kid": new, "rotation_id": "r1",
            "rotated_at": iso_utc(datetime.now(UTC)), "retire_after": iso_utc(datetime.now(UTC))}  # fmt: skip
    (plan_dir / SWITCH_FILE).write_text(json.dumps(plan))
    ring = TokenKeyRing(settings, tmp_path / "keys")
    try:
        assert ring.active().kid.hex() == new
        assert labels(token) == {"station": new, f"station.old.{old}": old}
        assert not plan_dir.exists()
        assert [k.kid for k in ring.retired()] == [old]
    finally:
        ring.close()
