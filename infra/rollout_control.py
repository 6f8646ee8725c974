"""Operating rollouts: each change committed in PostgreSQL, then published to the runtime and announced.

Used by the GraphQL mutations, the deploy pipeline (a rollout's start) and the automatic
controller (``workers/rollout_controller.py``). After every change:

1. the bot's route is read back from PostgreSQL and stored in Redis (``RouteStore.publish``:
   only a newer ``route_version`` replaces the copy), so every executor routes by it from its
   next update on;
2. a flip is broadcast (runtime nodes drop their cached view of the bot);
3. a ``RolloutChanged`` progress event carries the new share to GraphQL subscribers.

Steps 1–3 are best effort: the change is committed; a node that missed them re-reads the route
within its cache TTL and repairs a stale Redis copy (docs/rollouts.md).
"""

from __future__ import annotations

import logging
from typing import Literal
from uuid import UUID

from redis.asyncio import Redis

from botkiln.infra.db import rollouts
from botkiln.infra.db.pool import Db
from botkiln.infra.db.rollouts import Changed, Rollout
from botkiln.infra.progress import progress_event, publish, publish_flip
from botkiln.infra.routing import RevisionStats, RouteStore

_log = logging.getLogger(__name__)

Operation = Literal["advance", "promote", "abort", "pause", "resume", "pin", "unpin"]


async def announce_route(db: Db, redis: Redis, bot_id: str, rev_hash: str | None, *, prefix: str) -> None:
    """Publish the bot's route to Redis and broadcast a flip (see the module docstring)."""
    try:
        route = await rollouts.load_route(db, bot_id)
        if route is not None:
            await RouteStore(redis, prefix=prefix).publish(bot_id, route)
            rev_hash = rev_hash or route.active
        if rev_hash is not None:
            await publish_flip(redis, bot_id, rev_hash)
    except Exception as exc:
        _log.warning("route of bot %s not published (%s)", bot_id, type(exc).__name__)


async def announce(redis: Redis, rollout: Rollout, *, deployment_id: int | None, message: str) -> None:
    """A ``RolloutChanged`` event for the bot's subscribers (best effort)."""
    event = progress_event(
        "RolloutChanged", bot_id=rollout.bot_id, task_id=f"rollout:{rollout.id}", rev_hash=rollout.candidate_rev,
        stage=rollout.status, message=message, deployment_id=deployment_id,
    )  # fmt: skip
    try:
        await publish(redis, event)
    except Exception as exc:
        _log.warning("rollout event of bot %s not published (%s)", rollout.bot_id, type(exc).__name__)


async def operate(
    db: Db,
    redis: Redis,
    bot_id: str,
    operation: Operation,
    *,
    prefix: str,
    actor_id: UUID | None,
    percent: int | None = None,
    chat_id: int | None = None,
    why: str = "",
) -> Changed:
    """Apply ``operation`` to the bot's live rollout, publish and announce it.

    Raises:
        RolloutRefused: the operation is not possible now (no live rollout, a share that would fall, …).
    """
    if operation == "advance":
        changed = await rollouts.advance(db, bot_id, percent=percent, actor_id=actor_id, why=why)
    elif operation == "promote":
        changed = await rollouts.promote(db, bot_id, actor_id=actor_id, why=why)
    elif operation == "abort":
        changed = await rollouts.abort(db, bot_id, actor_id=actor_id, reason=why or "aborted by an operator")
    elif operation in ("pause", "resume"):
        changed = await rollouts.set_paused(db, bot_id, operation == "pause")
    else:
        assert chat_id is not None
        changed = await rollouts.pin(db, bot_id, chat_id, pinned=operation == "pin", actor_id=actor_id)
    ro = changed.rollout
    if operation not in ("pause", "resume"):
        await announce_route(db, redis, bot_id, None, prefix=prefix)
    message = f"{ro.status} at {ro.percent}%"
    if ro.status == "aborted":
        message = f"aborted: {ro.reason}"
    await announce(redis, ro, deployment_id=changed.deployment_id, message=message)
    return changed


async def revision_stats(redis: Redis, rollout: Rollout, *, prefix: str) -> tuple[RevisionStats, RevisionStats]:
    """The stable and candidate revisions' counters in ``rollout`` (updates, errors, dead letters, chats)."""
    stats = await RouteStore(redis, prefix=prefix).stats(rollout.id, [rollout.stable_rev, rollout.candidate_rev])
    return stats[rollout.stable_rev], stats[rollout.candidate_rev]
