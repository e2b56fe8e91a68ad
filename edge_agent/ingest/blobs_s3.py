"""Evidence photos in an S3-compatible bucket (boto3): ``<prefix>/sha256/ab/cd/<hex>``.

``put`` asks first (HEAD) and uploads only a photo that is not there, with ``Content-MD5``
and ``x-amz-checksum-sha256`` so the server refuses bytes damaged on the way; S3 writes are
durable when the PUT answers. Timeouts and retries are bounded (botocore ``Config``). Every
botocore failure (no such bucket, credentials refused, endpoint down, timeouts) becomes one
``EvidenceStoreError`` line: the worker then leaves the photo unacknowledged.
"""

from __future__ import annotations

import base64
import configparser
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from edge_agent.errors import ConfigError, EvidenceStoreError
from edge_agent.ingest.blobs import BlobStore
from edge_agent.ingest.settings import IngestSettings, S3EvidenceSettings
from edge_agent.private_files import read_private

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_REFUSED = {
    "403",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
}
_MAX_CREDENTIALS_FILE = 64 * 1024


class S3BlobStore(BlobStore):
    """Photos by SHA-256 in one bucket of an S3-compatible store."""

    def __init__(self, settings: S3EvidenceSettings, *, client: S3Client | None = None) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        prefix = settings.prefix.strip("/")
        self._prefix = f"{prefix}/" if prefix else ""
        self._client = client if client is not None else s3_client(settings)

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> S3BlobStore:
        """The bucket of ``[ingest.evidence.s3]``."""
        assert settings.evidence.s3 is not None  # EvidenceSettings checks store = "s3" has it
        return cls(settings.evidence.s3)

    def describe(self) -> str:
        """``s3://bucket/prefix (endpoint)``."""
        return self.settings.describe()

    def close(self) -> None:
        """Close the client's connection pool."""
        self._client.close()

    def object_key(self, key: str) -> str:
        """The object key of a blob key (``sha256/ab/cd/<hex>`` under the prefix)."""
        return self._prefix + key

    def _store(self, sha256: str, key: str, data: bytes) -> None:
        name = self.object_key(key)
        try:
            self._client.head_object(Bucket=self.bucket, Key=name)
            return  # content-addressed: what is there is this photo (verify re-checks it)
        except ClientError as exc:
            if _code(exc) not in _NOT_FOUND:
                raise self._error(exc, "look up", sha256) from None
        except BotoCoreError as exc:
            raise self._error(exc, "look up", sha256) from None
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=name,
                Body=data,
                ContentMD5=base64.b64encode(hashlib.md5(data).digest()).decode(),  # noqa: S324
                ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "store", sha256) from None

    def _load(self, key: str) -> bytes | None:
        sha256 = key.rsplit("/", 1)[-1]
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=self.object_key(key))
            with answer["Body"] as body:
                return body.read()
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                return None
            raise self._error(exc, "read", sha256) from None
        except BotoCoreError as exc:
            raise self._error(exc, "read", sha256) from None

    def _error(self, exc: Exception, action: str, sha256: str) -> EvidenceStoreError:
        where = self.describe()
        if isinstance(exc, ClientError):
            code = _code(exc)
            if code == "NoSuchBucket":
                problem = f"no such bucket {self.bucket!r}"
            elif code in _REFUSED:
                problem = f"credentials refused ({code})"
            else:
                message = exc.response.get("Error", {}).get("Message", "")
                problem = f"{code}: {message}"[:200]
        elif isinstance(exc, NoCredentialsError | PartialCredentialsError):
            problem = (
                "no credentials (set credentials_file, AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or a profile)"
            )
        elif isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
            problem = "the endpoint timed out"
        elif isinstance(exc, EndpointConnectionError):
            problem = "the endpoint cannot be reached"
        else:
            problem = str(exc)[:200]
        return EvidenceStoreError(
            f"evidence store {where}: cannot {action} {sha256}: {problem}",
            store=where,
            sha256=sha256,
        )


def _code(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    return str(error.get("Code") or status)


def s3_client(settings: S3EvidenceSettings) -> S3Client:
    """A boto3 S3 client with bounded timeouts and retries and the configured credentials."""
    session_args: dict[str, Any] = {"region_name": settings.region or None}
    if settings.credentials_file is not None:
        session_args.update(read_credentials(settings.credentials_file, settings.profile))
    elif settings.profile:
        session_args["profile_name"] = settings.profile
    config = Config(
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        retries={"max_attempts": settings.max_attempts, "mode": "standard"},
        s3={"addressing_style": settings.addressing_style},
        # checksums are ours (Content-MD5 and SHA-256 on put, re-hashing on check): no
        # streaming trailers, which some S3-compatible servers do not speak
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    try:
        session = boto3.session.Session(**session_args)
    except BotoCoreError as exc:  # a profile that is not there
        raise ConfigError(str(exc), key_path="ingest.evidence.s3.profile") from None
    return session.client("s3", endpoint_url=settings.endpoint_url or None, config=config)


def read_credentials(path: Path, profile: str) -> dict[str, str]:
    """Keys from an owner-only file in the AWS shared-credentials format (``[default]`` or
    ``[profile]`` with ``aws_access_key_id``, ``aws_secret_access_key``, optionally
    ``aws_session_token``); ConfigError naming the file otherwise."""

    def fail(problem: str) -> ConfigError:
        return ConfigError(f"{path}: {problem}", key_path="ingest.evidence.s3.credentials_file")

    data = read_private(path, _MAX_CREDENTIALS_FILE, fail)
    if len(data) > _MAX_CREDENTIALS_FILE:
        raise fail("implausibly large for a credentials file")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(data.decode("utf-8"))
    except (UnicodeDecodeError, configparser.Error) as exc:
        raise fail(f"not an AWS credentials file: {str(exc).splitlines()[0][:120]}") from None
    section = profile or "default"
    if not parser.has_section(section):
        raise fail(f"no [{section}] section")
    keys = {
        name: parser.get(section, name, fallback="").strip()
        for name in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
    }
    if not keys["aws_access_key_id"] or not keys["aws_secret_access_key"]:
        raise fail(f"[{section}] needs aws_access_key_id and aws_secret_access_key")
    return {name: value for name, value in keys.items() if value}
