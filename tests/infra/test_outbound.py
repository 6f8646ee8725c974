"""infra/outbound.py against real Redis and the Telegram stand-in with its flood limits on.

The stand-in runs on the real clock with small, fast limits; the sender's limiter uses the same
rates with a smaller burst, so the stand-in's extra tokens absorb scheduling jitter and a 429 from
it means the limiter let too much through. Tests assert outcomes and counts, not durations. Each
test uses its own Redis key prefix (deleted afterwards) and its own stand-in bot (fresh buckets).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from redis.asyncio import Redis

from botkiln.infra.outbound import BotApiCaller, OutboundLimiter, OutboundRates, OutboundSender, RetryPolicy
from botkiln.infra.redis_keys import OutboundKeys
from botkiln.infra.telegram_api import BotApiClient
from botkiln.infra.telegram_standin import BotApiStandIn, RateLimits, StandInBot
from botkiln.infra.telegram_standin_updates import chat
from botkiln.interpreter.types import Action
from tests.graphql.support import ServerThread
from tests.infra.conftest import service_unavailable

pytestmark = pytest.mark.anyio

REDIS_URL = os.environ.get("BOTKILN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CHATS = (501, 502, 503)
GROUP = -700
STANDIN_LIMITS = RateLimits(
    per_bot_per_s=40, per_bot_burst=8, per_chat_per_s=20, per_chat_burst=5, per_group_per_min=600, per_group_burst=5
)
RATES = OutboundRates(bot_per_s=40, bot_burst=5, chat_per_s=20, chat_burst=2, group_per_min=600, group_burst=2)
RETRY = RetryPolicy(attempts=3, first_delay_s=0.01, factor=2.0)


def message(chat_id: int, text: str) -> Action:
    return {"method": "sendMessage", "params": {"chat_id": chat_id, "text": text}}


class Sleeps:
    """The sender's sleep: real, recorded, with an optional hook run once, at the first sleep."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.first: Callable[[], Awaitable[None]] | None = None

    async def __call__(self, seconds: float) -> None:
        first, self.first = self.first, None
        if first is not None:
            await first()
        self.waits.append(seconds)
        await asyncio.sleep(seconds)


@dataclass
class Rig:
    standin: BotApiStandIn
    bot: StandInBot
    redis: Redis
    limiter: OutboundLimiter
    sender: OutboundSender
    sleeps: Sleeps
    keys: OutboundKeys

    @property
    def bot_id(self) -> str:
        return str(self.bot.id)

    def texts(self, chat_id: int) -> list[str]:
        """Texts the stand-in accepted for ``chat_id``, in arrival order."""
        calls = self.standin.calls(self.bot, "sendMessage")
        return [c.params["text"] for c in calls if c.ok and c.params.get("chat_id") == chat_id]

    def refusals(self, code: int) -> int:
        return sum(1 for c in self.standin.calls(self.bot) if c.error_code == code)


@pytest.fixture(scope="module")
def standin() -> Iterator[BotApiStandIn]:
    made = BotApiStandIn(limits=STANDIN_LIMITS)
    server = ServerThread()
    server.start(made.app)
    made.url = server.url
    yield made
    server.stop()


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        await client.ping()
    except aioredis.RedisError as exc:
        await client.aclose()
        service_unavailable("Redis", REDIS_URL, exc)
    prefix = f"test-out-{secrets.token_hex(6)}"
    client.test_prefix = prefix  # type: ignore[attr-defined]
    try:
        yield client
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
async def rig(standin: BotApiStandIn, redis: Redis) -> AsyncIterator[Rig]:
    prefix: str = redis.test_prefix  # type: ignore[attr-defined]
    bot = standin.register()
    for chat_id in (*CHATS, GROUP):
        standin.open_chat(bot, chat(chat_id))
    sleeps = Sleeps()
    limiter = OutboundLimiter(redis, prefix=prefix, rates=RATES)
    async with httpx.AsyncClient() as http:

        def api(token: str) -> BotApiCaller:
            return BotApiClient(http, token, base_url=standin.url)

        sender = OutboundSender(redis, limiter, api, prefix=prefix, retry=RETRY, sleep=sleeps)
        yield Rig(standin, bot, redis, limiter, sender, sleeps, OutboundKeys(prefix))


