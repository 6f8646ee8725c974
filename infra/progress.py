"""Progress events of long tasks over Redis pub/sub, and revision-flip invalidations.

Workers ``publish`` what a generate, deploy or rollback task is doing; any API
replica ``subscribe``\\s and streams the events to its GraphQL subscribers. The API
is stable (the GraphQL subscriptions are built on it):

``async def publish(redis, event: ProgressEvent) -> None``
    Sends ``event`` (JSON) to ``botkiln:progress:bot:<botId>`` and
    ``botkiln:progress:all`` (``infra/redis_keys.py``).

``async def subscribe(redis, bot_ids: set[str] | None, *, ready=None) -> AsyncIterator[ProgressEvent]``
    An async generator of the events of ``bot_ids`` (``None``: every bot), in the
    order each bot's events were published. It never ends by itself (an empty set
    yields nothing and waits); close it with ``aclose()`` (``contextlib.aclosing``)
    or by abandoning an ``async for``. Pub/sub keeps nothing: an event published
    before the subscription is active is never delivered, so a caller that must
    not miss the first events passes ``ready`` (an ``asyncio.Event``), set once
    Redis confirmed every channel. A lost Redis connection raises
    ``redis.exceptions.ConnectionError`` out of the iterator; events published
    meanwhile are lost (read the task or deployment to catch up).

``async def publish_flip(redis, bot_id, rev_hash) -> None``
    After every flip: ``{"botId", "revHash"}`` on ``botkiln:flips`` for runtime nodes.

An event is a JSON object: ``type`` (one of ``EVENT_TYPES``), ``botId``,
``taskId``, ``at`` (ISO 8601, UTC, milliseconds) and, as relevant, ``revHash``,
``stage``, ``reason``, ``message``, ``deploymentId``. Messages that are not such
an object are skipped by ``subscribe``. Events carry no secrets.

The ``redis`` argument is a ``redis.asyncio.Redis`` client, with or without
``decode_responses``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Literal, NotRequired, TypedDict, cast, get_args

from redis.asyncio import Redis

from botkiln.infra.redis_keys import FLIPS, PROGRESS_ALL, progress_channel

_log = logging.getLogger(__name__)

EventType = Literal[
    "GenerateStarted",
    "GenerateProgress",
    "GenerateSucceeded",
    "GenerateFailed",
    "DeployStarted",
    "DeployProgress",
    "DeployFlipped",
    "DeployFailed",
    "RollbackFlipped",
    "RolloutChanged",
]
EVENT_TYPES: frozenset[str] = frozenset(get_args(EventType))

_CONFIRM_TIMEOUT_S = 10.0


class ProgressEvent(TypedDict):
    """What a task is doing: worker -> Redis pub/sub -> API replicas -> GraphQL subscribers."""

    type: EventType
    botId: str
    taskId: str
    at: str
    revHash: NotRequired[str]
    stage: NotRequired[str]
    reason: NotRequired[str]
    message: NotRequired[str]
    deploymentId: NotRequired[int]


class FlipMessage(TypedDict):
    """A revision flip: worker -> ``botkiln:flips`` -> runtime nodes."""

    botId: str
    revHash: str


def progress_event(
    type: EventType,
    *,
    bot_id: str,
    task_id: str,
    rev_hash: str | None = None,
    stage: str | None = None,
    reason: str | None = None,
    message: str | None = None,
    deployment_id: int | None = None,
) -> ProgressEvent:
    """An event stamped with the current time; ``None`` fields are left out."""
    event: ProgressEvent = {"type": type, "botId": bot_id, "taskId": task_id, "at": _now()}
    if rev_hash is not None:
        event["revHash"] = rev_hash
    if stage is not None:
        event["stage"] = stage
    if reason is not None:
        event["reason"] = reason
    if message is not None:
        event["message"] = message
    if deployment_id is not None:
        event["deploymentId"] = deployment_id
    return event


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def publish(redis: Redis, event: ProgressEvent) -> None:
    """Send ``event`` to its bot's channel and to the all-bots channel."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    async with redis.pipeline(transaction=False) as pipe:
        pipe.publish(progress_channel(event["botId"]), data)
        pipe.publish(PROGRESS_ALL, data)
        await pipe.execute()


async def publish_flip(redis: Redis, bot_id: str, rev_hash: str) -> None:
    """Tell runtime nodes that ``bot_id`` now runs ``rev_hash``."""
    message: FlipMessage = {"botId": bot_id, "revHash": rev_hash}
    await redis.publish(FLIPS, json.dumps(message, separators=(",", ":")))


def parse_event(data: bytes | str) -> ProgressEvent | None:
    """The event in a pub/sub payload, or None if it is not one."""
    try:
        value: Any = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(value, dict) or value.get("type") not in EVENT_TYPES:
        return None
    if not all(isinstance(value.get(k), str) for k in ("botId", "taskId", "at")):
        return None
    return cast(ProgressEvent, value)


async def subscribe(
    redis: Redis, bot_ids: set[str] | None, *, ready: asyncio.Event | None = None
) -> AsyncIterator[ProgressEvent]:
    """The progress events of ``bot_ids`` (``None``: all bots) from now on; see the module docstring."""
    channels = [PROGRESS_ALL] if bot_ids is None else sorted(progress_channel(b) for b in bot_ids)
    if not channels:
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()
        return
    pubsub = redis.pubsub()
    try:
        await pubsub.subscribe(*channels)
        confirmed = 0
        while confirmed < len(channels):
            message = await pubsub.get_message(timeout=_CONFIRM_TIMEOUT_S)
            if message is None:
                raise TimeoutError(f"Redis did not confirm the subscription to {len(channels)} channel(s)")
            confirmed += message["type"] == "subscribe"
        if ready is not None:
            ready.set()
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            if message is None or message["type"] != "message":
                continue
            event = parse_event(message["data"])
            if event is None:
                _log.warning("skipped a malformed progress message on %s", message["channel"])
                continue
            yield event
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # typed from redis 8.2
