"""Progressive delivery: start, advance, pause, resume, promote and abort rollouts; pin chats (docs/rollouts.md).

A rollout starts as a deploy task (preflight, stage, pre-warm and health run as for a deploy; the
flip stage opens the rollout instead of moving every chat). The other operations are single
transactions, done in the request, each published to the runtime before the answer and
announced as ``RolloutChanged`` on the progress subscription. Owner role, like deploys.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.types import Info

from botkiln.graphql.context import Context
from botkiln.graphql.deployments import StartTaskResult, _check_key, _started
from botkiln.graphql.permissions import CanOwnBot, CanViewBot
from botkiln.graphql.results import InvalidInput, NotFound, Problem, invalid, not_found
from botkiln.infra.db import bots, revisions, rollouts
from botkiln.infra.db.rollouts import RolloutPlan, RolloutRefused
from botkiln.infra.rollout_control import Operation, announce_route, operate, revision_stats
from botkiln.infra.routing import RevisionStats
from botkiln.workers import enqueue

MAX_CHAT_ID = 2**53
"""Telegram chat ids fit in 52 bits (and in a double); a larger number is not a chat."""


@strawberry.enum(description="A rollout's life: running and paused ones are live (at most one per bot).")
class RolloutStatus(Enum):
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    ABORTED = "aborted"


@strawberry.type(description="One revision's share of a rollout, counted by the executors while it is live.")
class RevisionShare:
    rev_hash: str
    updates: int
    errors: int = strawberry.field(description="Updates that emitted an error event or were dead-lettered.")
    dead_lettered: int
    chats: int = strawberry.field(description="Distinct chats served (estimated, ±1%).")
    error_rate: float
    dead_letter_rate: float

    @classmethod
    def of(cls, rev_hash: str, stats: RevisionStats) -> RevisionShare:
        return cls(
            rev_hash=rev_hash, updates=stats.updates, errors=stats.errors, dead_lettered=stats.dead,
            chats=stats.chats, error_rate=stats.error_rate, dead_letter_rate=stats.dead_rate,
        )  # fmt: skip


@strawberry.type(description="A gradual rollout of `candidateRev` beside `stableRev` (the active revision).")
class Rollout:
    id: strawberry.ID
    bot_id: strawberry.ID
    stable_rev: str
    candidate_rev: str
    percent: int = strawberry.field(description="Share of chats (by a stable hash of the chat id) on the candidate.")
    status: RolloutStatus
    steps: list[int] = strawberry.field(description="The planned percentages (automatic rollouts walk them).")
    auto: bool
    dwell_sec: int
    error_margin: float
    min_updates: int
    step_started_at: datetime
    next_step: int | None
    reason: str
    created_at: datetime
    ended_at: datetime | None
    pinned_chats: list[str] = strawberry.field(description="Chat ids pinned to the candidate (strings: 64-bit).")
    stable: RevisionShare
    candidate: RevisionShare

    @classmethod
    async def build(cls, context: Context, ro: rollouts.Rollout) -> Rollout:
        services = context.services
        stable, candidate = await revision_stats(services.redis, ro, prefix=services.queue_prefix)
        return cls(
            id=strawberry.ID(str(ro.id)), bot_id=strawberry.ID(ro.bot_id), stable_rev=ro.stable_rev,
            candidate_rev=ro.candidate_rev, percent=ro.percent, status=RolloutStatus(ro.status), steps=list(ro.steps),
            auto=ro.auto, dwell_sec=ro.dwell_s, error_margin=ro.error_margin, min_updates=ro.min_updates,
            step_started_at=ro.step_started_at, next_step=ro.next_step() if ro.live else None, reason=ro.reason,
            created_at=ro.created_at, ended_at=ro.ended_at, pinned_chats=[str(c) for c in ro.pins],
            stable=RevisionShare.of(ro.stable_rev, stable), candidate=RevisionShare.of(ro.candidate_rev, candidate),
        )  # fmt: skip


@strawberry.type(description="The rollout after the change; `deploymentId` records a traffic step.")
class RolloutUpdated:
    rollout: Rollout
    deployment_id: strawberry.ID | None


@strawberry.type(description="The rollout cannot do that now (none is live, a share would fall, …); nothing changed.")
class RolloutRefusedProblem(Problem):
    pass


@strawberry.type(description="How long a conversation stays on the revision it started on.")
class AffinitySet:
    bot_id: strawberry.ID
    max_age_sec: int


RolloutResult = Annotated[
    RolloutUpdated | NotFound | InvalidInput | RolloutRefusedProblem, strawberry.union("RolloutResult")
]
AffinityResult = Annotated[AffinitySet | NotFound | InvalidInput, strawberry.union("AffinityResult")]


def _chat_id(raw: str) -> int | None:
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value != 0 and abs(value) < MAX_CHAT_ID else None


@strawberry.type
class RolloutQuery:
    @strawberry.field(permission_classes=[CanViewBot], description="The bot's live rollout, else its latest one.")
    async def rollout(self, info: Info[Context, None], bot_id: strawberry.ID) -> Rollout | None:
        db = info.context.services.db
        found = await rollouts.get_live(db, str(bot_id))
        if found is None:
            latest = await rollouts.list_rollouts(db, str(bot_id), limit=1)
            found = latest[0] if latest else None
        return None if found is None else await Rollout.build(info.context, found)

    @strawberry.field(permission_classes=[CanViewBot], description="The bot's rollouts, newest first (at most 50).")
    async def rollouts(self, info: Info[Context, None], bot_id: strawberry.ID, first: int = 20) -> list[Rollout]:
        rows = await rollouts.list_rollouts(info.context.services.db, str(bot_id), limit=max(1, min(first, 50)))
        return [await Rollout.build(info.context, r) for r in rows]


async def _operate(
    info: Info[Context, None], bot_id: strawberry.ID, operation: Operation, **kwargs: object
) -> RolloutResult:
    context = info.context
    services = context.services
    try:
        changed = await operate(
            services.db, services.redis, str(bot_id), operation, prefix=services.queue_prefix,
            actor_id=context.user_id, **kwargs,  # type: ignore[arg-type]
        )  # fmt: skip
    except RolloutRefused as exc:
        return RolloutRefusedProblem(message=str(exc))
    deployment = None if changed.deployment_id is None else strawberry.ID(str(changed.deployment_id))
    return RolloutUpdated(rollout=await Rollout.build(context, changed.rollout), deployment_id=deployment)


@strawberry.type
class RolloutMutation:
    @strawberry.mutation(
        permission_classes=[CanOwnBot],
        description="Start a gradual rollout of a revision: the deploy stages run, then `percent` of chats (and the "
        "pinned ones) go to it. With `auto`, it walks `steps` after `dwellSec` each and aborts on its own when its "
        "error or dead-letter rate exceeds the stable revision's by `errorMargin` (after `minUpdates` updates).",
    )
    async def start_rollout(
        self,
        info: Info[Context, None],
        bot_id: strawberry.ID,
        rev_hash: str,
        idempotency_key: str,
        percent: int = 0,
        steps: list[int] | None = None,
        auto: bool = False,
        dwell_sec: int = 300,
        error_margin: float = 0.05,
        min_updates: int = 50,
        why: str = "",
    ) -> StartTaskResult:
        if (problem := _check_key(idempotency_key)) is not None:
            return problem
        if len(why) > 1000:
            return invalid("why", "at most 1000 characters")
        plan = RolloutPlan(
            percent=percent, steps=tuple(steps) if steps is not None else RolloutPlan.steps, auto=auto,
            dwell_s=dwell_sec, error_margin=error_margin, min_updates=min_updates,
        )  # fmt: skip
        if problems := plan.problems():
            field, why_bad = problems[0]
            return invalid(field, why_bad)
        services = info.context.services
        if await revisions.get_revision(services.db, str(bot_id), rev_hash) is None:
            return not_found("that revision")
        outcome = await enqueue.enqueue_deploy(
            services.db, services.broker, bot_id=str(bot_id), rev_hash=rev_hash, user_id=info.context.user_id,
            idempotency_key=idempotency_key, why=why,
            rollout={
                "percent": plan.percent, "steps": list(plan.steps), "auto": plan.auto, "dwellSec": plan.dwell_s,
                "errorMargin": plan.error_margin, "minUpdates": plan.min_updates,
            },
        )  # fmt: skip
        return _started(outcome)

    @strawberry.mutation(
        permission_classes=[CanOwnBot],
        description="Raise the candidate's share to `percent` (default: the next planned step); 100 promotes. "
        "The share never falls: only chats on the stable revision move.",
    )
    async def advance_rollout(
        self, info: Info[Context, None], bot_id: strawberry.ID, percent: int | None = None, why: str = ""
    ) -> RolloutResult:
        if percent is not None and not 1 <= percent <= 100:
            return invalid("percent", "1 to 100")
        return await _operate(info, bot_id, "advance", percent=percent, why=why[:1000])

    @strawberry.mutation(permission_classes=[CanOwnBot], description="Stop automatic steps; the share stays.")
    async def pause_rollout(self, info: Info[Context, None], bot_id: strawberry.ID) -> RolloutResult:
        return await _operate(info, bot_id, "pause")

    @strawberry.mutation(
        permission_classes=[CanOwnBot], description="Resume automatic steps (the current step's dwell time restarts)."
    )
    async def resume_rollout(self, info: Info[Context, None], bot_id: strawberry.ID) -> RolloutResult:
        return await _operate(info, bot_id, "resume")

    @strawberry.mutation(
        permission_classes=[CanOwnBot],
        description="Make the candidate the active revision for every chat (conversations under way on the stable "
        "revision finish there, within the affinity window).",
    )
    async def promote_rollout(self, info: Info[Context, None], bot_id: strawberry.ID, why: str = "") -> RolloutResult:
        return await _operate(info, bot_id, "promote", why=why[:1000])

    @strawberry.mutation(
        permission_classes=[CanOwnBot],
        description="Send every chat back to the stable revision and end the rollout (no conversation stays on the "
        "candidate).",
    )
    async def abort_rollout(self, info: Info[Context, None], bot_id: strawberry.ID, why: str = "") -> RolloutResult:
        return await _operate(info, bot_id, "abort", why=why[:1000])

    @strawberry.mutation(
        permission_classes=[CanOwnBot],
        description="Pin a chat (e.g. your own Telegram account) to the live rollout's candidate, whatever its share.",
    )
    async def pin_chat(self, info: Info[Context, None], bot_id: strawberry.ID, chat_id: str) -> RolloutResult:
        chat = _chat_id(chat_id)
        if chat is None:
            return invalid("chatId", "a Telegram chat id: a non-zero integer")
        return await _operate(info, bot_id, "pin", chat_id=chat)

    @strawberry.mutation(permission_classes=[CanOwnBot], description="Unpin a chat from the live rollout.")
    async def unpin_chat(self, info: Info[Context, None], bot_id: strawberry.ID, chat_id: str) -> RolloutResult:
        chat = _chat_id(chat_id)
        if chat is None:
            return invalid("chatId", "a Telegram chat id: a non-zero integer")
        return await _operate(info, bot_id, "unpin", chat_id=chat)

    @strawberry.mutation(
        permission_classes=[CanOwnBot],
        description="How long a chat in the middle of a flow stays on the revision that started it after a flip or a "
        "rollout step (0: never; at most 604800 s).",
    )
    async def set_conversation_affinity(
        self, info: Info[Context, None], bot_id: strawberry.ID, max_age_sec: int
    ) -> AffinityResult:
        if not 0 <= max_age_sec <= 604_800:
            return invalid("maxAgeSec", "0 to 604800 seconds")
        services = info.context.services
        if not await rollouts.set_affinity(services.db, str(bot_id), max_age_sec):
            return not_found("that bot")
        bot = await bots.get_bot(services.db, str(bot_id))
        await announce_route(
            services.db, services.redis, str(bot_id), bot.active_rev if bot else None, prefix=services.queue_prefix
        )
        return AffinitySet(bot_id=bot_id, max_age_sec=max_age_sec)