# --- the limiter on its own -------------------------------------------------------------------------------------------


async def test_the_limiter_admits_a_chats_burst_then_names_the_wait(redis: Redis) -> None:
    prefix: str = redis.test_prefix  # type: ignore[attr-defined]
    limiter = OutboundLimiter(redis, prefix=prefix, rates=OutboundRates(chat_per_s=1, chat_burst=3))
    admitted = [await limiter.admit("b1", 42) for _ in range(3)]
    wait = await limiter.admit("b1", 42)
    assert admitted == [0, 0, 0]
    assert 900 <= wait <= 1000  # one token refills in 1 s; a few ms passed
    assert await limiter.admit("b1", 43) == 0  # another chat has its own bucket


async def test_a_group_gets_its_per_minute_allowance(redis: Redis) -> None:
    prefix: str = redis.test_prefix  # type: ignore[attr-defined]
    limiter = OutboundLimiter(redis, prefix=prefix, rates=OutboundRates(chat_burst=100, chat_per_s=100, group_burst=2))
    assert [await limiter.admit("b1", -5) for _ in range(2)] == [0, 0]
    assert 2900 <= await limiter.admit("b1", -5) <= 3000  # 20/min: one message every 3 s
    assert await limiter.admit("b1", 5) == 0  # a private chat is not a group


async def test_a_refusal_takes_no_token_from_any_bucket(redis: Redis) -> None:
    prefix: str = redis.test_prefix  # type: ignore[attr-defined]
    keys = OutboundKeys(prefix)
    limiter = OutboundLimiter(redis, prefix=prefix, rates=OutboundRates(bot_burst=10, chat_per_s=0.1, chat_burst=1))
    assert await limiter.admit("b1", 7) == 0
    before = await redis.hget(keys.bot_bucket("b1"), "tokens")
    for _ in range(5):
        assert await limiter.admit("b1", 7) > 0
    assert await redis.hget(keys.bot_bucket("b1"), "tokens") == before


async def test_a_block_stops_every_chat_of_the_bot_and_only_that_bot(redis: Redis) -> None:
    prefix: str = redis.test_prefix  # type: ignore[attr-defined]
    limiter = OutboundLimiter(redis, prefix=prefix)
    await limiter.block("b1", 2)
    await limiter.block("b1", 1)  # a shorter block does not shorten the current one
    # the block's end is kept in whole ms, rounded up: a wait can be 1 ms over
    assert 1900 <= await limiter.admit("b1", 1) <= 2001
    assert 1900 <= await limiter.admit("b1", -2, metered=False) <= 2001
    assert await limiter.admit("b2", 1) == 0


# --- the sender through the stand-in ----------------------------------------------------------------------------------


async def test_a_chats_actions_arrive_in_order_within_the_limits(rig: Rig) -> None:
    # Given three chats and a group, each with eight messages for one update, sent concurrently
    chats = (*CHATS, GROUP)
    updates = {c: [message(c, f"{c}-{i}") for i in range(8)] for c in chats}
    # When
    reports = await asyncio.gather(
        *(rig.sender.send(rig.bot_id, rig.bot.token, c, acts, dedup_key=f"u{c}") for c, acts in updates.items())
    )
    # Then every message arrived, in order per chat, and the stand-in never had to refuse one
    assert all(r.delivered and r.count("sent") == 8 for r in reports)
    for c in chats:
        assert rig.texts(c) == [f"{c}-{i}" for i in range(8)]
    assert rig.refusals(429) == 0
    assert rig.sleeps.waits  # the limiter made the sender wait


