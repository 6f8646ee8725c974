"""infra/progress.py: progress events and flip invalidations over real Redis pub/sub."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from redis.asyncio import Redis

from botkiln.infra import redis_keys
from botkiln.infra.progress import (
    EVENT_TYPES,
    ProgressEvent,
    parse_event,
    progress_event,
    publish,
    publish_flip,
    subscribe,
)

pytestmark = pytest.mark.anyio


def bot() -> str:
    return f"p-{secrets.token_hex(4)}"


@contextlib.asynccontextmanager
async def listening(redis: Redis, bot_ids: set[str] | None) -> AsyncIterator[list[ProgressEvent]]:
    """Collect events from a subscription that is active when the block starts."""
    received: list[ProgressEvent] = []
    ready = asyncio.Event()

    async def collect() -> None:
        async for event in subscribe(redis, bot_ids, ready=ready):
            received.append(event)

    task = asyncio.create_task(collect())
    await asyncio.wait_for(ready.wait(), 5)
    try:
        yield received
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until_count(received: list[ProgressEvent], count: int) -> None:
    for _ in range(200):
        if len(received) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"got {len(received)} of {count} events: {received}")


def test_an_event_has_the_documented_shape() -> None:
    event = progress_event("DeployProgress", bot_id="b", task_id="t", stage="health", deployment_id=3)
    assert set(event) == {"type", "botId", "taskId", "at", "stage", "deploymentId"}
    assert event["at"].endswith("Z") and datetime.fromisoformat(event["at"]).tzinfo is not None
    expected = {
        "GenerateStarted", "GenerateProgress", "GenerateSucceeded", "GenerateFailed", "DeployStarted",
        "DeployProgress", "DeployFlipped", "DeployFailed", "RollbackFlipped", "RolloutChanged",
    }  # fmt: skip
    assert expected == EVENT_TYPES


def test_only_well_formed_events_are_parsed() -> None:
    good = progress_event("GenerateStarted", bot_id="b", task_id="t")
    assert parse_event(json.dumps(good).encode()) == good
    assert parse_event(b"not json") is None
    assert parse_event(b"[1]") is None
    assert parse_event(json.dumps({**good, "type": "Nope"})) is None
    assert parse_event(json.dumps({"type": "GenerateStarted", "botId": "b"})) is None


async def test_a_subscriber_to_some_bots_gets_their_events_in_order_and_no_others(redis_client: Redis) -> None:
    mine, other = bot(), bot()
    async with listening(redis_client, {mine}) as received:
        for n in range(3):
            await publish(redis_client, progress_event("GenerateProgress", bot_id=mine, task_id="t", message=str(n)))
        await publish(redis_client, progress_event("GenerateStarted", bot_id=other, task_id="u"))
        await publish(redis_client, progress_event("GenerateSucceeded", bot_id=mine, task_id="t", rev_hash="r"))
        await until_count(received, 4)
        await asyncio.sleep(0.05)
    assert [e.get("message") for e in received] == ["0", "1", "2", None]
    assert {e["botId"] for e in received} == {mine} and received[-1]["revHash"] == "r"


async def test_a_subscriber_to_all_bots_gets_every_bot_and_malformed_messages_are_skipped(
    redis_client: Redis,
) -> None:
    first, second = bot(), bot()
    async with listening(redis_client, None) as received:
        await redis_client.publish(redis_keys.PROGRESS_ALL, b"{broken")
        await publish(redis_client, progress_event("DeployStarted", bot_id=first, task_id="t"))
        await publish(redis_client, progress_event("DeployFlipped", bot_id=second, task_id="u"))
        for _ in range(200):
            if {first, second} <= {e["botId"] for e in received}:
                break
            await asyncio.sleep(0.01)
    ours = [e["type"] for e in received if e["botId"] in (first, second)]
    assert ours == ["DeployStarted", "DeployFlipped"]


async def test_an_empty_set_of_bots_yields_nothing_until_closed(redis_client: Redis) -> None:
    async with listening(redis_client, set()) as received:
        await publish(redis_client, progress_event("DeployStarted", bot_id=bot(), task_id="t"))
        await asyncio.sleep(0.05)
    assert received == []


async def test_a_flip_is_broadcast_on_the_flips_channel(redis_client: Redis) -> None:
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(redis_keys.FLIPS)
    assert (await pubsub.get_message(timeout=5))["type"] == "subscribe"
    bot_id = bot()
    await publish_flip(redis_client, bot_id, "f" * 64)
    while (message := await pubsub.get_message(timeout=5)) is not None:
        if json.loads(message["data"])["botId"] == bot_id:
            break
    assert message is not None and json.loads(message["data"]) == {"botId": bot_id, "revHash": "f" * 64}
    await pubsub.aclose()
