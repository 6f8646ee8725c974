"""One contract, every ``ArtifactStore``: the local directory and S3 (moto's real server)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from botkiln.generator.generators import build_generator
from botkiln.generator.revision import build_revision
from botkiln.infra.artifacts_fs import FsArtifactStore
from botkiln.infra.artifacts_s3 import S3ArtifactStore
from botkiln.infra.ports import (
    ArtifactCorrupt,
    ArtifactExists,
    ArtifactMissing,
    ArtifactStore,
    ArtifactStoreUnavailable,
)
from botkiln.interpreter.canonical import canonical_json
from tests.conftest import minimal_spec
from tests.infra.conftest import S3Bucket


@dataclass(frozen=True)
class Subject:
    """A store under test, with back doors that bypass it to damage what it stored."""

    store: ArtifactStore
    overwrite: Callable[[str, str, str, bytes], None]
    delete: Callable[[str, str, str], None]


def _fs(tmp_path: Path) -> Subject:
    store = FsArtifactStore(tmp_path / "artifacts")

    def path(bot_id: str, rev_hash: str, name: str) -> Path:
        return tmp_path / "artifacts" / "bots" / bot_id / rev_hash / name

    def overwrite(bot_id: str, rev_hash: str, name: str, data: bytes) -> None:
        path(bot_id, rev_hash, name).write_bytes(data)

    def delete(bot_id: str, rev_hash: str, name: str) -> None:
        path(bot_id, rev_hash, name).unlink()

    return Subject(store, overwrite, delete)


def _s3(bucket: S3Bucket) -> Subject:
    store = S3ArtifactStore(bucket.client, bucket.name, prefix="tenant-a/")

    def key(bot_id: str, rev_hash: str, name: str) -> str:
        return f"tenant-a/bots/{bot_id}/{rev_hash}/{name}"

    def overwrite(bot_id: str, rev_hash: str, name: str, data: bytes) -> None:
        bucket.client.put_object(Bucket=bucket.name, Key=key(bot_id, rev_hash, name), Body=data)

    def delete(bot_id: str, rev_hash: str, name: str) -> None:
        bucket.client.delete_object(Bucket=bucket.name, Key=key(bot_id, rev_hash, name))

    return Subject(store, overwrite, delete)


@pytest.fixture(params=["fs", "s3"])
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Subject:
    """Each implementation in turn (moto starts only for the S3 one)."""
    if request.param == "fs":
        return _fs(tmp_path)
    return _s3(request.getfixturevalue("s3_bucket"))


@pytest.fixture(scope="module")
def built() -> tuple[str, str, dict[str, bytes]]:
    """A real revision from the compiler: (botId, revHash, files)."""
    revision = build_revision(minimal_spec(), build_generator("compiler"))
    return revision.rev["botId"], revision.rev_hash, dict(revision.files)


def _with_bot_js(files: dict[str, bytes], bot_js: bytes) -> dict[str, bytes]:
    """The same revision address with another, self-consistent bot.js (what a second LLM run could give)."""
    rev: dict[str, Any] = json.loads(files["rev.json"])
    rev["artifacts"]["bot.js"] = {"sha256": hashlib.sha256(bot_js).hexdigest(), "size": len(bot_js)}
    return {"bot.js": bot_js, "spec.json": files["spec.json"], "rev.json": canonical_json(rev)}


class TestArtifactStore:
    def test_a_stored_revision_reads_back_verified(self, subject: Subject, built: Any) -> None:
        bot_id, rev_hash, files = built
        uri = subject.store.put_revision(bot_id, rev_hash, files)

        got = subject.store.get_revision(bot_id, rev_hash)

        assert dict(got.files) == files
        assert got.rev["revHash"] == rev_hash
        assert got.uri == uri == subject.store.uri(bot_id, rev_hash)
        assert uri.endswith(f"/bots/{bot_id}/{rev_hash}/")
        assert subject.store.exists(bot_id, rev_hash)
        assert subject.store.list_revisions(bot_id) == [rev_hash]

    def test_putting_the_same_bytes_again_is_idempotent(self, subject: Subject, built: Any) -> None:
        bot_id, rev_hash, files = built
        first = subject.store.put_revision(bot_id, rev_hash, files)
        assert subject.store.put_revision(bot_id, rev_hash, files) == first
        assert dict(subject.store.get_revision(bot_id, rev_hash).files) == files

    def test_different_bytes_for_an_existing_revision_are_refused(self, subject: Subject, built: Any) -> None:
        bot_id, rev_hash, files = built
        subject.store.put_revision(bot_id, rev_hash, files)
        other = _with_bot_js(files, files["bot.js"] + b"\n// another program\n")

        with pytest.raises(ArtifactExists, match=r"bot\.js"):
            subject.store.put_revision(bot_id, rev_hash, other)

        assert dict(subject.store.get_revision(bot_id, rev_hash).files) == files

    def test_two_writers_racing_on_one_revision_both_succeed_with_the_same_bytes(
        self, subject: Subject, built: Any
    ) -> None:
        bot_id, rev_hash, files = built
        errors: list[BaseException] = []

        def put() -> None:
            try:
                subject.store.put_revision(bot_id, rev_hash, files)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=put) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert errors == []
        assert dict(subject.store.get_revision(bot_id, rev_hash).files) == files

    @pytest.mark.parametrize("name", ["bot.js", "spec.json"])
    def test_a_tampered_artifact_is_detected_on_read(self, subject: Subject, built: Any, name: str) -> None:
        bot_id, rev_hash, files = built
        subject.store.put_revision(bot_id, rev_hash, files)
        tampered = bytearray(files[name])
        tampered[len(tampered) // 2] ^= 0x01
        subject.overwrite(bot_id, rev_hash, name, bytes(tampered))

        with pytest.raises(ArtifactCorrupt, match=f"{name}: .* rev.json records"):
            subject.store.get_revision(bot_id, rev_hash)

    def test_a_truncated_artifact_is_detected_on_read(self, subject: Subject, built: Any) -> None:
        bot_id, rev_hash, files = built
        subject.store.put_revision(bot_id, rev_hash, files)
        subject.overwrite(bot_id, rev_hash, "bot.js", files["bot.js"][:-1])

        with pytest.raises(ArtifactCorrupt, match=f"{len(files['bot.js']) - 1} bytes"):
            subject.store.get_revision(bot_id, rev_hash)

    def test_a_rev_json_naming_another_revision_is_corrupt(self, subject: Subject, built: Any) -> None:
        bot_id, rev_hash, files = built
        subject.store.put_revision(bot_id, rev_hash, files)
        rev = json.loads(files["rev.json"])
        rev["revHash"] = "f" * 64
        subject.overwrite(bot_id, rev_hash, "rev.json", canonical_json(rev))

        with pytest.raises(ArtifactCorrupt, match="names revision"):
            subject.store.get_revision(bot_id, rev_hash)

    def test_an_artifact_deleted_behind_the_store_is_corrupt(self, subject: Subject, built: Any) -> None:
        bot_id, rev_hash, files = built
        subject.store.put_revision(bot_id, rev_hash, files)
        subject.delete(bot_id, rev_hash, "spec.json")

        with pytest.raises(ArtifactCorrupt, match=r"spec\.json is missing"):
            subject.store.get_revision(bot_id, rev_hash)

    def test_a_revision_without_rev_json_is_missing(self, subject: Subject, built: Any) -> None:
        # Given a writer that died after bot.js and spec.json, before rev.json
        bot_id, rev_hash, files = built
        subject.store.put_revision(bot_id, rev_hash, files)
        subject.delete(bot_id, rev_hash, "rev.json")

        # Then the revision is not there at all
        with pytest.raises(ArtifactMissing):
            subject.store.get_revision(bot_id, rev_hash)
        assert not subject.store.exists(bot_id, rev_hash)
        assert subject.store.list_revisions(bot_id) == []

        # And writing it again completes it
        subject.store.put_revision(bot_id, rev_hash, files)
        assert dict(subject.store.get_revision(bot_id, rev_hash).files) == files

    def test_an_unknown_revision_is_missing(self, subject: Subject) -> None:
        with pytest.raises(ArtifactMissing):
            subject.store.get_revision("nobody", "0" * 64)
        assert not subject.store.exists("nobody", "0" * 64)
        assert subject.store.list_revisions("nobody") == []

    def test_files_that_contradict_their_rev_json_are_not_stored(self, subject: Subject, built: Any) -> None:
        bot_id, rev_hash, files = built
        with pytest.raises(ArtifactCorrupt, match=r"bot\.js"):
            subject.store.put_revision(bot_id, rev_hash, {**files, "bot.js": b"// not the program\n"})
        with pytest.raises(ArtifactCorrupt, match="exactly"):
            subject.store.put_revision(bot_id, rev_hash, {**files, "extra.txt": b""})
        with pytest.raises(ArtifactCorrupt, match="names revision"):
            subject.store.put_revision(bot_id, "e" * 64, files)
        assert not subject.store.exists(bot_id, rev_hash)

    @pytest.mark.parametrize(("bot_id", "rev_hash"), [("../etc", "0" * 64), ("ok", "../../x"), ("Bad", "0" * 64)])
    def test_addresses_that_could_escape_the_layout_are_refused(
        self, subject: Subject, bot_id: str, rev_hash: str
    ) -> None:
        with pytest.raises(ValueError):
            subject.store.get_revision(bot_id, rev_hash)

    def test_revisions_are_listed_per_bot(self, subject: Subject, built: Any) -> None:
        bot_id, rev_hash, files = built
        subject.store.put_revision(bot_id, rev_hash, files)
        assert subject.store.list_revisions(bot_id) == [rev_hash]
        assert subject.store.list_revisions(bot_id + "x") == []


def test_s3_store_reports_a_missing_bucket_as_unavailable(s3_bucket: S3Bucket, built: Any) -> None:
    store = S3ArtifactStore(s3_bucket.client, s3_bucket.name + "-absent")
    bot_id, rev_hash, files = built
    with pytest.raises(ArtifactStoreUnavailable, match="bucket does not exist"):
        store.put_revision(bot_id, rev_hash, files)


def test_s3_store_from_url_uses_the_endpoint(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = S3ArtifactStore.from_url("s3://botkiln-url-test/some/prefix/", endpoint_url=s3_endpoint)
    assert (store.bucket, store.prefix) == ("botkiln-url-test", "some/prefix")
    store.client.create_bucket(Bucket="botkiln-url-test")
    assert store.list_revisions("faq") == []
    assert store.uri("faq", "a" * 64) == f"s3://botkiln-url-test/some/prefix/bots/faq/{'a' * 64}/"


def test_fs_store_from_url_resolves_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = FsArtifactStore.from_url("file://./var/artifacts")
    assert store.root == tmp_path.resolve() / "var" / "artifacts"
    with pytest.raises(ValueError, match="not a file://"):
        FsArtifactStore.from_url("s3://bucket")
    with pytest.raises(ValueError, match="not an s3://"):
        S3ArtifactStore.from_url("file:///tmp")


def test_fs_store_leaves_no_temporary_files(tmp_path: Path, built: Any) -> None:
    bot_id, rev_hash, files = built
    store = FsArtifactStore(tmp_path)
    store.put_revision(bot_id, rev_hash, files)
    store.put_revision(bot_id, rev_hash, files)
    assert sorted(p.name for p in (tmp_path / "bots" / bot_id / rev_hash).iterdir()) == sorted(files)
