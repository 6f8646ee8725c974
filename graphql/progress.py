"""The ``progress`` subscription: what generate, deploy and rollback tasks are doing.

Events come from any worker through Redis pub/sub (``infra/progress.py``), so a
subscriber on any API replica sees every event published after its subscription
became active (pub/sub keeps nothing: read the task or deployment to catch up).
``progress(botId)`` streams one bot (viewer role needed); ``progress`` without
``botId`` streams every bot the viewer can see, bots created later included —
access is checked once per bot per connection, so a membership removed while a
connection is open takes effect on the next connection.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry.exceptions import StrawberryGraphQLError
from strawberry.types import Info

from botkiln.graphql.context import Context
from botkiln.graphql.permissions import UNAUTHENTICATED, forbidden, require_bot_role
from botkiln.infra import progress


@strawberry.interface(description="Something a long task did; `at` is when (UTC).")
class ProgressEvent:
    bot_id: strawberry.ID
    task_id: strawberry.ID
    at: datetime


@strawberry.type(description="A generate task started.")
class GenerateStarted(ProgressEvent):
    message: str | None


@strawberry.type(description="A generate task passed a step (build, gates, store).")
class GenerateProgress(ProgressEvent):
    stage: str | None
    message: str | None


@strawberry.type(description="The revision exists (built now, or found already built).")
class GenerateSucceeded(ProgressEvent):
    rev_hash: str


@strawberry.type(description="The build failed; `reason` says why.")
class GenerateFailed(ProgressEvent):
    reason: str


@strawberry.type(description="A deploy or rollback started.")
class DeployStarted(ProgressEvent):
    rev_hash: str | None
    deployment_id: strawberry.ID | None


@strawberry.type(description="A deploy stage passed (preflight, compat, stage, prewarm, health).")
class DeployProgress(ProgressEvent):
    stage: str | None
    message: str | None
    deployment_id: strawberry.ID | None


@strawberry.type(description="Traffic now goes to `revHash`.")
class DeployFlipped(ProgressEvent):
    rev_hash: str
    deployment_id: strawberry.ID | None


@strawberry.type(description="A deploy or rollback failed at `stage`; the old revision stays active.")
class DeployFailed(ProgressEvent):
    stage: str | None
    reason: str
    deployment_id: strawberry.ID | None


@strawberry.type(description="A rollback flipped traffic back to `revHash`.")
class RollbackFlipped(ProgressEvent):
    rev_hash: str
    deployment_id: strawberry.ID | None


@strawberry.type(
    description="A gradual rollout changed: `stage` is its status (running, paused, completed, aborted), `message` "
    "says the share of chats on the candidate `revHash` or why it was aborted; `deploymentId` records a traffic step."
)
class RolloutChanged(ProgressEvent):
    rev_hash: str
    stage: str | None
    message: str | None
    deployment_id: strawberry.ID | None


EVENT_TYPES: tuple[type[ProgressEvent], ...] = (
    GenerateStarted,
    GenerateProgress,
    GenerateSucceeded,
    GenerateFailed,
    DeployStarted,
    DeployProgress,
    DeployFlipped,
    DeployFailed,
    RollbackFlipped,
    RolloutChanged,
)
_BY_NAME = {cls.__name__: cls for cls in EVENT_TYPES}


def to_graphql(event: progress.ProgressEvent) -> ProgressEvent:
    """The GraphQL form of an event from Redis."""
    cls = _BY_NAME[event["type"]]
    deployment_id = event.get("deploymentId")
    fields: dict[str, object] = {
        "bot_id": strawberry.ID(event["botId"]),
        "task_id": strawberry.ID(event["taskId"]),
        "at": datetime.fromisoformat(event["at"]),
        "rev_hash": event.get("revHash"),
        "stage": event.get("stage"),
        "reason": event.get("reason", ""),
        "message": event.get("message"),
        "deployment_id": None if deployment_id is None else strawberry.ID(str(deployment_id)),
    }
    wanted = cls.__strawberry_definition__.fields  # type: ignore[attr-defined]
    factory: Any = cls
    return cast(ProgressEvent, factory(**{f.python_name: fields[f.python_name] for f in wanted}))


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Progress events of one bot, or of every bot you can see.")
    async def progress(
        self, info: Info[Context, None], bot_id: strawberry.ID | None = None
    ) -> AsyncGenerator[ProgressEvent, None]:
        context = info.context
        if context.user_id is None:
            raise StrawberryGraphQLError(forbidden(None, ""), extensions=UNAUTHENTICATED)
        if bot_id is not None:
            await require_bot_role(context, str(bot_id), "viewer")
        wanted = None if bot_id is None else {str(bot_id)}
        stream = cast(AsyncGenerator[progress.ProgressEvent, None], progress.subscribe(context.services.redis, wanted))
        async with aclosing(stream) as events:
            async for event in events:
                if bot_id is None and await context.bot_role(event["botId"]) is None:
                    continue
                yield to_graphql(event)
