"""rollback(task): flip a bot back to an earlier revision, without rebuilding.

Payload: ``{"toRev": revHash | null, "forceIncompatible", "why"}``. With ``toRev``
null the target is decided once the bot is locked: the revision that was active
before the last successful flip (``previous_rev`` of the newest succeeded
deployment) — "undo the last flip", so two rollbacks in a row swap back. An
explicit ``toRev`` must have served this bot's traffic before. The rollback is a
new deployment record of kind ``rollback`` through the same stage policy as a
deploy, with a lighter preflight (no conformance re-run); history is never edited.
"""

from __future__ import annotations

from uuid import UUID

import dramatiq

from botkiln.infra.db import deployments
from botkiln.infra.db.pool import Db
from botkiln.workers.attempt import CONTROL_QUEUE, MAX_RETRIES, Attempt, TaskFailed, retry_when, run_attempt
from botkiln.workers.deploy import deploy_failed, deploy_revision
from botkiln.workers.runtime import Runtime, RuntimeSource

KIND = "rollback"
ACTOR = "botkiln.rollback"
_PAGE = 200


async def run_rollback(rt: Runtime, task_id: UUID) -> None:
    """Run one attempt of a rollback task."""
    await run_attempt(rt, task_id, KIND, _rollback, deploy_failed)


async def _rollback(attempt: Attempt) -> None:
    payload = attempt.task.payload
    to_rev = payload.get("toRev")

    async def target(db: Db, bot_id: str) -> str:
        if to_rev is None:
            return await previous_active(db, bot_id)
        if not await was_active(db, bot_id, str(to_rev)):
            raise TaskFailed(f"revision {to_rev} never served bot {bot_id}; deploy it instead", stage="preflight")
        return str(to_rev)

    force = bool(payload.get("forceIncompatible"))
    await deploy_revision(attempt, kind="rollback", target=target, force=force, why=payload.get("why", ""))


async def previous_active(db: Db, bot_id: str) -> str:
    """The revision active before the bot's last successful flip.

    Raises:
        TaskFailed: the bot never flipped from one revision to another.
    """
    last = await deployments.last_succeeded(db, bot_id)
    if last is None or last.previous_rev is None:
        raise TaskFailed(f"nothing to roll back to: bot {bot_id} has no earlier active revision", stage="preflight")
    return last.previous_rev


async def was_active(db: Db, bot_id: str, rev_hash: str) -> bool:
    """Whether ``rev_hash`` was ever flipped to (or from) on this bot."""
    before: int | None = None
    while page := await deployments.list_deployments(db, bot_id, limit=_PAGE, before=before):
        for dep in page:
            if rev_hash in (dep.previous_rev, dep.rev_hash if dep.status == "succeeded" else None):
                return True
        before = page[-1].id
    return False


def declare(broker: dramatiq.Broker, runtime: RuntimeSource) -> dramatiq.Actor[[str], None]:
    """Declare the rollback actor on ``broker``."""

    async def rollback(task_id: str) -> None:
        await run_rollback(runtime(), UUID(task_id))

    return dramatiq.actor(
        broker=broker,
        actor_name=ACTOR,
        queue_name=CONTROL_QUEUE,
        max_retries=MAX_RETRIES,
        min_backoff=1_000,
        max_backoff=60_000,
        retry_when=retry_when,
        time_limit=2 * 60_000,
    )(rollback)
