"""The API side of the control-plane tasks: record the task, then send its actor a message.

Each ``enqueue_*`` creates a ``tasks`` row (idempotent by ``(user, key)``: the same
key and request returns the same task and sends nothing; the same key with a
different request is ``IdempotencyKeyReused``), then sends the task id to the
actor. The row is the truth and the message only a wake-up: if the send fails
(Redis down) the task stays queued and the recovery monitor sends it again once it
has waited ``stale_queued_s``; a duplicate message is harmless (the attempt's
claim lets one through). Call these outside a database transaction, or after it
committed: a worker must be able to see the row when the message arrives.
"""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

import dramatiq
import redis.exceptions

from botkiln.infra.db import tasks
from botkiln.infra.db.pool import Db
from botkiln.infra.db.tasks import IdempotencyKeyReused, Task
from botkiln.workers import deploy, generate, rollback

_log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
"""Attempts per task (claims: first run, transient retries, recoveries after a worker died)."""

ACTORS: dict[str, str] = {generate.KIND: generate.ACTOR, deploy.KIND: deploy.ACTOR, rollback.KIND: rollback.ACTOR}
"""Task kind -> the actor that runs it."""


async def send_task(broker: dramatiq.Broker, kind: str, task_id: UUID) -> None:
    """Send ``task_id`` to the actor of ``kind``.

    Raises:
        redis.exceptions.RedisError: the broker could not be reached.
    """
    actor = broker.get_actor(ACTORS[kind])
    await asyncio.to_thread(actor.send, str(task_id))


async def _enqueue(
    db: Db,
    broker: dramatiq.Broker,
    *,
    kind: str,
    payload: dict[str, object],
    bot_id: str,
    user_id: UUID | None,
    idempotency_key: str | None,
) -> Task | IdempotencyKeyReused:
    outcome = await tasks.enqueue_task(
        db,
        kind=kind,
        payload=payload,
        actor_id=user_id,
        bot_id=bot_id,
        idempotency_key=idempotency_key,
        max_attempts=MAX_ATTEMPTS,
    )
    if isinstance(outcome, IdempotencyKeyReused):
        return outcome
    if outcome.created:
        try:
            await send_task(broker, kind, outcome.task.id)
        except (redis.exceptions.RedisError, OSError) as exc:
            _log.warning("task %s recorded but not sent (%s); the recovery monitor will send it", outcome.task.id, exc)
    return outcome.task


async def enqueue_generate(
    db: Db,
    broker: dramatiq.Broker,
    *,
    bot_id: str,
    spec_version: int,
    user_id: UUID | None,
    idempotency_key: str | None,
    generator: str = "compiler",
) -> Task | IdempotencyKeyReused:
    """Build a revision from spec version ``spec_version`` with ``generator`` (``compiler`` or ``llm``)."""
    payload: dict[str, object] = {"specVersion": spec_version, "generator": generator}
    return await _enqueue(
        db, broker, kind=generate.KIND, payload=payload, bot_id=bot_id, user_id=user_id, idempotency_key=idempotency_key
    )


async def enqueue_deploy(
    db: Db,
    broker: dramatiq.Broker,
    *,
    bot_id: str,
    rev_hash: str,
    user_id: UUID | None,
    idempotency_key: str | None,
    force_incompatible: bool = False,
    why: str = "",
    rollout: dict[str, object] | None = None,
) -> Task | IdempotencyKeyReused:
    """Deploy revision ``rev_hash``; ``force_incompatible`` accepts a state-shape change (docs/deploys.md).

    With ``rollout`` (``RolloutPlan`` fields, camelCase) the flip stage opens a gradual rollout of the
    revision instead of flipping every chat (docs/rollouts.md).
    """
    payload: dict[str, object] = {"revHash": rev_hash, "forceIncompatible": force_incompatible, "why": why}
    if rollout is not None:
        payload["rollout"] = rollout
    return await _enqueue(
        db, broker, kind=deploy.KIND, payload=payload, bot_id=bot_id, user_id=user_id, idempotency_key=idempotency_key
    )


async def enqueue_rollback(
    db: Db,
    broker: dramatiq.Broker,
    *,
    bot_id: str,
    user_id: UUID | None,
    idempotency_key: str | None,
    to_rev: str | None = None,
    force_incompatible: bool = False,
    why: str = "",
) -> Task | IdempotencyKeyReused:
    """Roll back to the revision active before the last flip, or to ``to_rev`` (which must have served before)."""
    payload: dict[str, object] = {"toRev": to_rev, "forceIncompatible": force_incompatible, "why": why}
    return await _enqueue(
        db, broker, kind=rollback.KIND, payload=payload, bot_id=bot_id, user_id=user_id, idempotency_key=idempotency_key
    )
