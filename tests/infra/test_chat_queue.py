"""infra/chat_queue.py against real Redis: order, leases, fencing, fairness, dead letters.

Each test uses its own key prefix and deletes its keys afterwards. Consumer death is
simulated deliberately (STYLE rule 22): a "dying" consumer claims with a short lease and
never acks; the test waits the lease out, then checks redelivery and that the dead
consumer's late ack is refused.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
from collections import defaultdict, deque
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.asyncio import Redis

from botkiln.infra.chat_queue import RedisChatQueue
from botkiln.infra.ports import ChatQueue, Claim, Duplicate, Enqueued
from tests.infra.conftest import service_unavailable

pytestmark = pytest.mark.anyio

REDIS_URL = os.environ.get("BOTKILN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LONG = 10_000
BOT = "bot-a"


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        await client.ping()
    except aioredis.RedisError as exc:
        await client.aclose()
        service_unavailable("Redis", REDIS_URL, exc)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    value = f"test-cq-{secrets.token_hex(6)}"
    yield value
    keys = [k async for k in redis.scan_iter(match=f"{value}:*", count=1000)]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
def queue(redis: Redis, prefix: str) -> RedisChatQueue:
    return RedisChatQueue(redis, prefix=prefix, max_deliveries=3)


async def test_the_adapter_satisfies_the_protocol(queue: RedisChatQueue) -> None:
    port: ChatQueue = queue
    members = [n for n in vars(ChatQueue) if not n.startswith("_")]
    assert port is queue and len(members) <= 6, members


async def test_a_chat_is_delivered_in_order_and_the_head_stays_until_acked(queue: RedisChatQueue) -> None:
    for update_id in (10, 11, 12):
        assert await queue.enqueue(BOT, 7, update_id, b'{"u":%d}' % update_id) == Enqueued(update_id, update_id - 9)
    assert await queue.depth(BOT) == 3
    age = await queue.oldest_age_ms(BOT)
    assert age is not None and 0 <= age < 5_000
    seen = []
    while (claim := await queue.claim("c1", LONG)) is not None:
        assert (claim.bot_id, claim.chat_id, claim.deliveries, claim.consumer_id) == (BOT, 7, 1, "c1")
        assert claim.payload == b'{"u":%d}' % claim.update_id
        seen.append(claim.update_id)
        assert await queue.ack(claim)
        assert not await queue.ack(claim), "a second ack of the same claim must be refused"
    assert seen == [10, 11, 12]
    assert await queue.depth(BOT) == 0
    assert await queue.oldest_age_ms(BOT) is None


async def test_payloads_are_bytes_kept_exactly(queue: RedisChatQueue) -> None:
    payload = bytes(range(256)) + b":\n:"
    await queue.enqueue(BOT, -100123456789012, 1, payload)
    claim = await queue.claim("c1", LONG)
    assert claim is not None and claim.payload == payload and claim.chat_id == -100123456789012


async def test_an_update_id_is_accepted_once_per_bot(queue: RedisChatQueue) -> None:
    assert isinstance(await queue.enqueue(BOT, 1, 500, b"a"), Enqueued)
    assert await queue.enqueue(BOT, 1, 500, b"a") == Duplicate(500)
    assert await queue.enqueue(BOT, 2, 500, b"other chat") == Duplicate(500)
    assert isinstance(await queue.enqueue("bot-b", 1, 500, b"another bot"), Enqueued)
    assert await queue.depth(BOT) == 1


async def test_a_leased_chat_is_never_given_to_another_consumer(queue: RedisChatQueue) -> None:
    await queue.enqueue(BOT, 1, 1, b"x")
    await queue.enqueue(BOT, 1, 2, b"y")
    first = await queue.claim("c1", LONG)
    assert first is not None and first.update_id == 1
    assert await queue.claim("c2", LONG) is None
    await queue.enqueue(BOT, 1, 3, b"z")
    assert await queue.claim("c2", LONG) is None, "an enqueue must not make a leased chat ready"
    await queue.enqueue(BOT, 2, 4, b"other chat")
    other = await queue.claim("c2", LONG)
    assert other is not None and other.chat_id == 2
    assert await queue.ack(first)
    after = await queue.claim("c3", LONG)
    assert after is not None and (after.chat_id, after.update_id) == (1, 2)


async def test_many_chats_drain_in_parallel_in_order_exactly_once(queue: RedisChatQueue) -> None:
    chats, per_chat = 50, 40
    rng = random.Random(5)
    order = [(chat, n) for chat in range(chats) for n in range(per_chat)]
    # Interleave chats while keeping each chat's own order: the ingress sees a mixed stream.
    streams = {chat: deque(n for c, n in order if c == chat) for chat in range(chats)}
    next_update = 0
    expected: dict[int, list[int]] = defaultdict(list)
    while streams:
        chat = rng.choice(list(streams))
        streams[chat].popleft()
        if not streams[chat]:
            del streams[chat]
        next_update += 1
        expected[chat].append(next_update)
        await queue.enqueue(BOT, chat, next_update, str(next_update).encode())

    processed: dict[int, list[int]] = defaultdict(list)
    holding: dict[int, str] = {}
    overlaps: list[int] = []

    async def consumer(name: str) -> None:
        idle = 0
        while idle < 3:
            claim = await queue.claim(name, LONG)
            if claim is None:
                idle += 1
                await asyncio.sleep(0.005)
                continue
            idle = 0
            if claim.chat_id in holding:
                overlaps.append(claim.chat_id)
            holding[claim.chat_id] = name
            await asyncio.sleep(0)  # let the other consumers run while this chat is held
            processed[claim.chat_id].append(claim.update_id)
            del holding[claim.chat_id]
            assert await queue.ack(claim)

    await asyncio.gather(*(consumer(f"c{i}") for i in range(4)))
    assert overlaps == []
    assert processed == expected
    assert sum(len(v) for v in processed.values()) == chats * per_chat == 2000
    assert await queue.depth(BOT) == 0


async def test_a_dead_consumers_update_is_redelivered_and_its_late_ack_refused(queue: RedisChatQueue) -> None:
    await queue.enqueue(BOT, 9, 1, b"first")
    await queue.enqueue(BOT, 9, 2, b"second")
    dead = await queue.claim("dies", 40)  # claims, then "dies": never acks nor renews
    assert dead is not None and dead.update_id == 1
    assert await queue.claim("heir", LONG) is None, "the lease still holds"
    await asyncio.sleep(0.08)
    again = await queue.claim("heir", LONG)
    assert again is not None
    assert (again.update_id, again.payload, again.deliveries) == (1, b"first", 2)
    assert again.token > dead.token
    assert not await queue.ack(dead), "fencing: the expired holder cannot ack"
    assert not await queue.renew(dead, LONG)
    assert not await queue.release(dead)
    assert not await queue.dead_letter(dead, "late")
    assert await queue.ack(again)
    last = await queue.claim("heir", LONG)
    assert last is not None and last.update_id == 2 and last.deliveries == 1


async def test_an_ack_deletes_the_keys_it_is_given_only_when_it_settles(
    queue: RedisChatQueue, redis: Redis, prefix: str
) -> None:
    effects = [f"{prefix}:fx:{BOT}:1", f"{prefix}:fx:{BOT}:1b"]
    await redis.mset({effects[0]: b"actions", effects[1]: b"more"})
    await queue.enqueue(BOT, 10, 1, b"first")
    dead = await queue.claim("dies", 40)
    assert dead is not None
    await asyncio.sleep(0.08)
    heir = await queue.claim("heir", LONG)
    assert heir is not None
    # A refused ack (the lease is gone) deletes nothing; a dead letter refused alike
    assert not await queue.ack(dead, forget=effects)
    assert not await queue.dead_letter(dead, "late", forget=effects)
    assert await redis.exists(*effects) == 2
    # The holder's ack deletes them with the head, in the same step
    assert await queue.ack(heir, forget=effects)
    assert await redis.exists(*effects) == 0
    assert await queue.depth(BOT) == 0


async def test_renew_keeps_the_lease_past_its_first_deadline(queue: RedisChatQueue) -> None:
    await queue.enqueue(BOT, 3, 1, b"slow")
    claim = await queue.claim("c1", 60)
    assert claim is not None
    for _ in range(3):
        await asyncio.sleep(0.03)
        assert await queue.renew(claim, 60)
    assert await queue.claim("c2", LONG) is None
    assert await queue.ack(claim)


async def test_release_hands_the_same_head_on_without_counting_a_delivery(queue: RedisChatQueue) -> None:
    await queue.enqueue(BOT, 4, 1, b"kept")
    claim = await queue.claim("stopping", LONG)
    assert claim is not None and await queue.release(claim)
    assert not await queue.ack(claim)
    again = await queue.claim("c2", LONG)
    assert again is not None and (again.update_id, again.deliveries) == (1, 1)


async def test_a_long_backlog_does_not_starve_a_small_chat(queue: RedisChatQueue) -> None:
    for update_id in range(1, 501):
        await queue.enqueue(BOT, 1, update_id, b"busy")
    await queue.enqueue(BOT, 2, 1000, b"quiet")
    claims = 0
    while True:
        claim = await queue.claim("c1", LONG)
        assert claim is not None
        claims += 1
        assert await queue.ack(claim)
        if claim.chat_id == 2:
            break
    assert claims <= 2
    # Two busy chats alternate rather than one draining first.
    for update_id in range(2000, 2005):
        await queue.enqueue(BOT, 3, update_id, b"busy too")
    chats = []
    for _ in range(6):
        claim = await queue.claim("c1", LONG)
        assert claim is not None and await queue.ack(claim)
        chats.append(claim.chat_id)
    assert chats == [1, 3, 1, 3, 1, 3]


async def test_a_poison_update_goes_to_the_dlq_after_max_deliveries(queue: RedisChatQueue) -> None:
    await queue.enqueue(BOT, 5, 1, b"poison")
    await queue.enqueue(BOT, 5, 2, b"fine")
    for delivery in (1, 2, 3):
        claim = await queue.claim(f"dies-{delivery}", 20)
        assert claim is not None and (claim.update_id, claim.deliveries) == (1, delivery)
        await asyncio.sleep(0.04)
    claim = await queue.claim("c", LONG)
    assert claim is not None and (claim.update_id, claim.deliveries) == (2, 1), "the chat moves on"
    [letter] = await queue.dead_letters(BOT)
    assert (letter.chat_id, letter.update_id, letter.payload, letter.deliveries) == (5, 1, b"poison", 3)
    assert letter.reason == "delivered 3 times without an ack"
    assert await queue.depth(BOT) == 1


async def test_dead_letter_records_the_reason_and_the_chat_moves_on(queue: RedisChatQueue) -> None:
    await queue.enqueue(BOT, 6, 1, b'{"text":"boom"}')
    await queue.enqueue(BOT, 6, 2, b"next")
    claim = await queue.claim("c", LONG)
    assert claim is not None
    assert await queue.dead_letter(claim, "bot code failed: TypeError")
    assert not await queue.ack(claim)
    [letter] = await queue.dead_letters(BOT)
    assert (letter.update_id, letter.reason, letter.payload, letter.deliveries) == (
        1,
        "bot code failed: TypeError",
        b'{"text":"boom"}',
        1,
    )
    following = await queue.claim("c", LONG)
    assert following is not None and following.update_id == 2


@pytest.mark.parametrize("seed", range(8))
async def test_random_interleavings_keep_order_and_ack_exactly_once(queue: RedisChatQueue, seed: int) -> None:
    """Consumers claim, ack, renew, release and die at random; the model says what each call must return."""
    rng = random.Random(seed)
    consumers = [f"c{i}" for i in range(4)]
    pending: dict[int, deque[int]] = defaultdict(deque)  # the model: unacked updates per chat, in order
    acked: dict[int, list[int]] = defaultdict(list)
    live: dict[str, Claim] = {}  # long leases, held until acked or released
    dying: dict[str, Claim] = {}  # short leases, never acked in time
    deliveries: dict[int, int] = defaultdict(int)
    dead: list[int] = []
    next_update = 0

    async def reconcile_dead_letters() -> None:
        # A claim dead-letters heads delivered max_deliveries (3) times without an ack.
        for letter in (await queue.dead_letters(BOT))[len(dead) :]:
            assert pending[letter.chat_id].popleft() == letter.update_id
            assert deliveries[letter.update_id] == letter.deliveries == 3
            dead.append(letter.update_id)

    for _ in range(400):
        op = rng.choices(["enqueue", "claim", "ack", "release", "die"], [30, 30, 25, 5, 10])[0]
        name = rng.choice(consumers)
        if op == "enqueue":
            chat = rng.randrange(6)
            next_update += 1
            result = await queue.enqueue(BOT, chat, next_update, b"%d" % next_update)
            assert result == Enqueued(next_update, len(pending[chat]) + 1)
            pending[chat].append(next_update)
            if rng.random() < 0.2:
                assert await queue.enqueue(BOT, chat, next_update, b"again") == Duplicate(next_update)
        elif op in ("claim", "die") and name not in live and name not in dying:
            claim = await queue.claim(name, 3 if op == "die" else LONG)
            await reconcile_dead_letters()
            held = {c.chat_id for c in live.values()}
            if claim is None:
                assert all(chat in held or not ups for chat, ups in pending.items()) or dying
                continue
            assert claim.chat_id not in held
            assert claim.update_id == pending[claim.chat_id][0]
            deliveries[claim.update_id] += 1
            assert claim.deliveries == deliveries[claim.update_id]
            (dying if op == "die" else live)[name] = claim
        elif op == "die" and name in dying:
            stale = dying.pop(name)
            await asyncio.sleep(0.01)  # the lease (3 ms) is over: its holder is dead
            assert not await queue.ack(stale)
        elif op == "ack" and name in live:
            claim = live.pop(name)
            if rng.random() < 0.3:
                assert await queue.renew(claim, LONG)
            assert await queue.ack(claim)
            assert pending[claim.chat_id].popleft() == claim.update_id
            acked[claim.chat_id].append(claim.update_id)
        elif op == "release" and name in live:
            released = live.pop(name)
            assert await queue.release(released)
            deliveries[released.update_id] -= 1

    for claim in live.values():
        assert await queue.ack(claim)
        assert pending[claim.chat_id].popleft() == claim.update_id
        acked[claim.chat_id].append(claim.update_id)
    await asyncio.sleep(0.01)
    for stale in dying.values():
        assert not await queue.ack(stale)
    while (claim := await queue.claim("drain", LONG)) is not None:
        await reconcile_dead_letters()
        assert claim.update_id == pending[claim.chat_id].popleft()
        acked[claim.chat_id].append(claim.update_id)
        assert await queue.ack(claim)
    await reconcile_dead_letters()
    assert all(not ups for ups in pending.values())
    every = [u for ups in acked.values() for u in ups]
    assert sorted(every + dead) == list(range(1, next_update + 1)), "each update acked or dead-lettered exactly once"
    for ups in acked.values():
        assert ups == sorted(ups), "per-chat order"
    assert await queue.depth(BOT) == 0
    assert len(every) > len(dead)


async def test_a_client_that_decodes_responses_is_refused(prefix: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses"):
            RedisChatQueue(client, prefix=prefix)
    finally:
        await client.aclose()
