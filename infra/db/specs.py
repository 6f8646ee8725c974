"""Spec versions: each save of a bot's BotSpec, immutable and numbered 1, 2, … per bot.

A version holds the spec's canonical JSON (RFC 8785) and its sha256, so the same
spec always reads back as the same bytes and hash. Saving is optimistic: the
caller says which version its edit is based on (``expected_version``, 0 for the
first); if another save got there first the result is ``SpecConflict`` with the
current version. One statement does it, with the ``(bot_id, version)`` primary key
as the referee, so two saves on the same base never both succeed. Replaying a
save whose spec is already the latest version returns that version
(``created=False``): a retried request does not conflict with itself.
Validating the spec is the caller's job.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from botkiln.infra.db.pool import Db
from botkiln.interpreter.canonical import canonical_json

_LIST = "SELECT bot_id, version, spec_hash, author_id, message, created_at FROM spec_versions"


@dataclass(frozen=True)
class SpecVersion:
    """One saved version; ``canonical`` is the spec's RFC 8785 JSON (None in listings)."""

    bot_id: str
    version: int
    spec_hash: str
    author_id: UUID | None
    message: str
    created_at: datetime
    canonical: str | None = None

    @property
    def spec(self) -> dict[str, Any]:
        """The spec as a JSON object.

        Raises:
            ValueError: this value came from a listing, without the spec body.
        """
        if self.canonical is None:
            raise ValueError("this SpecVersion was listed without its spec; use get_spec_version")
        spec: dict[str, Any] = json.loads(self.canonical)
        return spec


@dataclass(frozen=True)
class SpecSaved:
    """``save_spec_version`` result: the version now stored (``created`` false for a replay)."""

    version: SpecVersion
    created: bool = True


@dataclass(frozen=True)
class SpecConflict:
    """``save_spec_version`` result: the edit was based on an outdated version."""

    bot_id: str
    expected_version: int
    current_version: int


def _version(row: asyncpg.Record, *, with_spec: bool = True) -> SpecVersion:
    return SpecVersion(
        row["bot_id"],
        row["version"],
        row["spec_hash"],
        row["author_id"],
        row["message"],
        row["created_at"],
        row["spec"] if with_spec else None,
    )


async def save_spec_version(
    db: Db,
    bot_id: str,
    spec: dict[str, Any],
    expected_version: int,
    *,
    author_id: UUID | None,
    message: str = "",
) -> SpecSaved | SpecConflict:
    """Store ``spec`` as version ``expected_version + 1`` unless someone saved first.

    Raises:
        asyncpg.ForeignKeyViolationError: no bot ``bot_id``.
    """
    canonical = canonical_json(spec)
    text = canonical.decode("utf-8")
    digest = hashlib.sha256(canonical).hexdigest()
    row = await db.fetchrow(
        "INSERT INTO spec_versions (bot_id, version, spec, spec_hash, author_id, message)"
        " SELECT $1, $2 + 1, $3, $4, $5, $6"
        " WHERE (SELECT coalesce(max(version), 0) FROM spec_versions WHERE bot_id = $1) = $2"
        " ON CONFLICT (bot_id, version) DO NOTHING RETURNING *",
        bot_id,
        expected_version,
        text,
        digest,
        author_id,
        message,
    )
    if row is not None:
        return SpecSaved(_version(row))
    latest = await get_spec_version(db, bot_id)
    if latest is not None and latest.spec_hash == digest and latest.version == expected_version + 1:
        return SpecSaved(latest, created=False)
    return SpecConflict(bot_id, expected_version, 0 if latest is None else latest.version)


async def get_spec_version(db: Db, bot_id: str, version: int | None = None) -> SpecVersion | None:
    """A version with its spec (the latest when ``version`` is None)."""
    if version is None:
        row = await db.fetchrow(
            "SELECT * FROM spec_versions WHERE bot_id = $1 ORDER BY version DESC LIMIT 1",
            bot_id,
        )
    else:
        row = await db.fetchrow("SELECT * FROM spec_versions WHERE bot_id = $1 AND version = $2", bot_id, version)
    return None if row is None else _version(row)


async def latest_version(db: Db, bot_id: str) -> int:
    """The newest version number, 0 if none was saved."""
    value = await db.fetchval("SELECT coalesce(max(version), 0) FROM spec_versions WHERE bot_id = $1", bot_id)
    return int(value)


async def list_spec_versions(db: Db, bot_id: str, *, limit: int = 50, before: int | None = None) -> list[SpecVersion]:
    """Versions newest first, without their spec; ``before`` pages (version numbers below it)."""
    rows = await db.fetch(
        _LIST + " WHERE bot_id = $1 AND ($2::int IS NULL OR version < $2) ORDER BY version DESC LIMIT $3",
        bot_id,
        before,
        limit,
    )
    return [_version(r, with_spec=False) for r in rows]
