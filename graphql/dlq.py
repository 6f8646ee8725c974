"""Dead letters: the ``deadLetters`` query, ``replayDeadLetters`` and ``dropDeadLetters`` (docs/dlq.md).

A bot has two dead-letter queues, both oldest first: ``INBOUND`` (``dlq:in:<botId>``,
updates whose processing failed, ``RedisChatQueue``) and ``OUTBOUND``
(``dlq:out:<botId>``, Bot API actions Telegram did not accept, ``OutboundSender``).
An entry's ``index`` is its position in the queue, from 0; ``index: null`` in a
mutation means every entry.

The operations are those of ``botkiln dlq`` (``infra/cli_dlq.py``), through the
same functions:

- replaying an inbound entry moves it to the tail of its chat's queue and wakes
  an executor; replaying an outbound action sends it again with the bot's token,
  within the bot's rate limits (a delivered one leaves the queue, one refused
  again stays, one already delivered is not sent twice);
- dropping removes entries by their exact value, so an entry someone replayed
  or dropped meanwhile is not counted.

Everything here needs the editor role: payloads and actions hold user data.
Replays and drops are audited (``dlq.replay``, ``dlq.drop``). Bot API errors are
shown with the token redacted.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, cast

import strawberry
from strawberry.exceptions import StrawberryGraphQLError
from strawberry.scalars import JSON
from strawberry.types import Info

from botkiln.graphql.connections import MAX_PAGE
from botkiln.graphql.context import Context, Services
from botkiln.graphql.permissions import CanEditBot
from botkiln.graphql.results import InvalidInput, NotFound, invalid, not_found
from botkiln.infra.chat_queue import DeadLetter as DeadUpdate
from botkiln.infra.chat_queue import RedisChatQueue
from botkiln.infra.cli_dlq import Which, choose, dlq_sender, drop_dead_actions, replay_dead_actions
from botkiln.infra.db import audit, bots
from botkiln.infra.outbound import DeadAction, OutboundSender, RetryPolicy
from botkiln.infra.telegram_api import redact
from botkiln.workers.execute import ChatReady

REPLAY_RETRY = RetryPolicy(attempts=3, first_delay_s=0.5, max_flood_waits=1)
"""Retries of an outbound replay inside a request: fewer than the runtime's, so the answer comes back soon."""


@strawberry.enum(description="Which of a bot's dead-letter queues.")
class DeadLetterQueue(Enum):
    INBOUND = "in"
    OUTBOUND = "out"


@strawberry.interface(description="An entry of a dead-letter queue; `index` is its position, oldest first, from 0.")
class DeadLetter:
    queue: DeadLetterQueue
    index: int
    chat_id: strawberry.ID
    at: datetime = strawberry.field(description="When it was dead-lettered.")
    payload: JSON | None = strawberry.field(
        description="INBOUND: the Telegram update (null when it is not JSON); OUTBOUND: the action {method, params}."
    )


@strawberry.type(description="An update the executors gave up on.")
class InboundDeadLetter(DeadLetter):
    update_id: strawberry.ID
    reason: str
    deliveries: int
    payload_text: str | None = strawberry.field(description="The payload as text when it is not JSON, else null.")


@strawberry.type(description="A Bot API action Telegram did not accept.")
class OutboundDeadLetter(DeadLetter):
    method: str
    error: str
    error_code: int | None
    attempts: int
    dedup_key: str = strawberry.field(description="The update the action came from.")
    action_index: int = strawberry.field(description="The action's position among its update's actions.")


@strawberry.enum(description="What became of one replayed entry.")
class ReplayStatus(Enum):
    REQUEUED = "requeued"
    SENT = "sent"
    ALREADY_DELIVERED = "already_delivered"
    FAILED = "failed"
    GONE = "gone"


@strawberry.type(
    description="One replayed entry: REQUEUED (inbound, at its chat's tail), SENT or ALREADY_DELIVERED (outbound, "
    "removed from the queue), FAILED (outbound, refused again and kept; see `error`) or GONE (replayed or dropped "
    "by someone else meanwhile)."
)
class ReplayOutcome:
    index: int
    chat_id: strawberry.ID
    status: ReplayStatus
    error: str | None = None


