"""Deployments: the append-only history of which revision was pointed at, by whom, and why.

A deployment is an immutable record (bot -> revision, the revision active when it
started, deploy or rollback, who, why, when). Its progress is a list of stage
events appended as they happen (stage, started/passed/failed, detail, time), and
its end is one outcome row (succeeded, or failed at a stage with a reason);
a second outcome is refused. The tables reject UPDATE and DELETE, so a rollback is
a new deployment pointing at an older revision, never an edit of history. The
status is derived: ``running`` until the outcome exists.

The successful flip is recorded by ``bots.flip_active(..., deployment_id=…)`` in
the same statement that moves the traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast
from uuid import UUID

import asyncpg

from botkiln.infra.db.pool import Db

Kind = Literal["deploy", "rollback", "rollout"]
StageStatus = Literal["started", "passed", "failed"]
Status = Literal["running", "succeeded", "failed"]

_SELECT = (
    "SELECT d.id, d.bot_id, d.rev_hash, d.previous_rev, d.kind, d.actor_id, d.why, d.task_id, d.created_at, d.percent,"
    " coalesce(o.status, 'running') AS status, o.failed_stage, o.reason, o.finished_at,"
    " coalesce((SELECT jsonb_agg(jsonb_build_object('stage', s.stage, 'status', s.status, 'detail', s.detail,"
    "   'at', s.at) ORDER BY s.id) FROM deployment_stages s WHERE s.deployment_id = d.id), '[]') AS stages"
    " FROM deployments d LEFT JOIN deployment_outcomes o ON o.deployment_id = d.id"
)


@dataclass(frozen=True)
class Stage:
    """One stage event of a deployment."""

    stage: str
    status: StageStatus
    detail: str
    at: datetime


@dataclass(frozen=True)
class Deployment:
    """A deployment with its stage events and (once finished) its outcome."""

    id: int
    bot_id: str
    rev_hash: str
    previous_rev: str | None
    kind: Kind
    actor_id: UUID | None
    why: str
    task_id: UUID | None
    created_at: datetime
    status: Status
    failed_stage: str | None
    reason: str | None
    finished_at: datetime | None
    stages: tuple[Stage, ...]
    percent: int | None = None
    """A rollout step's share of chats on ``rev_hash``; None for a deploy or rollback."""


def _deployment(row: asyncpg.Record) -> Deployment:
    stages = tuple(Stage(s["stage"], s["status"], s["detail"], datetime.fromisoformat(s["at"])) for s in row["stages"])
    return Deployment(
        id=row["id"],
        bot_id=row["bot_id"],
        rev_hash=row["rev_hash"],
        previous_rev=row["previous_rev"],
        kind=cast(Kind, row["kind"]),
        actor_id=row["actor_id"],
        why=row["why"],
        task_id=row["task_id"],
        created_at=row["created_at"],
        status=cast(Status, row["status"]),
        failed_stage=row["failed_stage"],
        reason=row["reason"],
        finished_at=row["finished_at"],
        stages=stages,
        percent=row["percent"],
    )


async def start_deployment(
    db: Db,
    *,
    bot_id: str,
    rev_hash: str,
    kind: Kind,
    actor_id: UUID | None,
    why: str = "",
    task_id: UUID | None = None,
    percent: int | None = None,
) -> Deployment:
    """Record the start of a deploy or rollback; ``previous_rev`` is what is active now.

    Raises:
        asyncpg.ForeignKeyViolationError: no such bot or revision of it.
    """
    deployment_id = await db.fetchval(
        "INSERT INTO deployments (bot_id, rev_hash, previous_rev, kind, actor_id, why, task_id, percent)"
        " VALUES ($1, $2, (SELECT active_rev FROM bots WHERE id = $1), $3, $4, $5, $6, $7) RETURNING id",
        bot_id,
        rev_hash,
        kind,
        actor_id,
        why,
        task_id,
        percent,
    )
    found = await get_deployment(db, deployment_id)
    assert found is not None
    return found


async def record_stage(db: Db, deployment_id: int, stage: str, status: StageStatus, detail: str = "") -> Stage | None:
    """Append a stage event; None if the deployment has already finished."""
    row = await db.fetchrow(
        "INSERT INTO deployment_stages (deployment_id, stage, status, detail)"
        " SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM deployment_outcomes WHERE deployment_id = $1)"
        " RETURNING stage, status, detail, at",
        deployment_id,
        stage,
        status,
        detail,
    )
    return None if row is None else Stage(row["stage"], row["status"], row["detail"], row["at"])


async def fail_deployment(db: Db, deployment_id: int, *, stage: str, reason: str) -> bool:
    """Finish as failed at ``stage`` (also appended as a failed stage event); false if already finished."""
    row = await db.fetchrow(
        "WITH outcome AS (INSERT INTO deployment_outcomes (deployment_id, status, failed_stage, reason)"
        "   VALUES ($1, 'failed', $2, $3) ON CONFLICT (deployment_id) DO NOTHING RETURNING deployment_id),"
        " staged AS (INSERT INTO deployment_stages (deployment_id, stage, status, detail)"
        "   SELECT deployment_id, $2, 'failed', $3 FROM outcome)"
        " SELECT count(*) AS n FROM outcome",
        deployment_id,
        stage,
        reason,
    )
    return row is not None and row["n"] == 1


async def get_deployment(db: Db, deployment_id: int) -> Deployment | None:
    """The deployment with its stages and outcome."""
    row = await db.fetchrow(_SELECT + " WHERE d.id = $1", deployment_id)
    return None if row is None else _deployment(row)


async def list_deployments(db: Db, bot_id: str, *, limit: int = 50, before: int | None = None) -> list[Deployment]:
    """The bot's deployments, newest first; ``before`` pages by id."""
    rows = await db.fetch(
        _SELECT + " WHERE d.bot_id = $1 AND ($2::bigint IS NULL OR d.id < $2) ORDER BY d.id DESC LIMIT $3",
        bot_id,
        before,
        limit,
    )
    return [_deployment(r) for r in rows]


async def last_succeeded(db: Db, bot_id: str) -> Deployment | None:
    """The bot's most recent successful flip of every chat (its ``previous_rev`` is what a rollback restores).

    A rollout's steps count only when they promoted (``percent`` 100): the others left the active revision as it was.
    """
    row = await db.fetchrow(
        _SELECT + " WHERE d.bot_id = $1 AND o.status = 'succeeded' AND (d.kind <> 'rollout' OR d.percent = 100)"
        " ORDER BY d.id DESC LIMIT 1",
        bot_id,
    )
    return None if row is None else _deployment(row)
