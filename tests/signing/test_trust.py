"""Trust store file: round trip, atomic save, validity windows, malformed files."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.errors import ConfigError, RevokedKeyError, TrustStoreError
from edge_agent.signing.signer import key_id
from edge_agent.signing.trust import StaticKeys, TrustStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _pem(key: object) -> bytes:
    return key.public_key().public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def two_keys() -> tuple[bytes, bytes]:
    return _pem(Ed25519PrivateKey.generate()), _pem(ec.generate_private_key(ec.SECP256R1()))


def test_add_save_load_round_trip(tmp_path: Path, two_keys: tuple[bytes, bytes]) -> None:
    path = tmp_path / "sub" / "trust.json"
    store = TrustStore.load(path, create=True)
    assert store.entries() == []
    kid_a = store.add(two_keys[0], station="bench-03", site="plant-a", not_before=T0)
    kid_b = store.add(
        two_keys[1], station="bench-04", site="plant-a", not_after=T0 + timedelta(days=365)
    )
    store.save()
    assert sorted(os.listdir(path.parent)) == ["trust.json"]  # no temp file left behind
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    raw = json.loads(path.read_text())
    assert raw["version"] == 1
    assert raw["keys"][kid_a.hex()]["station"] == "bench-03"
    assert raw["keys"][kid_a.hex()]["not_before"] == "2026-01-01T00:00:00Z"
    assert raw["keys"][kid_b.hex()]["not_after"] == "2027-01-01T00:00:00Z"
    assert raw["keys"][kid_b.hex()]["revoked"] is False
    assert raw["keys"][kid_b.hex()]["public_key"].encode() == two_keys[1]
    again = TrustStore.load(path)
    assert [k.kid for k in again.entries()] == sorted([kid_a, kid_b])
    key = again.resolve(kid_a, at=T0 + timedelta(days=1))
    assert (key.station, key.site, key.not_before) == ("bench-03", "plant-a", T0)
    assert key_id(key.public_key) == kid_a


def test_validity_and_revocation(tmp_path: Path, two_keys: tuple[bytes, bytes]) -> None:
    store = TrustStore(tmp_path / "t.json")
    kid = store.add(
        two_keys[0], station="s1", site="x", not_before=T0, not_after=T0 + timedelta(days=10)
    )

    def reason(at: datetime | None) -> str:
        with pytest.raises(TrustStoreError) as info:
            store.resolve(kid, at=at)
        return info.value.reason

    assert store.resolve(kid, at=T0).kid == kid  # bounds are inclusive
    assert store.resolve(kid, at=T0 + timedelta(days=10)).kid == kid
    assert store.resolve(kid, at=datetime(2026, 1, 5)).kid == kid  # naive = UTC, no TypeError
    assert reason(T0 - timedelta(microseconds=1)) == "not_yet_valid"
    assert reason(T0 + timedelta(days=10, seconds=1)) == "expired"
    assert reason(None) == "expired"  # now is after 2026-01-11
    with pytest.raises(TrustStoreError) as info:
        store.resolve(b"\x00" * 16)
    assert info.value.reason == "unknown_kid"
    store.revoke(kid.hex())
    store.save()
    loaded = TrustStore.load(store.path)
    with pytest.raises(TrustStoreError) as info:
        loaded.resolve(kid, at=T0)
    assert info.value.reason == "revoked"
    assert loaded.entries()[0].revoked
    with pytest.raises(ConfigError, match="no key"):
        loaded.revoke("00" * 16)


def test_readding_updates_and_bad_station_is_refused(
    tmp_path: Path, two_keys: tuple[bytes, bytes]
) -> None:
    store = TrustStore(tmp_path / "t.json")
    kid = store.add(two_keys[0], station="a", site="x")
    assert store.add(two_keys[0], station="b", site="x") == kid
    assert store.resolve(kid).station == "b" and len(store.entries()) == 1
    with pytest.raises(ConfigError, match="station"):
        store.add(two_keys[1], station="bad station/../", site="x")


def _write(path: Path, doc: object) -> Path:
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ("{not json", "not valid JSON"),
        ([], "must be a table"),
        ({"version": 2, "keys": {}}, "version"),
        ({"version": 1, "keys": {"ABC": {"public_key": "x"}}}, "keys.ABC"),
        ({"version": 1, "keys": {"00" * 16: {"public_key": "x"}}}, "public_key"),
        ({"version": 1, "keys": {"00" * 16: {"public_key": "P", "colour": "red"}}}, "colour"),
        (
            {"version": 1, "keys": {"00" * 16: {"public_key": "P", "not_after": "tomorrow"}}},
            "not_after",
        ),
        ({"version": 1, "keys": {"00" * 16: {"public_key": "P"}}}, "does not match the key id"),
        ({"version": 1, "keys": {"00" * 16: {"public_key": "P", "revoked": "no"}}}, "revoked"),
    ],
)
def test_malformed_files_name_the_problem(
    tmp_path: Path, two_keys: tuple[bytes, bytes], doc: object, match: str
) -> None:
    pem = two_keys[0].decode()
    if isinstance(doc, dict):
        doc = json.loads(json.dumps(doc).replace('"P"', json.dumps(pem)))
    with pytest.raises(ConfigError, match=match):
        TrustStore.load(_write(tmp_path / "t.json", doc))


def test_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "t.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="cannot read"):
        TrustStore.load(tmp_path / "t.json")


def test_static_keys() -> None:
    key = Ed25519PrivateKey.generate().public_key()
    keys = StaticKeys.of(key)
    assert keys.resolve(key_id(key)).public_key == key
    with pytest.raises(TrustStoreError) as info:
        keys.resolve(b"nope")
    assert info.value.reason == "unknown_kid"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=34), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    doc=json_values,
    entry=st.dictionaries(
        st.sampled_from(
            ["public_key", "station", "site", "not_before", "not_after", "revoked", "added", "x"]
        ),
        json_values,
        max_size=5,
    ),
)
def test_any_json_loads_or_raises_config_error(tmp_path: Path, doc: object, entry: dict) -> None:
    for candidate in (doc, {"version": 1, "keys": {"00" * 16: entry}}, {"version": 1, "keys": doc}):
        path = tmp_path / "t.json"
        path.write_text(json.dumps(candidate))
        try:
            TrustStore.load(path)
        except ConfigError:
            pass


def test_a_missing_store_is_refused_unless_creating(tmp_path: Path) -> None:
    path = tmp_path / "gone.json"
    with pytest.raises(ConfigError, match=f"trust store {path} does not exist"):
        TrustStore.load(path)
    assert TrustStore.load(path, create=True).entries() == []
    assert not path.exists()  # creating means an empty store in memory until save()


def test_a_revoked_key_is_trusted_again_only_with_unrevoke(
    tmp_path: Path, two_keys: tuple[bytes, bytes]
) -> None:
    store = TrustStore(tmp_path / "t.json")
    kid = store.add(two_keys[0], station="a", site="x")
    store.revoke(kid.hex())
    store.save()
    with pytest.raises(
        RevokedKeyError, match=f"key {kid.hex()} is revoked; add it with --unrevoke"
    ):
        store.add(two_keys[0], station="a", site="x")
    assert store.entries()[0].revoked  # the refusal changed nothing
    before = datetime.now(UTC).replace(microsecond=0)
    assert store.add(two_keys[0], station="a", site="x", unrevoke=True, by="alice") == kid
    store.save()
    again = TrustStore.load(store.path)
    assert not again.entries()[0].revoked
    entry = again.entry(kid.hex())
    assert entry is not None and entry.unrevoked_by == "alice" and entry.unrevoked is not None
    assert before <= datetime.fromisoformat(entry.unrevoked.replace("Z", "+00:00"))
    # re-adding a key that is not revoked keeps the record of its un-revocation
    again.add(two_keys[0], station="b", site="x")
    kept = again.entry(kid.hex())
    assert kept is not None and kept.unrevoked == entry.unrevoked and kept.unrevoked_by == "alice"
    # --unrevoke on a key that was never revoked records nothing
    other = again.add(two_keys[1], station="c", site="x", unrevoke=True, by="bob")
    fresh = again.entry(other.hex())
    assert fresh is not None and fresh.unrevoked is None and fresh.unrevoked_by is None
