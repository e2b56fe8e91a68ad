"""``[ingest.evidence]``: the store chosen by name, bad values refused naming the key, secrets
never in the config file, the credentials file owner-only; botocore errors translated (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from edge_agent.config import config_from_plain
from edge_agent.errors import ConfigError, EvidenceStoreError
from edge_agent.ingest.blobs import open_blob_store
from edge_agent.ingest.blobs_s3 import S3BlobStore, read_credentials
from edge_agent.ingest.evidence import EvidenceStore
from edge_agent.ingest.settings import S3EvidenceSettings

S3 = {"bucket": "battrace-evidence", "endpoint_url": "https://s3.example.org:9000"}


def test_filesystem_is_the_default_and_evidence_dir_still_works(tmp_path: Path) -> None:
    settings = config_from_plain({"ingest": {"data_dir": str(tmp_path)}}).ingest
    store = open_blob_store(settings)
    assert isinstance(store, EvidenceStore) and store.root == tmp_path / "evidence"
    old = config_from_plain({"ingest": {"evidence_dir": str(tmp_path / "old")}}).ingest
    assert old.evidence_path == tmp_path / "old"
    new = config_from_plain({"ingest": {"evidence": {"path": str(tmp_path / "new")}}}).ingest
    assert new.evidence_path == tmp_path / "new"


def test_s3_settings_open_an_s3_store() -> None:
    evidence = {"store": "s3", "s3": {**S3, "prefix": "plant-a/", "addressing_style": "path"}}
    settings = config_from_plain({"ingest": {"evidence": evidence}}).ingest
    store = open_blob_store(settings)
    try:
        assert isinstance(store, S3BlobStore)
        assert store.describe() == "s3://battrace-evidence/plant-a (https://s3.example.org:9000)"
        assert store.object_key("sha256/ab/cd/x") == "plant-a/sha256/ab/cd/x"
    finally:
        store.close()


@pytest.mark.parametrize(
    ("evidence", "key_path", "problem"),
    [
        ({"store": "gcs"}, "ingest.evidence.store", "must be one of"),
        ({"store": "s3"}, "ingest.evidence", "needs an [ingest.evidence.s3]"),
        ({"s3": S3}, "ingest.evidence", 'only with store = "s3"'),
        ({"store": "s3", "path": "/srv/x", "s3": S3}, "ingest.evidence", "has none"),
        (
            {"store": "s3", "s3": {**S3, "bucket": "Evidence_Photos"}},
            "ingest.evidence.s3.bucket",
            "must match",
        ),
        (
            {"store": "s3", "s3": {**S3, "endpoint_url": "ftp://x"}},
            "ingest.evidence.s3.endpoint_url",
            "must match",
        ),
        ({"store": "s3", "s3": {**S3, "prefix": "a b"}}, "ingest.evidence.s3.prefix", "must match"),
        ({"store": "s3", "s3": {**S3, "prefix": "a/../b"}}, "ingest.evidence.s3", "'..'"),
        (
            {"store": "s3", "s3": {**S3, "max_attempts": 0}},
            "ingest.evidence.s3.max_attempts",
            "1..10",
        ),
        (
            {"store": "s3", "s3": {**S3, "read_timeout_s": 0}},
            "ingest.evidence.s3.read_timeout_s",
            "0.1..300",
        ),
        (
            {"store": "s3", "s3": {**S3, "addressing_style": "dns"}},
            "ingest.evidence.s3.addressing_style",
            "must be one of",
        ),
        (
            {"store": "s3", "s3": {**S3, "credentials_file": "creds"}},
            "ingest.evidence.s3",
            "absolute path",
        ),
        (
            {"store": "s3", "s3": {**S3, "secret_access_key": "x"}},
            "ingest.evidence.s3",
            "never goes in the config",
        ),
        (
            {"store": "s3", "s3": {**S3, "access_key": "x"}},
            "ingest.evidence.s3.access_key",
            "unknown key",
        ),
    ],
)
def test_bad_evidence_settings_are_refused(
    evidence: dict[str, object], key_path: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_plain({"ingest": {"evidence": evidence}})
    assert caught.value.key_path == key_path
    assert problem in caught.value.problem


def test_evidence_dir_and_evidence_path_are_one_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="older spelling"):
        config_from_plain(
            {"ingest": {"evidence_dir": str(tmp_path), "evidence": {"path": str(tmp_path)}}}
        )


def _creds(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "s3-credentials"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_credentials_file_owner_only_with_the_profile(tmp_path: Path) -> None:
    text = "[default]\naws_access_key_id = A\naws_secret_access_key = S\n[ingest]\naws_access_key_id = B\naws_secret_access_key = T\naws_session_token = X\n"
    path = _creds(tmp_path, text)
    assert read_credentials(path, "") == {"aws_access_key_id": "A", "aws_secret_access_key": "S"}
    assert read_credentials(path, "ingest")["aws_session_token"] == "X"
    for bad, problem in [
        (_creds(tmp_path, text, 0o644), "has mode 0644"),
        (tmp_path / "absent", "not found"),
    ]:
        with pytest.raises(ConfigError, match=problem) as caught:
            read_credentials(bad, "")
        assert caught.value.key_path == "ingest.evidence.s3.credentials_file"
    with pytest.raises(ConfigError, match=r"no \[other\] section"):
        read_credentials(_creds(tmp_path, text), "other")
    with pytest.raises(ConfigError, match="needs aws_access_key_id"):
        read_credentials(_creds(tmp_path, "[default]\naws_access_key_id = A\n"), "")
    with pytest.raises(ConfigError, match="not an AWS credentials file"):
        read_credentials(_creds(tmp_path, "key = value without a section\n"), "")


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("AccessDenied", "credentials refused (AccessDenied)"),
        ("InvalidAccessKeyId", "credentials refused (InvalidAccessKeyId)"),
        ("SignatureDoesNotMatch", "credentials refused (SignatureDoesNotMatch)"),
        ("NoSuchBucket", "no such bucket 'battrace-evidence'"),
        ("SlowDown", "SlowDown: please slow down"),
    ],
)
def test_client_errors_become_one_line(code: str, problem: str) -> None:
    store = S3BlobStore(S3EvidenceSettings(**S3), client=object())  # type: ignore[arg-type]
    error = ClientError({"Error": {"Code": code, "Message": "please slow down"}}, "PutObject")
    translated = store._error(error, "store", "ab" * 32)
    assert isinstance(translated, EvidenceStoreError)
    assert str(translated) == (
        f"evidence store s3://battrace-evidence (https://s3.example.org:9000): "
        f"cannot store {'ab' * 32}: {problem}"
    )
