"""The automatic rollout controller: promote step by step, or abort when the candidate does worse.

Every ``interval_s`` one worker process (a Redis ``SET NX PX`` key elects it for the interval)
looks at each running automatic rollout (docs/rollouts.md):

- it compares the candidate with the stable revision on the rollout's counters (updates, updates
  with an error event, dead-lettered updates, counted by the executors as they emit the same
  events the analytics store receives): once the candidate has ``min_updates`` updates, an error
  rate or a dead-letter rate above the stable one's by more than ``error_margin`` aborts the
  rollout at once, whatever the dwell time;
- otherwise, once the current step has lasted ``dwell_s``, it advances to the next planned
  percentage (100 promotes).

Each step is committed in PostgreSQL with a compare on the live rollout (``rollouts.advance``
refuses a share that would not rise), so two controllers racing across an election change
nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from redis.asyncio import Redis

from botkiln.infra.db import rollouts
from botkiln.infra.db.pool import Db
from botkiln.infra.db.rollouts import Rollout, RolloutRefused
from botkiln.infra.redis_keys import PREFIX
from botkiln.infra.rollout_control import operate, revision_stats
from botkiln.infra.routing import verdict

_log = logging.getLogger(__name__)


async def judge(db: Db, redis: Redis, rollout: Rollout, *, prefix: str, now: datetime) -> str | None:
    """Advance or abort ``rollout`` if it is time; what was done ("aborted: …", "advanced to N%"), or None."""
    stable, candidate = await revision_stats(redis, rollout, prefix=prefix)
    bad = verdict(stable, candidate, margin=rollout.error_margin, min_updates=rollout.min_updates)
    try:
        if bad is not None:
            await operate(db, redis, rollout.bot_id, "abort", prefix=prefix, actor_id=None, why=f"automatic: {bad}")
            return f"aborted: {bad}"
        if (now - rollout.step_started_at).total_seconds() < rollout.dwell_s:
            return None
        if candidate.updates < rollout.min_updates and rollout.percent > 0:
            return None  # not enough evidence yet: the step lasts until there is
        changed = await operate(db, redis, rollout.bot_id, "advance", prefix=prefix, actor_id=None, why="automatic")
    except RolloutRefused as exc:  # an operator (or another controller) changed it meanwhile
        _log.info("rollout %s of %s not changed: %s", rollout.id, rollout.bot_id, exc)
        return None
    done = changed.rollout
    return "promoted" if done.status == "completed" else f"advanced to {done.percent}%"


async def tick(db: Db, redis: Redis, *, prefix: str = PREFIX, interval_s: float = 1.0) -> dict[int, str]:
    """One pass over the running automatic rollouts if this process wins the interval; what changed, by rollout."""
    if not await redis.set(f"{prefix}:ro:controller", b"1", nx=True, px=max(1, int(interval_s * 1000 * 0.9))):
        return {}
    now = datetime.now(UTC)
    changes = {}
    for rollout in await rollouts.due_auto(db):
        outcome = await judge(db, redis, rollout, prefix=prefix, now=now)
        if outcome is not None:
            _log.info("rollout %s of %s: %s", rollout.id, rollout.bot_id, outcome)
            changes[rollout.id] = outcome
    return changes


async def run(db: Db, redis: Redis, *, prefix: str = PREFIX, interval_s: float = 1.0) -> None:
    """``tick`` every ``interval_s`` until cancelled; a failed pass is logged and retried."""
    while True:
        try:
            await tick(db, redis, prefix=prefix, interval_s=interval_s)
        except Exception as exc:
            _log.warning("rollout controller pass failed (%s: %s)", type(exc).__name__, exc)
        await asyncio.sleep(interval_s)