async def test_a_429_storm_blocks_the_whole_bot_and_nothing_is_lost(rig: Rig) -> None:
    # Given Telegram answering the next three calls 429 retry_after=1
    rig.bot.faults.storm(3, retry_after=1)
    seen: list[int] = []

    async def look_at_other_chats() -> None:
        seen.append(await rig.limiter.admit(rig.bot_id, 999_999, metered=False))
        seen.append(await rig.limiter.admit("another-bot", 999_999, metered=False))

    rig.sleeps.first = look_at_other_chats
    # When three chats send concurrently
    reports = await asyncio.gather(
        *(rig.sender.send(rig.bot_id, rig.bot.token, c, [message(c, f"{c}-{i}") for i in range(4)], dedup_key=f"u{c}")
          for c in CHATS)
    )  # fmt: skip
    # Then the first wait was the bot-wide block, which any chat of this bot (not another bot) saw
    assert seen[0] > 0 and seen[1] == 0
    assert rig.refusals(429) == 3
    assert all(r.delivered for r in reports)
    for c in CHATS:
        assert rig.texts(c) == [f"{c}-{i}" for i in range(4)]
    assert await rig.sender.dead_letters(rig.bot_id) == []


async def test_5xx_and_dropped_connections_are_retried_then_delivered(rig: Rig) -> None:
    rig.bot.faults.fail(1, status=500, description="Internal Server Error")
    report = await rig.sender.send(rig.bot_id, rig.bot.token, CHATS[0], [message(CHATS[0], "a")], dedup_key="u1")
    rig.bot.faults.drop(2)
    again = await rig.sender.send(rig.bot_id, rig.bot.token, CHATS[0], [message(CHATS[0], "b")], dedup_key="u2")
    assert [r.attempts for r in report.results + again.results] == [2, 3]
    assert rig.texts(CHATS[0]) == ["a", "b"]
    assert rig.sleeps.waits[:1] == [RETRY.delay(1)]


async def test_a_persistent_5xx_is_dead_lettered_and_replay_delivers_it(rig: Rig) -> None:
    # Given Telegram failing every attempt of the first message
    rig.bot.faults.fail(RETRY.attempts)
    actions = [message(CHATS[0], "first"), message(CHATS[0], "second")]
    # When
    report = await rig.sender.send(rig.bot_id, rig.bot.token, CHATS[0], actions, dedup_key="u7")
    # Then the first went to the DLQ with its error, and the second was still sent
    assert [r.status for r in report.results] == ["dead_lettered", "sent"]
    [dead] = await rig.sender.dead_letters(rig.bot_id)
    assert (dead.chat_id, dead.action, dead.dedup_key, dead.index) == (CHATS[0], actions[0], "u7", 0)
    assert (dead.error_code, dead.attempts, dead.error) == (502, RETRY.attempts, "sendMessage (502): Bad Gateway")
    assert rig.bot.token not in dead.raw
    # When the operator replays it
    [replayed] = await rig.sender.replay(rig.bot_id, rig.bot.token, 0)
    # Then it is delivered once and leaves the DLQ; a second send of the update sends nothing
    assert replayed.delivered
    assert await rig.sender.dead_letters(rig.bot_id) == []
    assert rig.texts(CHATS[0]) == ["second", "first"]
    rerun = await rig.sender.send(rig.bot_id, rig.bot.token, CHATS[0], actions, dedup_key="u7")
    assert [r.status for r in rerun.results] == ["duplicate", "duplicate"]
    assert rig.texts(CHATS[0]) == ["second", "first"]


async def test_a_400_is_dead_lettered_without_retry_and_the_next_actions_are_sent(rig: Rig) -> None:
    actions = [message(CHATS[1], "one"), message(CHATS[1], " "), message(CHATS[1], "three")]
    report = await rig.sender.send(rig.bot_id, rig.bot.token, CHATS[1], actions, dedup_key="u8")
    assert [(r.status, r.attempts) for r in report.results] == [("sent", 1), ("dead_lettered", 1), ("sent", 1)]
    [dead] = await rig.sender.dead_letters(rig.bot_id)
    assert (dead.index, dead.error_code) == (1, 400)
    assert dead.error == "sendMessage (400): Bad Request: message text is empty"
    assert rig.texts(CHATS[1]) == ["one", "three"]
    # Replaying a permanent failure fails again and keeps the entry
    [replayed] = await rig.sender.replay(rig.bot_id, rig.bot.token)
    assert not replayed.delivered and len(await rig.sender.dead_letters(rig.bot_id)) == 1


