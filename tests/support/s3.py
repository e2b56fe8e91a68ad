"""A real S3 API for tests: moto's standalone server (``python -m moto.server``) on a free
loopback port, one per session; each test gets its own bucket and an owner-only credentials
file. Not AWS and not MinIO: moto speaks the S3 HTTP API (HEAD, PUT, GET, error codes) but does
not check Content-MD5 or the SHA-256 checksum, so the tests check what we send instead."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_real_part
from tests.support.gateway import free_port, wait_until

KEY_ID = "testing-key-id"
SECRET = "testing-secret"  # moto accepts any signature; the file still goes through our reader


class MotoServer:
    """``python -m moto.server -H 127.0.0.1 -p PORT`` as a child process."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start and wait until it answers HTTP."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out,
                stderr=out,
            )
        if not wait_until(self._answers, 60, interval=0.1):
            self.stop()
            raise RuntimeError(f"moto server did not answer on {self.endpoint_url}")

    def _answers(self) -> bool:
        import urllib.request

        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"moto server exited {self.proc.returncode}: {self.log}")
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """Terminate and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def client(self) -> Any:
        """A plain boto3 S3 client on the server (to make buckets and tamper with objects)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            config=Config(s3={"addressing_style": "path"}),
        )


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """The session's moto S3 server (moto[server] missing: a skip, or a failure in CI)."""
    require_real_part(
        importlib.util.find_spec("moto") is not None
        and importlib.util.find_spec("flask") is not None
        and importlib.util.find_spec("boto3") is not None,
        "moto[server] and boto3 (scripts/bootstrap installs them)",
    )
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def credentials_file(folder: Path) -> Path:
    """An owner-only AWS credentials file for the test server."""
    path = folder / "s3-credentials"
    path.write_text(f"[default]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n")
    path.chmod(0o600)
    return path


def s3_evidence(
    server: MotoServer, folder: Path, *, bucket: str | None = None, **s3: object
) -> dict[str, object]:
    """``[ingest.evidence]`` for a new bucket on ``server`` (made unless ``bucket`` is given)."""
    if bucket is None:
        bucket = f"evidence-{uuid.uuid4().hex[:12]}"
        client = server.client()
        client.create_bucket(Bucket=bucket)
        client.close()
    plain: dict[str, object] = {
        "bucket": bucket,
        "endpoint_url": server.endpoint_url,
        "prefix": "site-a/photos",
        "region": "us-east-1",
        "addressing_style": "path",
        "credentials_file": str(credentials_file(folder)),
        "connect_timeout_s": 2.0,
        "read_timeout_s": 10.0,
        "max_attempts": 2,
        **s3,
    }
    return {"store": "s3", "s3": plain}
