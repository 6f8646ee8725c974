"""Analytics: the ``analytics(botId, days)`` query over the telemetry in ClickHouse (``infra/analytics.py``).

Viewers of the bot's project may read it. ``days`` (1..``MAX_DAYS``, default 14)
counts UTC days back from today, today included. Each part of the summary runs
its own query when asked for: ``daily`` (one entry per day, zeros included),
``eventCounts`` (per type over the window, most frequent first) and
``funnel(flowId)`` (started → each step in the flow's order → completed, in
distinct chats; the order comes from the spec of the active revision, else of
the latest spec version, else the most-reached steps come first).

An unreachable analytics store is an ``UNAVAILABLE`` error naming no address;
the detail is logged with the request id.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from datetime import date
from enum import Enum
from typing import Any, TypeVar

import strawberry
from strawberry.exceptions import StrawberryGraphQLError
from strawberry.types import Info

from botkiln.graphql.context import Context
from botkiln.graphql.permissions import CanViewBot
from botkiln.infra.analytics import days_window
from botkiln.infra.db import bots, revisions, specs
from botkiln.infra.ports import AnalyticsError, AnalyticsSink

MAX_DAYS = 90
DEFAULT_DAYS = 14

_log = logging.getLogger("botkiln.graphql")
T = TypeVar("T")


@strawberry.type(description="One UTC day of a bot's traffic.")
class AnalyticsDay:
    day: date
    updates: int = strawberry.field(description="Distinct updates the executors processed.")
    messages_sent: int = strawberry.field(description="Messages Telegram accepted.")
    errors: int = strawberry.field(
        description="Updates with an api_error, flow_aborted, executor_error or send_failed event."
    )
    error_rate: float = strawberry.field(description="errors / updates (0 without updates).")
    p50_latency_ms: float | None = strawberry.field(
        description="Median webhook-to-sent latency of the day's messages (exact nearest rank); null without any."
    )
    p95_latency_ms: float | None = strawberry.field(description="95th percentile of the same; null without any.")


@strawberry.type(description="How many telemetry events of one type the window holds.")
class EventCount:
    type: str
    count: int


@strawberry.enum(description="Where a funnel entry sits in its flow.")
class FunnelStage(Enum):
    STARTED = "started"
    STEP = "step"
    COMPLETED = "completed"


@strawberry.type(description="Distinct chats that reached one stage of a flow.")
class FunnelStep:
    stage: FunnelStage
    step: str | None = strawberry.field(description="The step's id (null for STARTED and COMPLETED).")
    chats: int


class AnalyticsUnavailableError(StrawberryGraphQLError):
    """The analytics store did not answer: shown to the client without the store's address."""

    def __init__(self) -> None:
        super().__init__("Analytics are unavailable right now; try again later.", extensions={"code": "UNAVAILABLE"})


async def _ask(info: Info[Context, None], question: Callable[[AnalyticsSink], T]) -> T:
    try:
        return await asyncio.to_thread(question, info.context.services.analytics)
    except AnalyticsError as exc:
        _log.error("analytics unavailable (request id %s): %s", info.context.request_id, exc)
        raise AnalyticsUnavailableError from None


async def _step_order(info: Info[Context, None], bot_id: str, flow_id: str) -> list[str]:
    db = info.context.services.db
    bot = await bots.get_bot(db, bot_id)
    version: int | None = None
    if bot is not None and bot.active_rev is not None:
        revision = await revisions.get_revision(db, bot_id, bot.active_rev)
        version = None if revision is None else revision.spec_version
    found = await specs.get_spec_version(db, bot_id, version)
    flows: list[dict[str, Any]] = [] if found is None else found.spec.get("flows", [])
    for flow in flows:
        if flow.get("id") == flow_id:
            return [str(step["id"]) for step in flow.get("steps", [])]
    return []


@strawberry.type(description="A bot's analytics over a window of UTC days.")
class AnalyticsSummary:
    bot_id: strawberry.ID
    since: date = strawberry.field(description="First day of the window (UTC).")
    until: date = strawberry.field(description="Last day of the window (UTC, today).")

    @strawberry.field(description="One entry per day of the window, oldest first.")
    async def daily(self, info: Info[Context, None]) -> list[AnalyticsDay]:
        days = await _ask(info, lambda sink: sink.daily(str(self.bot_id), self.since, self.until))
        return [
            AnalyticsDay(
                day=d.day,
                updates=d.updates,
                messages_sent=d.messages_sent,
                errors=d.errors,
                error_rate=d.error_rate,
                p50_latency_ms=d.p50_latency_ms,
                p95_latency_ms=d.p95_latency_ms,
            )
            for d in days
        ]

    @strawberry.field(description="Events per type over the window, most frequent first.")
    async def event_counts(self, info: Info[Context, None]) -> list[EventCount]:
        rows = await _ask(info, lambda sink: sink.event_counts(str(self.bot_id), self.since, self.until))
        totals: Counter[str] = Counter()
        for row in rows:
            totals[row.type] += row.count
        return [EventCount(type=t, count=n) for t, n in sorted(totals.items(), key=lambda item: (-item[1], item[0]))]

    @strawberry.field(description="The flow's funnel: STARTED, each STEP in the flow's order, COMPLETED.")
    async def funnel(self, info: Info[Context, None], flow_id: str) -> list[FunnelStep]:
        order = await _step_order(info, str(self.bot_id), flow_id)
        stages = await _ask(
            info, lambda sink: sink.funnel(str(self.bot_id), flow_id, self.since, self.until, steps=order)
        )
        return [FunnelStep(stage=FunnelStage(s.stage), step=s.step, chats=s.chats) for s in stages]


@strawberry.type
class AnalyticsQuery:
    @strawberry.field(
        permission_classes=[CanViewBot],
        description=f"The bot's analytics over the last `days` UTC days, today included (1..{MAX_DAYS}).",
    )
    async def analytics(self, bot_id: strawberry.ID, days: int = DEFAULT_DAYS) -> AnalyticsSummary:
        if not 1 <= days <= MAX_DAYS:
            message = f"days must be 1..{MAX_DAYS}; got {days}"
            raise StrawberryGraphQLError(message, extensions={"code": "BAD_USER_INPUT"})
        since, until = days_window(days)
        return AnalyticsSummary(bot_id=bot_id, since=since, until=until)
