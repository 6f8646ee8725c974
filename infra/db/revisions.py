"""Revisions: the control plane's record of each revision in the artifact store.

A row mirrors a ``rev.json`` (docs/revisions.md): revHash, the spec version it was
built from, where its artifacts live, the sha256 and size of ``bot.js``,
``spec.json`` and ``rev.json`` itself, and the build metadata. Rows are immutable
and keyed by ``(bot_id, rev_hash)``; recording a revision that exists returns the
existing row, so a retried build records nothing new. "A revision exists" is kept
apart from "traffic points at it" (``bots.active_rev``, ``deployments``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from botkiln.infra.db.pool import Db


@dataclass(frozen=True)
class Digest:
    """An artifact's sha256 (hex) and size in bytes."""

    sha256: str
    size: int


@dataclass(frozen=True)
class RevisionRecord:
    """A recorded revision; ``rev`` is its whole ``rev.json``."""

    bot_id: str
    rev_hash: str
    spec_version: int | None
    spec_hash: str
    artifacts_uri: str
    artifacts: Mapping[str, Digest]
    build: Mapping[str, Any]
    rev: Mapping[str, Any]
    created_by: UUID | None
    created_at: datetime


def _record(row: asyncpg.Record) -> RevisionRecord:
    return RevisionRecord(
        bot_id=row["bot_id"],
        rev_hash=row["rev_hash"],
        spec_version=row["spec_version"],
        spec_hash=row["spec_hash"],
        artifacts_uri=row["artifacts_uri"],
        artifacts={
            "bot.js": Digest(row["bot_js_sha256"], row["bot_js_size"]),
            "spec.json": Digest(row["spec_json_sha256"], row["spec_json_size"]),
            "rev.json": Digest(row["rev_json_sha256"], row["rev_json_size"]),
        },
        build=row["build"],
        rev=row["rev"],
        created_by=row["created_by"],
        created_at=row["created_at"],
    )


async def record_revision(
    db: Db, *, rev: Mapping[str, Any], rev_json: bytes, artifacts_uri: str, created_by: UUID | None
) -> RevisionRecord:
    """Record a stored revision from its ``rev.json`` (parsed and raw); idempotent.

    Raises:
        KeyError: ``rev`` lacks a field of docs/revisions.md.
        asyncpg.ForeignKeyViolationError: no such bot, or no such spec version.
    """
    artifacts = rev["artifacts"]
    row = await db.fetchrow(
        "INSERT INTO revisions (bot_id, rev_hash, spec_version, spec_hash, artifacts_uri, bot_js_sha256,"
        " bot_js_size, spec_json_sha256, spec_json_size, rev_json_sha256, rev_json_size, build, rev, created_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        " ON CONFLICT (bot_id, rev_hash) DO NOTHING RETURNING *",
        rev["botId"],
        rev["revHash"],
        rev.get("specVersion"),
        rev["specHash"],
        artifacts_uri,
        artifacts["bot.js"]["sha256"],
        artifacts["bot.js"]["size"],
        artifacts["spec.json"]["sha256"],
        artifacts["spec.json"]["size"],
        hashlib.sha256(rev_json).hexdigest(),
        len(rev_json),
        dict(rev["build"]),
        dict(rev),
        created_by,
    )
    if row is not None:
        return _record(row)
    existing = await get_revision(db, rev["botId"], rev["revHash"])
    assert existing is not None
    return existing


async def get_revision(db: Db, bot_id: str, rev_hash: str) -> RevisionRecord | None:
    """The recorded revision, if any."""
    row = await db.fetchrow("SELECT * FROM revisions WHERE bot_id = $1 AND rev_hash = $2", bot_id, rev_hash)
    return None if row is None else _record(row)


async def list_revisions(
    db: Db, bot_id: str, *, limit: int = 50, before: datetime | None = None
) -> list[RevisionRecord]:
    """The bot's revisions, newest first; ``before`` pages by ``created_at``."""
    rows = await db.fetch(
        "SELECT * FROM revisions WHERE bot_id = $1"
        " AND ($2::timestamptz IS NULL OR created_at < $2) ORDER BY created_at DESC, rev_hash LIMIT $3",
        bot_id,
        before,
        limit,
    )
    return [_record(r) for r in rows]
