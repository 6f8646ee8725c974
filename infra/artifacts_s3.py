"""The S3 ``ArtifactStore`` (boto3): production storage for revisions.

Keys: ``<prefix>/bots/<botId>/<revHash>/{bot.js,spec.json,rev.json}``.

Every object is written with ``If-None-Match: *`` (S3 conditional writes), so an
existing object is never overwritten; a refused write compares the stored bytes
and succeeds when they are identical. ``rev.json`` is written last. The bucket
must exist; credentials come from boto3's usual chain.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from botkiln.infra.ports import (
    ARTIFACT_NAMES,
    REV_HASH,
    ArtifactCorrupt,
    ArtifactExists,
    ArtifactMissing,
    ArtifactStoreUnavailable,
    StoredRevision,
    check_address,
    check_revision_files,
    parse_rev_json,
    stored_revision,
    verify_artifact,
)
from botkiln.infra.settings import parse_artifacts_url

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_CONTENT_TYPES = {
    "bot.js": "text/javascript; charset=utf-8",
    "spec.json": "application/json",
    "rev.json": "application/json",
}
_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 4})


class S3ArtifactStore:
    """Revisions in an S3 bucket under a key prefix."""

    def __init__(self, client: S3Client, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @classmethod
    def from_url(cls, url: str, *, endpoint_url: str | None = None) -> S3ArtifactStore:
        """A store for an ``s3://BUCKET/PREFIX`` URL (``BOTKILN_ARTIFACTS``), with boto3's credentials."""
        parsed = parse_artifacts_url(url)
        if parsed.scheme != "s3":
            raise ValueError(f"{url!r} is not an s3:// URL")
        return cls(boto3.client("s3", endpoint_url=endpoint_url, config=_CONFIG), parsed.bucket, parsed.path)

    def __repr__(self) -> str:
        return f"S3ArtifactStore(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def _key(self, bot_id: str, rev_hash: str, name: str = "") -> str:
        check_address(bot_id, rev_hash)
        base = f"bots/{bot_id}/{rev_hash}/{name}"
        return f"{self.prefix}/{base}" if self.prefix else base

    def uri(self, bot_id: str, rev_hash: str) -> str:
        """``s3://bucket/prefix/bots/<botId>/<revHash>/``."""
        return f"s3://{self.bucket}/{self._key(bot_id, rev_hash)}"

    def put_revision(self, bot_id: str, rev_hash: str, files: Mapping[str, bytes]) -> str:
        """Conditional writes of each file, ``rev.json`` last (see ``ArtifactStore``)."""
        check_revision_files(bot_id, rev_hash, files)
        for name in ARTIFACT_NAMES:
            self._put(self._key(bot_id, rev_hash, name), files[name], _CONTENT_TYPES[name])
        return self.uri(bot_id, rev_hash)

    def get_revision(self, bot_id: str, rev_hash: str) -> StoredRevision:
        """Read every object and verify it against ``rev.json``."""
        try:
            rev_bytes = self._read(self._key(bot_id, rev_hash, "rev.json"))
        except ArtifactMissing:
            raise ArtifactMissing(f"no revision at {self.uri(bot_id, rev_hash)}") from None
        rev = parse_rev_json(bot_id, rev_hash, rev_bytes)
        files = {"rev.json": rev_bytes}
        for name in ARTIFACT_NAMES[:-1]:
            try:
                files[name] = self._read(self._key(bot_id, rev_hash, name))
            except ArtifactMissing:
                raise ArtifactCorrupt(f"{self.uri(bot_id, rev_hash)}{name} is missing but rev.json lists it") from None
            verify_artifact(bot_id, rev_hash, rev, name, files[name])
        return stored_revision(bot_id, rev_hash, files, rev, self.uri(bot_id, rev_hash))

    def exists(self, bot_id: str, rev_hash: str) -> bool:
        """Whether ``rev.json`` is there (a HEAD request)."""
        key = self._key(bot_id, rev_hash, "rev.json")
        try:
            with _map_errors(key):
                self.client.head_object(Bucket=self.bucket, Key=key)
        except ArtifactMissing:
            return False
        return True

    def list_revisions(self, bot_id: str) -> list[str]:
        """revHashes whose ``rev.json`` exists."""
        prefix = self._key(bot_id, "0" * 64).removesuffix("0" * 64 + "/")
        found: list[str] = []
        with _map_errors(prefix):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    rev_hash, _, name = obj.get("Key", "").removeprefix(prefix).partition("/")
                    if name == "rev.json" and REV_HASH.match(rev_hash):
                        found.append(rev_hash)
        return sorted(found)

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        """Create ``key``, or accept it if it holds ``data``; a racing writer gets up to three tries."""
        for _ in range(3):
            try:
                with _map_errors(key):
                    self.client.put_object(
                        Bucket=self.bucket,
                        Key=key,
                        Body=data,
                        IfNoneMatch="*",
                        ContentType=content_type,
                        ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode("ascii"),
                    )
                return
            except ArtifactExists:
                try:
                    same = self._read(key) == data
                except ArtifactMissing:  # 409: a concurrent write of this key had not finished
                    continue
                if not same:
                    raise ArtifactExists(f"s3://{self.bucket}/{key} exists with different bytes") from None
                return
        raise ArtifactStoreUnavailable(f"s3://{self.bucket}/{key}: concurrent writes kept conflicting")

    def _read(self, key: str) -> bytes:
        with _map_errors(key):
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            return body


def _error_code(exc: ClientError) -> tuple[str, int]:
    response: Any = exc.response
    code = response.get("Error", {}).get("Code", "")
    return str(code), int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


@contextlib.contextmanager
def _map_errors(key: str) -> Iterator[None]:
    """The one place this adapter turns botocore's errors into Botkiln's tree.

    412 / 409 on a conditional write -> ``ArtifactExists`` (409 is a concurrent write
    of the same key); 404 -> ``ArtifactMissing``; anything else -> unavailable.
    """
    try:
        yield
    except ClientError as exc:
        code, status = _error_code(exc)
        if code == "NoSuchBucket":
            raise ArtifactStoreUnavailable(f"{key}: the bucket does not exist") from exc
        if status == 412 or code in ("PreconditionFailed", "ConditionalRequestConflict"):
            raise ArtifactExists(f"{key} already exists") from exc
        if status == 404 or code in ("NoSuchKey", "NotFound", "404"):
            raise ArtifactMissing(f"{key} does not exist") from exc
        raise ArtifactStoreUnavailable(f"{key}: S3 answered {status} {code}") from exc
    except BotoCoreError as exc:
        raise ArtifactStoreUnavailable(f"{key}: {exc}") from exc