@strawberry.type(description="The chosen entries were replayed; `kept` of them stay in the queue.")
class DeadLettersReplayed:
    queue: DeadLetterQueue
    replayed: int
    kept: int
    outcomes: list[ReplayOutcome]


@strawberry.type(description="`dropped` entries were removed (fewer than chosen if someone took some meanwhile).")
class DeadLettersDropped:
    queue: DeadLetterQueue
    dropped: int


ReplayDeadLettersResult = Annotated[
    DeadLettersReplayed | NotFound | InvalidInput, strawberry.union("ReplayDeadLettersResult")
]
DropDeadLettersResult = Annotated[
    DeadLettersDropped | NotFound | InvalidInput, strawberry.union("DropDeadLettersResult")
]


def _at(at_ms: int) -> datetime:
    return datetime.fromtimestamp(at_ms / 1000, UTC)


def _inbound(index: int, d: DeadUpdate) -> InboundDeadLetter:
    try:
        payload, text = json.loads(d.payload), None
    except ValueError:
        payload, text = None, d.payload.decode("utf-8", "backslashreplace")
    return InboundDeadLetter(
        queue=DeadLetterQueue.INBOUND, index=index, chat_id=strawberry.ID(str(d.chat_id)), at=_at(d.at_ms),
        payload=cast(JSON, payload), update_id=strawberry.ID(str(d.update_id)), reason=redact(d.reason),
        deliveries=d.deliveries, payload_text=text,
    )  # fmt: skip


def _outbound(index: int, d: DeadAction) -> OutboundDeadLetter:
    return OutboundDeadLetter(
        queue=DeadLetterQueue.OUTBOUND, index=index, chat_id=strawberry.ID(str(d.chat_id)), at=_at(d.at_ms),
        payload=cast(JSON, d.action), method=d.action["method"], error=redact(d.error), error_code=d.error_code,
        attempts=d.attempts, dedup_key=d.dedup_key, action_index=d.index,
    )  # fmt: skip


def _chat_queue(services: Services) -> RedisChatQueue:
    return RedisChatQueue(services.redis, prefix=services.queue_prefix)


def _sender(services: Services) -> OutboundSender:
    return dlq_sender(services.redis, services.queue_prefix, services.bot_api, retry=REPLAY_RETRY)


def _which(index: int | None) -> Which | InvalidInput:
    if index is None:
        return "all"
    if index < 0:
        return invalid("index", "an entry's index (0, 1, …) as deadLetters lists it, or null for every entry")
    return index


def _no_entry(bot_id: str, queue: DeadLetterQueue, index: Which) -> NotFound:
    return not_found(f"entry {index} of dlq:{queue.value}:{bot_id}")


async def _audit(
    info: Info[Context, None], bot_id: str, action: str, queue: DeadLetterQueue, which: Which, **counts: int
) -> None:
    db = info.context.services.db
    bot = await bots.get_bot(db, bot_id, include_deleted=True)
    await audit.record(
        db,
        action=action,
        actor_id=info.context.user_id,
        project_id=None if bot is None else bot.project_id,
        bot_id=bot_id,
        detail={"queue": queue.value, "index": which, **counts},
    )


async def _replay_inbound(services: Services, bot_id: str, which: Which) -> list[ReplayOutcome]:
    done = await _chat_queue(services).requeue_dead_letters(bot_id, which)
    if any(position for _, position in done):
        await ChatReady(services.redis, services.broker, prefix=services.queue_prefix).notify()
    first = 0 if which == "all" else which
    return [
        ReplayOutcome(
            index=first + offset,
            chat_id=strawberry.ID(str(letter.chat_id)),
            status=ReplayStatus.REQUEUED if position else ReplayStatus.GONE,
        )
        for offset, (letter, position) in enumerate(done)
    ]


_SENT: dict[str, ReplayStatus] = {"sent": ReplayStatus.SENT, "duplicate": ReplayStatus.ALREADY_DELIVERED}
_REPLAYED = frozenset({ReplayStatus.REQUEUED, ReplayStatus.SENT, ReplayStatus.ALREADY_DELIVERED})


