"""The recovery monitor: no task stays "running" after its worker died, no queued task is forgotten.

``recover`` is one pass; ``monitor`` repeats it every ``recovery_interval_s`` in
every worker process (the statements below are atomic, so several monitors never
handle one task twice). A pass:

1. reaps every running task whose lease expired (``tasks.reap_expired``): with
   attempts left it is queued again and its actor gets a new message (the next
   attempt closes the deployment the dead one left open); with none left it is
   failed, its open deployment is closed as interrupted at the stage it reached,
   and a *Failed event is published;
2. re-sends every task of a known kind queued for longer than ``stale_queued_s``
   (its message was lost: the API died between the row and the send, Redis lost
   it, or its retries ran out), touching it so the next pass waits again.

A message sent twice is harmless: an attempt starts only through ``claim_task``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from uuid import UUID

import dramatiq

from botkiln.infra import progress
from botkiln.infra.db import deployments, tasks
from botkiln.infra.db.pool import Db
from botkiln.workers.attempt import describe
from botkiln.workers.enqueue import ACTORS, send_task
from botkiln.workers.generate import KIND as GENERATE
from botkiln.workers.runtime import Runtime

_log = logging.getLogger(__name__)
_BATCH = 100


@dataclass(frozen=True)
class Recovered:
    """What one pass did, by task id."""

    requeued: list[UUID] = field(default_factory=list)
    failed: list[UUID] = field(default_factory=list)
    resent: list[UUID] = field(default_factory=list)


async def recover(rt: Runtime, broker: dramatiq.Broker) -> Recovered:
    """One pass of the monitor (see the module docstring)."""
    done = Recovered()
    for task in await tasks.reap_expired(rt.db):
        if task.status == "queued":
            done.requeued.append(task.id)
            await _send(broker, task.kind, task.id)
        else:
            done.failed.append(task.id)
            await _abandon(rt, task)
    for task_id, kind in await touch_stale_queued(rt.db, rt.options.stale_queued_s, sorted(ACTORS)):
        done.resent.append(task_id)
        await _send(broker, kind, task_id)
    if done.requeued or done.failed or done.resent:
        _log.info("recovery: requeued %s, failed %s, re-sent %s", done.requeued, done.failed, done.resent)
    return done


async def touch_stale_queued(db: Db, older_than_s: float, kinds: list[str]) -> list[tuple[UUID, str]]:
    """Queued tasks of ``kinds`` untouched for ``older_than_s``, marked touched now; (id, kind) pairs."""
    rows = await db.fetch(
        "UPDATE tasks SET updated_at = now() WHERE id IN ("
        "  SELECT id FROM tasks WHERE status = 'queued' AND kind = ANY($2::text[])"
        "  AND updated_at < now() - make_interval(secs => $1) ORDER BY updated_at LIMIT $3 FOR UPDATE SKIP LOCKED)"
        " RETURNING id, kind",
        older_than_s,
        kinds,
        _BATCH,
    )
    return [(r["id"], r["kind"]) for r in rows]


async def _send(broker: dramatiq.Broker, kind: str, task_id: UUID) -> None:
    if kind not in ACTORS:
        _log.warning("recovery: task %s of kind %r has no actor here; left queued", task_id, kind)
        return
    try:
        await send_task(broker, kind, task_id)
    except Exception as exc:  # the next pass re-sends it as a stale queued task
        _log.warning("recovery: could not send task %s: %s", task_id, describe(exc))


async def _abandon(rt: Runtime, task: tasks.Task) -> None:
    """Close what a task that ran out of attempts left open, and say so."""
    if task.bot_id is None:
        return
    reason = task.error or "the worker stopped"
    if task.kind == GENERATE:
        event = progress.progress_event("GenerateFailed", bot_id=task.bot_id, task_id=str(task.id), reason=reason)
        await _publish(rt, event)
        return
    announced = False
    for dep in await deployments.list_deployments(rt.db, task.bot_id, limit=20):
        if dep.task_id != task.id or dep.status != "running":
            continue
        stage = dep.stages[-1].stage if dep.stages else "preflight"
        text = f"interrupted: the worker stopped during {stage}; {reason}"
        if await deployments.fail_deployment(rt.db, dep.id, stage=stage, reason=text):
            announced = True
            event = progress.progress_event(
                "DeployFailed", bot_id=task.bot_id, task_id=str(task.id), rev_hash=dep.rev_hash, stage=stage,
                reason=text, deployment_id=dep.id,
            )  # fmt: skip
            await _publish(rt, event)
    if not announced:
        event = progress.progress_event(
            "DeployFailed", bot_id=task.bot_id, task_id=str(task.id), stage="preflight", reason=reason
        )
        await _publish(rt, event)


async def _publish(rt: Runtime, event: progress.ProgressEvent) -> None:
    try:
        await progress.publish(rt.redis, event)
    except Exception as exc:
        _log.warning("recovery: event %s not published: %s", event["type"], describe(exc))


async def monitor(rt: Runtime, broker: dramatiq.Broker) -> None:
    """Run ``recover`` every ``recovery_interval_s`` until cancelled; a failed pass is logged and retried."""
    while True:
        try:
            await recover(rt, broker)
        except Exception as exc:
            _log.warning("recovery pass failed: %s", describe(exc))
        await asyncio.sleep(rt.options.recovery_interval_s)
