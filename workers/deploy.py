"""deploy(task): run a revision through the stage policy and flip the bot's traffic to it.

Payload: ``{"revHash", "forceIncompatible", "why"}``. ``deploy_revision`` is the
pipeline shared with rollbacks. Invariants:

- one deploy or rollback per bot at a time: the pipeline holds a PostgreSQL
  advisory lock keyed by the bot (``bot_lock``) from before the deployment record
  is created until it is finished; the lock dies with its connection, so a killed
  worker never leaves a bot locked. A deployment's ``previous_rev`` is therefore
  what is active when it starts, and the flip is a compare-and-set from it;
- stages run in ``deploy_policy.POLICY`` order, each recorded (started, then
  passed or failed with its reason) and announced as DeployProgress{stage};
- the flip is one transaction: fence the task lease, ``bots.flip_active`` (which
  records the flip stage and the success outcome), an audit entry and the task's
  completion. Traffic points at the old revision or at the new one, never
  between; any earlier failure leaves the old revision active;
- an attempt first closes the deployments an earlier attempt of the same task
  left open (a worker died): they end ``failed`` at the stage they reached,
  "interrupted", and the retry starts a new record (history is never edited);
- each stage runs in a ``deploy.<stage>`` span inside a ``deploy``/``rollback`` one and is
  timed in ``botkiln_deploy_stage_seconds{stage}``; a flip counts in
  ``botkiln_deploys_total{outcome="succeeded"|"rolled_back"}`` (a rollback's time in
  ``botkiln_rollback_seconds``), a refusal in ``{outcome="failed"}``; an interrupted attempt
  counts nothing (its retry will).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any
from uuid import UUID

import dramatiq

from botkiln.infra.db import audit, bots, deployments, revisions, rollouts
from botkiln.infra.db.deployments import Kind
from botkiln.infra.db.pool import Db, transaction
from botkiln.infra.db.rollouts import RolloutPlan
from botkiln.infra.metrics import DEPLOY_STAGE_SECONDS, DEPLOYS, ROLLBACK_SECONDS
from botkiln.infra.progress import EventType, progress_event
from botkiln.infra.rollout_control import announce_route
from botkiln.infra.tracing import start_span
from botkiln.workers.attempt import (
    CONTROL_QUEUE,
    MAX_RETRIES,
    Attempt,
    TaskFailed,
    Transient,
    describe,
    retry_when,
    run_attempt,
)
from botkiln.workers.deploy_policy import POLICY, Stage, State, transition
from botkiln.workers.runtime import Runtime, RuntimeSource
from botkiln.workers.stages import STAGE_HANDLERS, DeployContext, StageFailed

KIND = "deploy"
ACTOR = "botkiln.deploy"
_log = logging.getLogger(__name__)
_LOCK_POLL_S = 0.1
_CLEANUP_S = 0.5

Target = Callable[[Db, str], Awaitable[str]]
"""Resolves the revision to deploy once the bot is locked (rollbacks look at the history then)."""


async def run_deploy(rt: Runtime, task_id: UUID) -> None:
    """Run one attempt of a deploy task."""
    await run_attempt(rt, task_id, KIND, _deploy, deploy_failed)


async def _deploy(attempt: Attempt) -> None:
    payload = attempt.task.payload
    rev_hash = str(payload["revHash"])

    async def target(db: Db, bot_id: str) -> str:
        return rev_hash

    kind: Kind = "rollout" if payload.get("rollout") is not None else "deploy"
    await deploy_revision(
        attempt, kind=kind, target=target, force=bool(payload.get("forceIncompatible")), why=payload.get("why", "")
    )


def rollout_plan(payload: Mapping[str, Any]) -> RolloutPlan:
    """The ``RolloutPlan`` of a rollout task's payload (camelCase keys, as the API wrote them)."""
    raw = payload["rollout"]
    return RolloutPlan(
        percent=int(raw["percent"]), steps=tuple(int(s) for s in raw["steps"]), auto=bool(raw["auto"]),
        dwell_s=int(raw["dwellSec"]), error_margin=float(raw["errorMargin"]), min_updates=int(raw["minUpdates"]),
    )  # fmt: skip


def lock_key(bot_id: str) -> int:
    """The advisory-lock key of a bot's deploys: 8 bytes of sha256, as a signed bigint."""
    return int.from_bytes(hashlib.sha256(f"botkiln.deploy:{bot_id}".encode()).digest()[:8], "big", signed=True)