async def _replay_outbound(services: Services, bot_id: str, token: str, which: Which) -> list[ReplayOutcome]:
    replayed = await replay_dead_actions(_sender(services), bot_id, token, which)
    return [
        ReplayOutcome(
            index=r.index,
            chat_id=strawberry.ID(str(r.chat_id)),
            status=_SENT.get(r.result.status, ReplayStatus.FAILED),
            error=None if r.result.error is None else redact(r.result.error),
        )
        for r in replayed
    ]


@strawberry.type
class DeadLetterQuery:
    @strawberry.field(
        permission_classes=[CanEditBot],
        description=f"The bot's dead letters in one queue, oldest first: `first` (1..{MAX_PAGE}) from `offset`.",
    )
    async def dead_letters(
        self, info: Info[Context, None], bot_id: strawberry.ID, queue: DeadLetterQueue, first: int = 50, offset: int = 0
    ) -> list[DeadLetter]:
        if not 1 <= first <= MAX_PAGE or offset < 0:
            message = f"first must be 1..{MAX_PAGE} and offset 0 or more; got first={first}, offset={offset}"
            raise StrawberryGraphQLError(message, extensions={"code": "BAD_USER_INPUT"})
        services, bot = info.context.services, str(bot_id)
        if queue is DeadLetterQueue.INBOUND:
            letters = await _chat_queue(services).dead_letters(bot, offset, offset + first - 1)
            return [_inbound(offset + n, d) for n, d in enumerate(letters)]
        actions = (await _sender(services).dead_letters(bot))[offset : offset + first]
        return [_outbound(offset + n, d) for n, d in enumerate(actions)]


@strawberry.type
class DeadLetterMutation:
    @strawberry.mutation(
        permission_classes=[CanEditBot],
        description="Replay entry `index` of the queue, or every entry (null): inbound updates go back to their "
        "chat's queue, outbound actions are sent again.",
    )
    async def replay_dead_letters(
        self, info: Info[Context, None], bot_id: strawberry.ID, queue: DeadLetterQueue, index: int | None = None
    ) -> ReplayDeadLettersResult:
        which = _which(index)
        if isinstance(which, InvalidInput):
            return which
        services, bot = info.context.services, str(bot_id)
        try:
            if queue is DeadLetterQueue.INBOUND:
                outcomes = await _replay_inbound(services, bot, which)
            elif not choose(await _sender(services).dead_letters(bot), which):
                outcomes = []
            else:
                token = await bots.decrypt_token(services.db, services.box, bot)
                if token is None:
                    return not_found("the bot's token (the bot was deleted)")
                outcomes = await _replay_outbound(services, bot, token, which)
        except IndexError:
            return _no_entry(bot, queue, which)
        replayed = sum(o.status in _REPLAYED for o in outcomes)
        kept = sum(o.status is ReplayStatus.FAILED for o in outcomes)
        if outcomes:
            await _audit(info, bot, "dlq.replay", queue, which, replayed=replayed, kept=kept)
        return DeadLettersReplayed(queue=queue, replayed=replayed, kept=kept, outcomes=outcomes)

    @strawberry.mutation(
        permission_classes=[CanEditBot], description="Discard entry `index` of the queue, or every entry (null)."
    )
    async def drop_dead_letters(
        self, info: Info[Context, None], bot_id: strawberry.ID, queue: DeadLetterQueue, index: int | None = None
    ) -> DropDeadLettersResult:
        which = _which(index)
        if isinstance(which, InvalidInput):
            return which
        services, bot = info.context.services, str(bot_id)
        try:
            if queue is DeadLetterQueue.INBOUND:
                dropped = await _chat_queue(services).drop_dead_letters(bot, which)
            else:
                chosen = choose(await _sender(services).dead_letters(bot), which)
                dropped = await drop_dead_actions(services.redis, services.queue_prefix, bot, [d for _, d in chosen])
        except IndexError:
            return _no_entry(bot, queue, which)
        if dropped:
            await _audit(info, bot, "dlq.drop", queue, which, dropped=dropped)
        return DeadLettersDropped(queue=queue, dropped=dropped)
