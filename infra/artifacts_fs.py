"""The local-directory ``ArtifactStore``: the embedded default (DESIGN §8).

Layout: ``<root>/bots/<botId>/<revHash>/{bot.js,spec.json,rev.json}``.

Each file is written to a temporary name in the same directory, flushed to disk,
then published with ``os.link``, which fails if the name exists: a reader never
sees a partial file and nothing is ever overwritten, even by two writers racing.
``rev.json`` is published last, after the others are durable.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

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


class FsArtifactStore:
    """Revisions in a local directory tree."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    @classmethod
    def from_url(cls, url: str) -> FsArtifactStore:
        """A store for a ``file://PATH`` URL (``BOTKILN_ARTIFACTS``)."""
        parsed = parse_artifacts_url(url)
        if parsed.scheme != "file":
            raise ValueError(f"{url!r} is not a file:// URL")
        return cls(parsed.path)

    def __repr__(self) -> str:
        return f"FsArtifactStore({str(self.root)!r})"

    def _dir(self, bot_id: str, rev_hash: str) -> Path:
        check_address(bot_id, rev_hash)
        return self.root / "bots" / bot_id / rev_hash

    def uri(self, bot_id: str, rev_hash: str) -> str:
        """``file:///…/bots/<botId>/<revHash>/``."""
        return self._dir(bot_id, rev_hash).as_uri() + "/"

    def put_revision(self, bot_id: str, rev_hash: str, files: Mapping[str, bytes]) -> str:
        """Publish each file create-only, ``rev.json`` last (see ``ArtifactStore``)."""
        check_revision_files(bot_id, rev_hash, files)
        directory = self._dir(bot_id, rev_hash)
        with _map_errors(directory):
            directory.mkdir(parents=True, exist_ok=True)
            for name in ARTIFACT_NAMES:
                _publish(directory / name, files[name])
            _fsync_dir(directory)
        return self.uri(bot_id, rev_hash)

    def get_revision(self, bot_id: str, rev_hash: str) -> StoredRevision:
        """Read every file and verify it against ``rev.json``."""
        directory = self._dir(bot_id, rev_hash)
        with _map_errors(directory):
            try:
                rev_bytes = (directory / "rev.json").read_bytes()
            except FileNotFoundError:
                raise ArtifactMissing(f"no revision bots/{bot_id}/{rev_hash} in {self.root}") from None
            rev = parse_rev_json(bot_id, rev_hash, rev_bytes)
            files = {"rev.json": rev_bytes}
            for name in ARTIFACT_NAMES[:-1]:
                try:
                    files[name] = (directory / name).read_bytes()
                except FileNotFoundError:
                    raise ArtifactCorrupt(f"bots/{bot_id}/{rev_hash}/{name} is missing but rev.json lists it") from None
                verify_artifact(bot_id, rev_hash, rev, name, files[name])
        return stored_revision(bot_id, rev_hash, files, rev, self.uri(bot_id, rev_hash))

    def exists(self, bot_id: str, rev_hash: str) -> bool:
        """Whether ``rev.json`` is there."""
        directory = self._dir(bot_id, rev_hash)
        with _map_errors(directory):
            return (directory / "rev.json").is_file()

    def list_revisions(self, bot_id: str) -> list[str]:
        """revHashes of complete revisions."""
        check_address(bot_id, "0" * 64)
        directory = self.root / "bots" / bot_id
        with _map_errors(directory):
            if not directory.is_dir():
                return []
            return sorted(p.name for p in directory.iterdir() if REV_HASH.match(p.name) and (p / "rev.json").is_file())


def _publish(path: Path, data: bytes) -> None:
    """Create ``path`` with ``data`` atomically, or accept an identical existing file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            if path.read_bytes() != data:
                raise ArtifactExists(f"{path} exists with different bytes; revisions are never overwritten") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _map_errors(where: Path) -> Iterator[None]:
    """The one place this adapter turns OS errors into Botkiln's tree."""
    try:
        yield
    except OSError as exc:
        raise ArtifactStoreUnavailable(f"{where}: {exc.strerror or exc}") from exc
