"""The S3 evidence store against a real S3 HTTP API (moto's standalone server, see
tests/support/s3.py): round trip, idempotent put, what put sends for the server's integrity
check, missing and overwritten objects (``records verify``), and failures (no bucket, endpoint
down) as one typed line that leaves the photo unacknowledged while the worker goes on."""

from __future__ import annotations

import base64
import hashlib
import logging
from pathlib import Path
from typing import Any

import pytest

from edge_agent.cli import main
from edge_agent.dataform import from_plain
from edge_agent.errors import EvidenceStoreError, IngestError
from edge_agent.ingest import service
from edge_agent.ingest.blobs import BlobStore, open_blob_store
from edge_agent.ingest.settings import IngestSettings
from tests.ingest.helpers import PREFIX, Worker, station_and_trust, topic
from tests.support.gateway import free_port
from tests.support.ingest import ingest_config_file
from tests.support.s3 import MotoServer, s3_evidence

pytestmark = pytest.mark.timeout(120)

PHOTO = b"\xff\xd8\xff\xe0 label photo " * 300


def _store(evidence: dict[str, object]) -> BlobStore:
    return open_blob_store(from_plain(IngestSettings, {"evidence": evidence}))


def _requests(store: BlobStore) -> list[tuple[str, dict[str, str]]]:
    """(method, headers) of every HTTP request ``store`` sends from now on."""
    sent: list[tuple[str, dict[str, str]]] = []

    def record(request: Any, **_: Any) -> None:
        headers = {
            k.lower(): v.decode() if isinstance(v, bytes) else str(v)
            for k, v in request.headers.items()
        }
        sent.append((request.method, headers))

    store._client.meta.events.register("before-send.s3", record)  # type: ignore[attr-defined]
    return sent


