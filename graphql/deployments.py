"""Long work: ``generate``, ``deploy``, ``rollback`` mutations; ``deployments``/``deployment``,
``tasks``/``task`` queries.

The API only records a task and wakes a worker (``workers/enqueue.py``, the same
functions the CLI uses); progress arrives on the ``progress`` subscription and in
the task and deployment rows. Every starting mutation takes an
``idempotencyKey``: the same key with the same request returns the same task
and starts nothing; the same key with another request is
``IdempotencyKeyReused``. Keys are per user.

Editors generate; only owners deploy and roll back (docs/api.md#roles).
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated
from uuid import UUID

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from botkiln.graphql.connections import Connection, connection, decode_cursor, decode_time_cursor, page_size
from botkiln.graphql.context import Context
from botkiln.graphql.permissions import CanEditBot, CanOwnBot, CanViewBot, require_bot_role
from botkiln.graphql.results import IdempotencyKeyReused, InvalidInput, NotFound, invalid, not_found
from botkiln.infra.db import deployments, revisions, specs, tasks
from botkiln.workers import enqueue


@strawberry.enum
class TaskStatus(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@strawberry.enum
class DeploymentKind(Enum):
    DEPLOY = "deploy"
    ROLLBACK = "rollback"
    ROLLOUT = "rollout"


@strawberry.enum
class DeploymentStatus(Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@strawberry.enum
class StageStatus(Enum):
    STARTED = "started"
    PASSED = "passed"
    FAILED = "failed"


@strawberry.enum(description="Which generator builds the revision.")
class Generator(Enum):
    COMPILER = "compiler"
    LLM = "llm"


@strawberry.type(description="Long work (generate, deploy, rollback) as a worker runs it.")
class Task:
    id: strawberry.ID
    kind: str
    status: TaskStatus
    bot_id: strawberry.ID | None
    idempotency_key: str | None
    attempts: int
    max_attempts: int
    result: JSON | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_row(cls, task: tasks.Task) -> Task:
        """The GraphQL form of a task row (its payload and lease stay inside)."""
        return cls(
            id=strawberry.ID(str(task.id)),
            kind=task.kind,
            status=TaskStatus(task.status),
            bot_id=None if task.bot_id is None else strawberry.ID(task.bot_id),
            idempotency_key=task.idempotency_key,
            attempts=task.attempts,
            max_attempts=task.max_attempts,
            result=task.result,
            error=task.error,
            created_at=task.created_at,
            started_at=task.started_at,
            finished_at=task.finished_at,
        )


@strawberry.type(description="One stage event of a deployment.")
class DeploymentStage:
    stage: str
    status: StageStatus
    detail: str
    at: datetime


@strawberry.type(description="An immutable record: traffic of a bot pointed (or tried to point) at a revision.")
class Deployment:
    id: strawberry.ID
    bot_id: strawberry.ID
    rev_hash: str
    previous_rev_hash: str | None
    kind: DeploymentKind
    status: DeploymentStatus
    why: str
    failed_stage: str | None
    reason: str | None
    stages: list[DeploymentStage]
    task_id: strawberry.ID | None
    actor_id: strawberry.ID | None
    created_at: datetime
    finished_at: datetime | None
    percent: int | None = strawberry.field(
        default=None, description="A rollout step's share of chats on `revHash`; null for a deploy or rollback."
    )

    @classmethod
    def from_row(cls, d: deployments.Deployment) -> Deployment:
        """The GraphQL form of a deployment with its stages."""
        return cls(
            id=strawberry.ID(str(d.id)),
            bot_id=strawberry.ID(d.bot_id),
            rev_hash=d.rev_hash,
            previous_rev_hash=d.previous_rev,
            kind=DeploymentKind(d.kind),
            status=DeploymentStatus(d.status),
            why=d.why,
            failed_stage=d.failed_stage,
            reason=d.reason,
            stages=[
                DeploymentStage(stage=s.stage, status=StageStatus(s.status), detail=s.detail, at=s.at) for s in d.stages
            ],
            task_id=None if d.task_id is None else strawberry.ID(str(d.task_id)),
            actor_id=None if d.actor_id is None else strawberry.ID(str(d.actor_id)),
            created_at=d.created_at,
            finished_at=d.finished_at,
            percent=d.percent,
        )


@strawberry.type(description="The work is recorded and a worker was told; follow it on the progress subscription.")
class TaskStarted:
    task: Task


StartTaskResult = Annotated[
    TaskStarted | NotFound | IdempotencyKeyReused | InvalidInput, strawberry.union("StartTaskResult")
]


def _check_key(key: str) -> InvalidInput | None:
    if not 1 <= len(key) <= 255:
        return invalid("idempotencyKey", "1 to 255 characters, new for each distinct request")
    return None


def _started(outcome: tasks.Task | tasks.IdempotencyKeyReused) -> StartTaskResult:
    if isinstance(outcome, tasks.IdempotencyKeyReused):
        return IdempotencyKeyReused(
            message="this idempotency key was used for a different request; use a new key",
            idempotency_key=outcome.idempotency_key,
            task_id=strawberry.ID(str(outcome.task_id)),
        )
    return TaskStarted(task=Task.from_row(outcome))


@strawberry.type
class DeploymentQuery:
    @strawberry.field(permission_classes=[CanViewBot], description="The bot's deployments, newest first.")
    async def deployments(
        self, info: Info[Context, None], bot_id: strawberry.ID, first: int | None = None, after: str | None = None
    ) -> Connection[Deployment]:
        size = page_size(first)
        before = decode_cursor("deployments", after)
        rows = await deployments.list_deployments(
            info.context.services.db, str(bot_id), limit=size + 1, before=before if isinstance(before, int) else None
        )
        return connection(rows, size, "deployments", lambda d: d.id, Deployment.from_row)

    @strawberry.field(description="One deployment (viewer role on its bot).")
    async def deployment(self, info: Info[Context, None], id: strawberry.ID) -> Deployment | None:
        try:
            deployment_id = int(str(id))
        except ValueError:
            return None
        found = await deployments.get_deployment(info.context.services.db, deployment_id)
        if found is None:
            return None
        await require_bot_role(info.context, found.bot_id, "viewer")
        return Deployment.from_row(found)

    @strawberry.field(permission_classes=[CanViewBot], description="The bot's tasks, newest first.")
    async def tasks(
        self, info: Info[Context, None], bot_id: strawberry.ID, first: int | None = None, after: str | None = None
    ) -> Connection[Task]:
        size = page_size(first)
        before = decode_time_cursor("tasks", after)
        rows = await tasks.list_tasks(info.context.services.db, str(bot_id), limit=size + 1, before=before)
        return connection(rows, size, "tasks", lambda t: t.created_at.isoformat(), Task.from_row)

    @strawberry.field(description="One task (viewer role on its bot; a task without a bot: its author only).")
    async def task(self, info: Info[Context, None], id: strawberry.ID) -> Task | None:
        try:
            task_id = UUID(str(id))
        except ValueError:
            return None
        found = await tasks.get_task(info.context.services.db, task_id)
        if found is None:
            return None
        if found.bot_id is not None:
            await require_bot_role(info.context, found.bot_id, "viewer")
        elif found.actor_id is None or found.actor_id != info.context.user_id:
            return None
        return Task.from_row(found)


@strawberry.type
class DeploymentMutation:
    @strawberry.mutation(
        permission_classes=[CanEditBot],
        description="Build a revision from a spec version (the latest when specVersion is null).",
    )
    async def generate(
        self,
        info: Info[Context, None],
        bot_id: strawberry.ID,
        idempotency_key: str,
        spec_version: int | None = None,
        generator: Generator = Generator.COMPILER,
    ) -> StartTaskResult:
        if (problem := _check_key(idempotency_key)) is not None:
            return problem
        services = info.context.services
        saved = await specs.get_spec_version(services.db, str(bot_id), spec_version)
        if saved is None:
            return not_found("that spec version" if spec_version is not None else "a saved spec version")
        outcome = await enqueue.enqueue_generate(
            services.db,
            services.broker,
            bot_id=str(bot_id),
            spec_version=saved.version,
            user_id=info.context.user_id,
            idempotency_key=idempotency_key,
            generator=generator.value,
        )
        return _started(outcome)

    @strawberry.mutation(
        permission_classes=[CanOwnBot],
        description="Deploy a revision: preflight, stage, pre-warm, health, then flip. "
        "force accepts a per-chat state shape change.",
    )
    async def deploy(
        self,
        info: Info[Context, None],
        bot_id: strawberry.ID,
        rev_hash: str,
        idempotency_key: str,
        force: bool = False,
        why: str = "",
    ) -> StartTaskResult:
        if (problem := _check_key(idempotency_key)) is not None:
            return problem
        if len(why) > 1000:
            return invalid("why", "at most 1000 characters")
        services = info.context.services
        if await revisions.get_revision(services.db, str(bot_id), rev_hash) is None:
            return not_found("that revision")
        outcome = await enqueue.enqueue_deploy(
            services.db,
            services.broker,
            bot_id=str(bot_id),
            rev_hash=rev_hash,
            user_id=info.context.user_id,
            idempotency_key=idempotency_key,
            force_incompatible=force,
            why=why,
        )
        return _started(outcome)

    @strawberry.mutation(
        permission_classes=[CanOwnBot],
        description="Flip back to the revision active before the last flip (or to toRevHash, "
        "which must have served before). No rebuild.",
    )
    async def rollback(
        self,
        info: Info[Context, None],
        bot_id: strawberry.ID,
        idempotency_key: str,
        to_rev_hash: str | None = None,
        force: bool = False,
        why: str = "",
    ) -> StartTaskResult:
        if (problem := _check_key(idempotency_key)) is not None:
            return problem
        if len(why) > 1000:
            return invalid("why", "at most 1000 characters")
        services = info.context.services
        if to_rev_hash is not None and await revisions.get_revision(services.db, str(bot_id), to_rev_hash) is None:
            return not_found("that revision")
        outcome = await enqueue.enqueue_rollback(
            services.db,
            services.broker,
            bot_id=str(bot_id),
            user_id=info.context.user_id,
            idempotency_key=idempotency_key,
            to_rev=to_rev_hash,
            force_incompatible=force,
            why=why,
        )
        return _started(outcome)