@contextlib.asynccontextmanager
async def bot_lock(rt: Runtime, bot_id: str) -> AsyncIterator[None]:
    """Hold the bot's deploy lock (a session advisory lock on a dedicated connection).

    A waiter holds no connection between tries, so deploys queued behind one bot
    never starve the pool the lock holder needs.

    Raises:
        Transient: another deploy held it for longer than ``lock_wait_s``.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + rt.options.lock_wait_s
    key = lock_key(bot_id)
    while True:
        conn = await rt.db.acquire()
        try:
            if await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                break
        except BaseException:
            await rt.db.release(conn)
            raise
        await rt.db.release(conn)
        if loop.time() > deadline:
            raise Transient(f"another deploy of bot {bot_id} is still running")
        await asyncio.sleep(_LOCK_POLL_S)
    try:
        yield
    finally:
        try:
            with contextlib.suppress(Exception):  # a dead connection released the lock with itself
                await conn.execute("SELECT pg_advisory_unlock($1)", key)
        finally:
            await rt.db.release(conn)


async def deploy_revision(attempt: Attempt, *, kind: Kind, target: Target, force: bool, why: str) -> None:
    """Lock the bot, record a deployment of ``target``, run every stage, flip; see the module docstring.

    Raises:
        TaskFailed: a stage refused the revision (the deployment is closed as failed).
    """
    rt, task = attempt.rt, attempt.task
    bot_id = task.bot_id
    assert bot_id is not None
    started = time.perf_counter()
    try:
        with start_span(kind, {"botkiln.bot": bot_id, "botkiln.task": str(task.id)}) as span:
            async with bot_lock(rt, bot_id):
                attempt.check()
                await close_interrupted(rt.db, attempt)
                if await bots.get_bot(rt.db, bot_id) is None:
                    raise TaskFailed(f"bot {bot_id} does not exist or was deleted", stage="preflight")
                rev_hash = await target(rt.db, bot_id)
                span.set_attribute("botkiln.revision", rev_hash)
                if await revisions.get_revision(rt.db, bot_id, rev_hash) is None:
                    raise TaskFailed(f"bot {bot_id} has no revision {rev_hash}; generate it first", stage="preflight")
                if await rollouts.get_live(rt.db, bot_id) is not None:
                    action = "another rollout" if kind == "rollout" else f"a {kind}"
                    raise TaskFailed(
                        f"a rollout is live for this bot: promote or abort it before {action}", stage="preflight"
                    )
                percent = rollout_plan(task.payload).percent if kind == "rollout" else None
                dep = await deployments.start_deployment(
                    rt.db, bot_id=bot_id, rev_hash=rev_hash, kind=kind, actor_id=task.actor_id, why=why,
                    task_id=task.id, percent=percent,
                )  # fmt: skip
                ctx = DeployContext(bot_id, rev_hash, kind, force, dep.id, dep.previous_rev)
                await attempt.emit(
                    _event(attempt, "DeployStarted", ctx, message=f"{kind} from {dep.previous_rev or 'nothing'}")
                )
                await _run_stages(attempt, ctx)
    except TaskFailed:
        DEPLOYS.labels("failed").inc()
        raise
    if kind == "rollback":
        DEPLOYS.labels("rolled_back").inc()
        ROLLBACK_SECONDS.observe(time.perf_counter() - started)
    else:
        DEPLOYS.labels("succeeded").inc()
    flipped: EventType = "RollbackFlipped" if kind == "rollback" else "DeployFlipped"
    message = f"active was {ctx.previous_rev or 'nothing'}"
    if kind == "rollout":
        message = f"rollout started at {rollout_plan(task.payload).percent}% beside {ctx.previous_rev}"
    await attempt.emit(_event(attempt, flipped, ctx, message=message))
    await announce_route(rt.db, rt.redis, bot_id, rev_hash, prefix=rt.options.redis_prefix)


async def _run_stages(attempt: Attempt, ctx: DeployContext) -> None:
    rt = attempt.rt
    state: State = "created"
    stage: Stage = POLICY[0].stage
    try:
        for rule in POLICY:
            stage = rule.stage
            after = transition(state, stage)
            attempt.check()
            await deployments.record_stage(rt.db, ctx.deployment_id, stage, "started")
            await attempt.emit(_event(attempt, "DeployProgress", ctx, stage=stage))
            if rt.options.stage_hook is not None:
                await rt.options.stage_hook(stage, ctx.deployment_id)
            began = time.perf_counter()
            try:
                with start_span(f"deploy.{stage}"):
                    if stage == "flip":
                        await _flip(attempt, ctx)
                    else:
                        detail = await STAGE_HANDLERS[stage](rt, ctx)
            finally:
                DEPLOY_STAGE_SECONDS.labels(stage).observe(time.perf_counter() - began)
            if stage != "flip":
                await deployments.record_stage(rt.db, ctx.deployment_id, stage, "passed", detail)
            state = after
    except StageFailed as exc:
        await deployments.fail_deployment(rt.db, ctx.deployment_id, stage=stage, reason=exc.reason)
        raise TaskFailed(
            f"{ctx.kind} failed at {stage}: {exc.reason}", stage=stage, deployment_id=ctx.deployment_id
        ) from None
    except BaseException as exc:
        reason = f"interrupted at {stage}: {describe(exc)}"
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                deployments.fail_deployment(rt.db, ctx.deployment_id, stage=stage, reason=reason), _CLEANUP_S
            )
        raise


async def _flip(attempt: Attempt, ctx: DeployContext) -> None:
    rt, task = attempt.rt, attempt.task
    if ctx.kind == "rollout":
        await _start_rollout(attempt, ctx)
        return
    async with transaction(rt.db) as conn:
        await attempt.fence(conn)
        result = await bots.flip_active(
            conn, ctx.bot_id, ctx.previous_rev, ctx.rev_hash, deployment_id=ctx.deployment_id,
            drain=ctx.kind == "deploy",
        )  # fmt: skip
        if result.flipped:
            detail = {"deploymentId": ctx.deployment_id, "kind": ctx.kind, "previousRev": ctx.previous_rev}
            await audit.record(
                conn, action=f"bot.{ctx.kind}", actor_id=task.actor_id, bot_id=ctx.bot_id, target=ctx.rev_hash,
                detail={**detail, "forced": ctx.force},
            )  # fmt: skip
            await attempt.complete(conn, {**detail, "revHash": ctx.rev_hash})
    if not result.flipped:
        if result.active_rev == ctx.previous_rev:
            raise StageFailed(
                f"a rollout started during the {ctx.kind}: promote or abort it first; nothing was flipped"
            )
        raise StageFailed(
            f"the active revision changed from {ctx.previous_rev} to {result.active_rev} during the {ctx.kind}; "
            "nothing was flipped"
        )


async def _start_rollout(attempt: Attempt, ctx: DeployContext) -> None:
    rt, task = attempt.rt, attempt.task
    plan = rollout_plan(task.payload)
    try:
        async with transaction(rt.db) as conn:
            await attempt.fence(conn)
            rollout = await rollouts.start(
                conn, bot_id=ctx.bot_id, stable_rev=ctx.previous_rev, candidate_rev=ctx.rev_hash, plan=plan,
                deployment_id=ctx.deployment_id, actor_id=task.actor_id, why=str(task.payload.get("why", "")),
            )  # fmt: skip
            detail = {"deploymentId": ctx.deployment_id, "kind": "rollout", "previousRev": ctx.previous_rev}
            await audit.record(
                conn, action="bot.rollout.start", actor_id=task.actor_id, bot_id=ctx.bot_id, target=ctx.rev_hash,
                detail={**detail, "rolloutId": rollout.id, "percent": plan.percent, "auto": plan.auto},
            )  # fmt: skip
            await attempt.complete(conn, {**detail, "revHash": ctx.rev_hash, "rolloutId": rollout.id})
    except rollouts.RolloutRefused as exc:
        raise StageFailed(str(exc)) from None


async def close_interrupted(db: Db, attempt: Attempt) -> list[int]:
    """Close the deployments earlier attempts of this task left running; return their ids."""
    task = attempt.task
    assert task.bot_id is not None
    closed = []
    for dep in await deployments.list_deployments(db, task.bot_id, limit=20):
        if dep.task_id != task.id or dep.status != "running":
            continue
        stage = dep.stages[-1].stage if dep.stages else "preflight"
        reason = f"interrupted: the worker stopped during {stage}; attempt {task.attempts} starts a new deployment"
        if await deployments.fail_deployment(db, dep.id, stage=stage, reason=reason):
            closed.append(dep.id)
    return closed


def _event(attempt: Attempt, type: EventType, ctx: DeployContext, **fields: Any) -> Any:
    return progress_event(
        type, bot_id=ctx.bot_id, task_id=attempt.task_id, rev_hash=ctx.rev_hash, deployment_id=ctx.deployment_id,
        **fields,
    )  # fmt: skip


async def deploy_failed(attempt: Attempt, failure: TaskFailed) -> None:
    """Announce a failed deploy or rollback: DeployFailed{stage, reason}."""
    assert attempt.task.bot_id is not None
    rev_hash = attempt.task.payload.get("revHash") or attempt.task.payload.get("toRev")
    await attempt.emit(
        progress_event(
            "DeployFailed",
            bot_id=attempt.task.bot_id,
            task_id=attempt.task_id,
            rev_hash=rev_hash,
            stage=failure.stage or "preflight",
            reason=failure.reason,
            deployment_id=failure.deployment_id,
        )
    )


def declare(broker: dramatiq.Broker, runtime: RuntimeSource) -> dramatiq.Actor[[str], None]:
    """Declare the deploy actor on ``broker``."""

    async def deploy(task_id: str) -> None:
        await run_deploy(runtime(), UUID(task_id))

    return dramatiq.actor(
        broker=broker,
        actor_name=ACTOR,
        queue_name=CONTROL_QUEUE,
        max_retries=MAX_RETRIES,
        min_backoff=1_000,
        max_backoff=60_000,
        retry_when=retry_when,
        time_limit=10 * 60_000,
    )(deploy)