def test_put_get_check_round_trip_with_integrity_headers(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    evidence = s3_evidence(moto_server, tmp_path)
    store = _store(evidence)
    sent = _requests(store)
    try:
        sha = store.put(PHOTO)
        assert sha == hashlib.sha256(PHOTO).hexdigest()
        assert store.get(sha) == PHOTO
        assert store.check(sha) == "ok"
        # HEAD (not there), then one PUT carrying both digests for the server to check
        assert [m for m, _ in sent] == ["HEAD", "PUT", "GET", "GET"]
        put = sent[1][1]
        assert put["content-md5"] == base64.b64encode(hashlib.md5(PHOTO).digest()).decode()
        assert put["x-amz-checksum-sha256"] == base64.b64encode(bytes.fromhex(sha)).decode()
        # the object key: <prefix>/sha256/ab/cd/<hex>
        raw = moto_server.client()
        bucket = evidence["s3"]["bucket"]  # type: ignore[index]
        key = f"site-a/photos/sha256/{sha[:2]}/{sha[2:4]}/{sha}"
        assert raw.get_object(Bucket=bucket, Key=key)["Body"].read() == PHOTO
        raw.close()
        # idempotent: a second put only asks
        sent.clear()
        assert store.put(PHOTO) == sha
        assert [m for m, _ in sent] == ["HEAD"]
        # missing, and a name that is no hash
        other = hashlib.sha256(b"never sent").hexdigest()
        assert store.get(other) is None
        assert store.check(other) == "missing"
        with pytest.raises(IngestError, match="not a SHA-256"):
            store.get("../../etc/passwd")
    finally:
        store.close()


def test_credentials_from_the_standard_chain(
    moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evidence = s3_evidence(moto_server, tmp_path)
    del evidence["s3"]["credentials_file"]  # type: ignore[attr-defined]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-env-secret")
    store = _store(evidence)
    sent = _requests(store)
    try:
        assert store.check(store.put(PHOTO)) == "ok"
        assert "Credential=from-env/" in sent[0][1]["authorization"]
    finally:
        store.close()


def _broken(moto_server: MotoServer, tmp_path: Path, fault: str) -> dict[str, object]:
    if fault == "no_bucket":
        return s3_evidence(moto_server, tmp_path, bucket="no-such-evidence-bucket")
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    return s3_evidence(moto_server, tmp_path, endpoint_url=nobody, max_attempts=1)


PROBLEMS = {"no_bucket": "no such bucket", "endpoint_down": "cannot be reached"}


@pytest.mark.parametrize("fault", sorted(PROBLEMS))
def test_store_failures_are_one_typed_line(
    moto_server: MotoServer, tmp_path: Path, fault: str
) -> None:
    store = _store(_broken(moto_server, tmp_path, fault))
    try:
        for call in (
            lambda: store.put(PHOTO),
            lambda: store.get(hashlib.sha256(PHOTO).hexdigest()),
        ):
            with pytest.raises(EvidenceStoreError) as caught:
                call()
            message = str(caught.value)
            assert PROBLEMS[fault] in message and "\n" not in message, message
            assert isinstance(caught.value, IngestError) and caught.value.sha256
    finally:
        store.close()


def _event_with_photo(tmp_path: Path) -> tuple[str, list[tuple[str, bytes]], Any]:
    station, _trust = station_and_trust(tmp_path)
    event, signed = station.next_event(evidence=(PHOTO,))
    where = f"{PREFIX}/{station.site}/{station.station}/evidence/{event.event_id}"
    return event.event_id, [(topic(station), signed), (where, PHOTO)], station


@pytest.mark.parametrize("fault", sorted(PROBLEMS))
def test_worker_leaves_unstored_evidence_unacknowledged(
    moto_server: MotoServer,
    tmp_path: Path,
    fault: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(service, "STORE_RETRY_S", 0.0)  # held photos are due at once
    evidence = _broken(moto_server, tmp_path, fault)
    event_id, messages, station = _event_with_photo(tmp_path)
    worker = Worker(tmp_path, f"sqlite:///{tmp_path / 'w.sqlite3'}", "w1", evidence=evidence)
    try:
        with caplog.at_level(logging.WARNING, logger="edge_agent.ingest"):
            worker.batch(messages)
        # the event is stored and acknowledged; the photo is not, and the event is not answered
        assert worker.acked == [messages[0][1]]
        assert worker.items == []
        assert worker.ingest.evidence_failures == 1
        assert not worker.ingest.store.blob_known(hashlib.sha256(PHOTO).hexdigest())
        (line,) = [r.getMessage() for r in caplog.records if "evidence not stored" in r.message]
        assert PROBLEMS[fault] in line
        # the worker goes on: the next event is stored and answered
        other, signed = station.next_event()
        worker.process(topic(station), [signed])
        assert (other.event_id, "accepted", "stored") in worker.items
        if fault == "endpoint_down":
            return
        # the bucket appears: the held photo is stored and acknowledged on its next turn
        moto_server.client().create_bucket(Bucket="no-such-evidence-bucket")
        held = worker.ingest._take()
        assert [m.payload for m in held] == [PHOTO]
        worker.ingest.process(held)
        assert worker.acked[-1] == PHOTO
        assert worker.ingest.evidence.check(hashlib.sha256(PHOTO).hexdigest()) == "ok"
        # the gateway re-sends the unanswered event: accepted now
        worker.batch(messages[:1])
        assert (event_id, "accepted", "duplicate") in worker.items
    finally:
        worker.close()


def test_records_verify_checks_the_bucket(
    moto_server: MotoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evidence = s3_evidence(moto_server, tmp_path)
    event_id, messages, _station = _event_with_photo(tmp_path)
    worker = Worker(tmp_path, f"sqlite:///{tmp_path / 'w.sqlite3'}", "w1", evidence=evidence)
    try:
        worker.batch(messages)
        assert worker.acked == [p for _, p in messages]
    finally:
        worker.close()
    cfg = ingest_config_file(tmp_path / "ingest.toml", worker.ingest.settings)
    assert main(["records", "verify", "--config", str(cfg)]) == 0
    assert "1 events, 1 evidence files ok, 0 missing, 0 mismatches" in capsys.readouterr().out
    # other bytes under the photo's key, written behind the ingest's back
    sha = hashlib.sha256(PHOTO).hexdigest()
    raw = moto_server.client()
    raw.put_object(
        Bucket=evidence["s3"]["bucket"],  # type: ignore[index]
        Key=f"site-a/photos/sha256/{sha[:2]}/{sha[2:4]}/{sha}",
        Body=PHOTO + b"tampered",
    )
    raw.close()
    assert main(["records", "verify", "--config", str(cfg)]) == 1
    out = capsys.readouterr().out
    assert f"MISMATCH {event_id}: evidence {sha} hash mismatch" in out
    assert "1 events, 0 evidence files ok, 0 missing, 1 mismatches" in out