async def test_a_blocked_chat_gets_nothing_more_for_the_update(rig: Rig) -> None:
    rig.standin.block(rig.bot, CHATS[2])
    actions = [message(CHATS[2], f"m{i}") for i in range(3)]
    report = await rig.sender.send(rig.bot_id, rig.bot.token, CHATS[2], actions, dedup_key="u9")
    assert [r.status for r in report.results] == ["forbidden", "skipped", "skipped"]
    assert report.results[0].error == "sendMessage (403): Forbidden: bot was blocked by the user"
    assert len(rig.standin.calls(rig.bot, "sendMessage")) == 1
    assert await rig.sender.dead_letters(rig.bot_id) == []


async def test_sending_an_update_twice_sends_each_action_once(rig: Rig) -> None:
    actions = [message(CHATS[0], "x"), message(CHATS[0], "y")]
    first = await rig.sender.send(rig.bot_id, rig.bot.token, CHATS[0], actions, dedup_key="u10")
    second = await rig.sender.send(rig.bot_id, rig.bot.token, CHATS[0], actions, dedup_key="u10")
    assert [r.status for r in second.results] == ["duplicate", "duplicate"]
    assert [r.result["message_id"] for r in second.results] == [r.result["message_id"] for r in first.results]
    assert rig.texts(CHATS[0]) == ["x", "y"]


class Crash(Exception):
    """The process dies here."""


async def test_a_retry_after_a_crash_resends_only_what_telegram_did_not_acknowledge(rig: Rig) -> None:
    # Given a sender whose process dies just before its second call reaches Telegram
    calls = 0

    class Dying:
        def __init__(self, inner: BotApiCaller) -> None:
            self.inner = inner

        async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
            nonlocal calls
            calls += 1
            if calls == 2:
                raise Crash
            return await self.inner.call(method, params)

    prefix = rig.keys.prefix
    async with httpx.AsyncClient() as http:
        dying = OutboundSender(
            rig.redis, rig.limiter, lambda t: Dying(BotApiClient(http, t, base_url=rig.standin.url)), prefix=prefix
        )
        actions = [message(CHATS[0], f"c{i}") for i in range(3)]
        with pytest.raises(Crash):
            await dying.send(rig.bot_id, rig.bot.token, CHATS[0], actions, dedup_key="u11")
    # When the update is retried by another process
    report = await rig.sender.send(rig.bot_id, rig.bot.token, CHATS[0], actions, dedup_key="u11")
    # Then only the unacknowledged actions went out, and each message arrived once
    assert [r.status for r in report.results] == ["duplicate", "sent", "sent"]
    assert rig.texts(CHATS[0]) == ["c0", "c1", "c2"]


async def test_a_fence_that_fails_stops_the_update_before_its_next_call(rig: Rig) -> None:
    # Given a fence that holds for two calls, then reports the claim lost
    c = CHATS[0]
    answers = iter([True, True, False])
    checked: list[int] = []

    async def fence() -> bool:
        checked.append(len(rig.texts(c)))  # how many messages Telegram had when the fence was asked
        return next(answers)

    # When an update with four messages is sent with it
    acts = [message(c, f"f-{i}") for i in range(4)]
    report = await rig.sender.send(rig.bot_id, rig.bot.token, c, acts, dedup_key="fenced", fence=fence)
    # Then the fence ran right before each call, and nothing went out after it failed
    assert [r.status for r in report.results] == ["sent", "sent", "fenced", "skipped"]
    assert checked == [0, 1, 2] and rig.texts(c) == ["f-0", "f-1"]
    assert not report.delivered and await rig.sender.dead_letters(rig.bot_id) == []
