"""Tasks: long work (generate, deploy, rollback) as rows a worker leases.

Lifecycle: ``queued`` -> ``running`` (claimed with a lease) -> ``succeeded`` or
``failed``. Invariants:

- a running task has a lease (owner, until); the owner renews it while working.
  If the worker dies the lease runs out: ``claim_task`` then accepts the task
  again, and ``reap_expired`` puts every such task back to ``queued`` (or marks it
  ``failed`` once its attempts are spent) so nothing stays "running" forever;
- completion is fenced by the owner: a worker whose lease was taken over cannot
  complete or fail the task any more. Owners must be unique per attempt
  (e.g. ``host:pid:uuid4``);
- an idempotency key names one task per actor forever: enqueueing again with the
  same key returns the same task and starts nothing; the same key with a
  different request is ``IdempotencyKeyReused`` (a client bug worth reporting).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg

from botkiln.infra.db.pool import Db, from_row
from botkiln.interpreter.canonical import canonical_json

Status = Literal["queued", "running", "succeeded", "failed"]


@dataclass(frozen=True)
class Task:
    """A task row."""

    id: UUID
    kind: str
    status: Status
    payload: Mapping[str, Any]
    bot_id: str | None
    actor_id: UUID | None
    idempotency_key: str | None
    attempts: int
    max_attempts: int
    lease_owner: str | None
    lease_until: datetime | None
    result: Any
    error: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class Enqueued:
    """``enqueue_task`` result: the task, and whether this call created it."""

    task: Task
    created: bool


@dataclass(frozen=True)
class IdempotencyKeyReused:
    """``enqueue_task`` result: the key already names a task for a different request."""

    idempotency_key: str
    task_id: UUID


def _task(row: asyncpg.Record) -> Task:
    return from_row(Task, row)


def _request_hash(kind: str, payload: Mapping[str, Any], bot_id: str | None) -> str:
    return hashlib.sha256(canonical_json({"kind": kind, "payload": dict(payload), "botId": bot_id})).hexdigest()


async def enqueue_task(
    db: Db,
    *,
    kind: str,
    payload: Mapping[str, Any],
    actor_id: UUID | None,
    bot_id: str | None = None,
    idempotency_key: str | None = None,
    max_attempts: int = 3,
) -> Enqueued | IdempotencyKeyReused:
    """A new queued task, or the one ``idempotency_key`` already names."""
    request_hash = _request_hash(kind, payload, bot_id)
    row = await db.fetchrow(
        "INSERT INTO tasks (kind, payload, request_hash, bot_id, actor_id, idempotency_key, max_attempts)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (actor_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
        " RETURNING *",
        kind,
        dict(payload),
        request_hash,
        bot_id,
        actor_id,
        idempotency_key,
        max_attempts,
    )
    if row is not None:
        return Enqueued(_task(row), created=True)
    existing = await db.fetchrow(
        "SELECT * FROM tasks WHERE actor_id IS NOT DISTINCT FROM $1 AND idempotency_key = $2",
        actor_id,
        idempotency_key,
    )
    assert existing is not None and idempotency_key is not None
    if existing["request_hash"] != request_hash:
        return IdempotencyKeyReused(idempotency_key, existing["id"])
    return Enqueued(_task(existing), created=False)


async def get_task(db: Db, task_id: UUID) -> Task | None:
    """The task, if any."""
    row = await db.fetchrow("SELECT * FROM tasks WHERE id = $1", task_id)
    return None if row is None else _task(row)


async def list_tasks(db: Db, bot_id: str, *, limit: int = 50, before: datetime | None = None) -> list[Task]:
    """The bot's tasks, newest first; ``before`` pages by ``created_at``."""
    rows = await db.fetch(
        "SELECT * FROM tasks WHERE bot_id = $1 AND ($2::timestamptz IS NULL OR created_at < $2)"
        " ORDER BY created_at DESC, id LIMIT $3",
        bot_id,
        before,
        limit,
    )
    return [_task(r) for r in rows]


async def claim_task(db: Db, task_id: UUID, *, owner: str, lease_s: float) -> Task | None:
    """Start an attempt: the task if it was queued, or running with an expired lease, and has attempts left."""
    row = await db.fetchrow(
        "UPDATE tasks SET status = 'running', attempts = attempts + 1, lease_owner = $2,"
        " lease_until = clock_timestamp() + make_interval(secs => $3), started_at = coalesce(started_at, now()),"
        " updated_at = now(), error = NULL"
        " WHERE id = $1 AND attempts < max_attempts"
        " AND (status = 'queued' OR (status = 'running' AND lease_until < clock_timestamp()))"
        " RETURNING *",
        task_id,
        owner,
        lease_s,
    )
    return None if row is None else _task(row)


async def renew_lease(db: Db, task_id: UUID, *, owner: str, lease_s: float) -> bool:
    """Extend ``owner``'s lease; false if the task is no longer theirs."""
    status = await db.execute(
        "UPDATE tasks SET lease_until = clock_timestamp() + make_interval(secs => $3), updated_at = now()"
        " WHERE id = $1 AND status = 'running' AND lease_owner = $2",
        task_id,
        owner,
        lease_s,
    )
    return status == "UPDATE 1"


async def complete_task(db: Db, task_id: UUID, *, owner: str, result: Any = None) -> bool:
    """Mark ``owner``'s running task succeeded with ``result`` (JSON); false if it is not theirs."""
    status = await db.execute(
        "UPDATE tasks SET status = 'succeeded', result = $3, lease_owner = NULL, lease_until = NULL,"
        " finished_at = now(), updated_at = now() WHERE id = $1 AND status = 'running' AND lease_owner = $2",
        task_id,
        owner,
        result,
    )
    return status == "UPDATE 1"


async def fail_task(db: Db, task_id: UUID, *, owner: str, error: str, retry: bool = True) -> Task | None:
    """End ``owner``'s attempt with ``error``: back to queued if ``retry`` and attempts are left, else failed.

    None if the task is not ``owner``'s running task.
    """
    row = await db.fetchrow(
        "UPDATE tasks SET status = CASE WHEN $4 AND attempts < max_attempts THEN 'queued' ELSE 'failed' END,"
        " finished_at = CASE WHEN $4 AND attempts < max_attempts THEN NULL ELSE now() END,"
        " error = $3, lease_owner = NULL, lease_until = NULL, updated_at = now()"
        " WHERE id = $1 AND status = 'running' AND lease_owner = $2 RETURNING *",
        task_id,
        owner,
        error,
        retry,
    )
    return None if row is None else _task(row)


async def reap_expired(db: Db) -> list[Task]:
    """Release every running task whose lease ran out; return them.

    Those with attempts left are ``queued`` again (re-send their messages); the
    others are ``failed`` with a sentence saying the worker stopped.
    """
    rows = await db.fetch(
        "UPDATE tasks SET status = CASE WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END,"
        " finished_at = CASE WHEN attempts < max_attempts THEN NULL ELSE now() END,"
        " error = CASE WHEN attempts < max_attempts THEN error"
        "   ELSE 'the worker stopped (lease expired) on attempt ' || attempts || ' of ' || max_attempts END,"
        " lease_owner = NULL, lease_until = NULL, updated_at = now()"
        " WHERE status = 'running' AND lease_until < clock_timestamp() RETURNING *"
    )
    return [_task(r) for r in rows]
