"""The runtime plane as real processes: 2 ingress servers, 3 workers, the Telegram stand-in; scale and faults.

Every test drives its own echo bot (``tests/runtime/echo.py``) through the webhook as Telegram
would, then reads what reached the stand-in: each update must be answered exactly once, in its
chat's order, with the chat's state changed once per update (``n == seq``), and nothing may be
left queued, leased or dead-lettered. The timings printed are this machine's, shared with
whatever else runs on it.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

import httpx
import pytest
from redis.asyncio import Redis

from botkiln.infra.artifacts_fs import FsArtifactStore
from botkiln.infra.db import Pool
from botkiln.infra.progress import publish_flip
from botkiln.infra.telegram_standin import BotApiStandIn, CallRecord
from tests.runtime.cluster import Cluster, Process
from tests.runtime.echo import (
    NONE_LEFT,
    EchoBot,
    Reply,
    Tally,
    create_echo_bot,
    duplicates,
    echo_spec,
    leftovers,
    plan,
    problems,
    replies,
    update_body,
)
from tests.runtime.traffic import Sent, Telegram
from tests.workers.runtime_support import activate

pytestmark = pytest.mark.anyio

IN_FLIGHT = 32


async def answered(bot: EchoBot, redis: Redis, expected: int, *, within: float) -> float:
    """Wait until ``expected`` replies arrived and the bot's queue is drained; the seconds it took.

    Waits half a second more after that, so that a late duplicate would be seen too.
    """
    started = time.monotonic()
    tally = Tally(bot)
    while tally.count() < expected or (await leftovers(redis, bot.bot_id)) != NONE_LEFT:
        if time.monotonic() - started > within:
            left = await leftovers(redis, bot.bot_id)
            raise AssertionError(f"{tally.sent} of {expected} replies after {within}s; left over: {left}")
        await asyncio.sleep(0.05 if tally.sent < expected else 0.2)
    took = time.monotonic() - started
    await asyncio.sleep(0.5)
    return took


async def until(condition: Callable[[], bool], *, every: float = 0.01) -> None:
    """Return once ``condition()`` holds (the callers bound the wait)."""
    while True:
        if condition():
            return
        await asyncio.sleep(every)


async def replies_reach(bot: EchoBot, count: int) -> None:
    """Return once the bot sent ``count`` replies (the faults below strike at such moments)."""
    tally = Tally(bot)
    await until(lambda: tally.count() >= count)


async def during(traffic: Awaitable[Sent], faults: Callable[[], Awaitable[None]], *, within: float = 120) -> Sent:
    """Run ``faults`` while ``traffic`` is delivered; the traffic's record."""
    sending = asyncio.ensure_future(traffic)
    try:
        await asyncio.wait_for(faults(), within)
        return await sending
    finally:
        if not sending.done():
            sending.cancel()


@pytest.mark.slow
async def test_ten_thousand_updates_over_500_chats_are_each_answered_once_in_order(
    cluster: Cluster, pool: Pool, store: FsArtifactStore, owner: tuple[UUID, UUID], standin: BotApiStandIn,
    redis_client: Redis,
) -> None:  # fmt: skip
    # Given an echo bot with 500 open chats
    chat_ids = list(range(1, 501))
    bot = await create_echo_bot(pool, store, owner, standin, chat_ids)
    planned = plan(chat_ids, 20)
    total = sum(map(len, planned.values()))
    # When 10 000 updates arrive, 32 at a time, alternately at the two ingresses
    cpu_before, own_before = cluster.cpu_seconds(), time.process_time()
    async with Telegram(cluster.urls, bot, in_flight=IN_FLIGHT) as telegram:
        sent = await telegram.send(planned)
    tail = await answered(bot, redis_client, total, within=180)
    cpu_after, own_after = cluster.cpu_seconds(), time.process_time()
    # Then each is answered once, in its chat's order, and nothing is left behind
    end_to_end = sent.seconds + tail
    per_update = {name: round((cpu_after[name] - cpu_before[name]) * 1000 / total, 2) for name in cpu_before}
    per_update["test process (stand-in + webhook client)"] = round((own_after - own_before) * 1000 / total, 2)
    print(
        f"\nscale: {total} updates over {len(chat_ids)} chats accepted in {sent.seconds:.1f}s "
        f"({total / sent.seconds:.0f}/s); all answered {end_to_end:.1f}s after the first POST: "
        f"{total / end_to_end:.0f} updates/s end to end; ingress answers {dict(sent.statuses)}; "
        f"CPU ms per update: {per_update}"
    )
    found = replies(bot)
    assert problems(found, planned) == []
    assert len(found) == total
    assert (await leftovers(redis_client, bot.bot_id)) == NONE_LEFT
    assert [c for c in standin.calls(bot.api) if not c.ok] == []  # the shared limiter kept within Telegram's limits


@dataclass(frozen=True)
class Kill:
    """A worker killed on purpose, and when."""

    worker: str
    at: float


def explain(duplicate: tuple[Reply, Reply], kills: list[Kill], lease_s: float) -> Kill | None:
    """The kill that explains a repeated reply, if one does.

    The first copy reached Telegram around the kill (the dead worker may have written the request an
    instant before dying), and the second came when its lease had run out: at least two thirds of a lease
    later, since the lease is renewed every third of it.
    """
    first, again = duplicate
    for kill in kills:
        if kill.at - 1.0 <= first.at <= kill.at + 0.5 and again.at >= kill.at + lease_s * 2 / 3 - 0.05:
            return kill
    return None


async def test_workers_killed_mid_traffic_lose_nothing_and_answer_each_update_once_in_order(
    cluster: Cluster, pool: Pool, store: FsArtifactStore, owner: tuple[UUID, UUID], standin: BotApiStandIn,
    redis_client: Redis,
) -> None:  # fmt: skip
    # Given an echo bot with 40 chats and 25 updates for each
    chat_ids = list(range(1001, 1041))
    bot = await create_echo_bot(pool, store, owner, standin, chat_ids)
    planned = plan(chat_ids, 25)
    total = sum(map(len, planned.values()))
    kills: list[Kill] = []
    booting: list[asyncio.Future[None]] = []
    fresh: set[str] = set()
    rng = random.Random()

    async def kill_three_workers() -> None:
        for fraction in (0.15, 0.45, 0.75):
            await replies_reach(bot, int(total * (fraction + rng.uniform(-0.05, 0.05))))
            victim: Process = rng.choice([w for w in cluster.workers if w.name not in fresh])
            cluster.kill_worker(victim)
            kills.append(Kill(victim.name, victim.killed_at or time.time()))
            replacement = cluster.launch_worker()
            fresh.add(replacement.name)
            booting.append(asyncio.ensure_future(asyncio.to_thread(cluster.wait_worker, replacement)))

    # When a worker is SIGKILLed three times during the traffic (a replacement started each time)
    started = time.time()
    async with Telegram(cluster.urls, bot, in_flight=IN_FLIGHT) as telegram:
        await during(telegram.send(planned), kill_three_workers)
    await asyncio.gather(*booting)
    await answered(bot, redis_client, total, within=90)
    took = time.time() - started
    # Then nothing is lost, each chat's order holds, and each update changed its chat's state once
    found = replies(bot)
    repeated = duplicates(found)
    lease_s = int(cluster.env["BOTKILN_EXECUTOR_LEASE_MS"]) / 1000
    explained = [(a, b, explain((a, b), kills, lease_s)) for a, b in repeated]
    details = [
        f"{a.text!r}: 1st copy {(a.at - k.at) * 1000:+.0f} ms from killing {k.worker}, 2nd {b.at - a.at:.2f}s later"
        if k is not None
        else f"{a.text!r}: UNEXPLAINED, copies at {a.at - started:.2f}s and {b.at - started:.2f}s"
        for a, b, k in explained
    ]
    print(
        f"\nkills: {total} updates, workers killed at {[round(k.at - started, 1) for k in kills]}s into the "
        f"traffic, all answered {took:.1f}s after it began; {len(repeated)} reply(ies) sent twice: {details}"
    )
    assert problems(found, planned, duplicates_ok=True) == []
    # (effects too: the ack deletes them in the same script, so no kill can leave them behind)
    assert await leftovers(redis_client, bot.bot_id) == NONE_LEFT
    # A repeat is only the window docs/outbound.md admits: the call reached Telegram, the worker died before
    # writing the sent-marker, and the update's redelivery (a lease later) sent that one action again
    assert [d for d, (_, _, k) in zip(details, explained, strict=True) if k is None] == []
    per_kill = Counter(k.worker for _, _, k in explained if k is not None)
    assert all(count <= cluster.threads for count in per_kill.values()), per_kill  # what one worker had in hand


RETRY_AFTER = 2
STRAGGLERS_S = 0.75
"""After Telegram answers a 429, calls may still arrive this long: the 429 has to reach its sender, which blocks
the bot in Redis, and calls admitted before that are on their way (measured: 30-80 ms, 540 ms at a load of 15
on 2 cores). A sender ignoring ``retry_after`` would go on calling through the rest of the window."""


def blocked_windows(calls: list[CallRecord], retry_after: float) -> list[tuple[float, float]]:
    """(start, end) of each stretch during which a 429 with ``retry_after`` forbade calling."""
    return [(c.at, c.at + retry_after) for c in calls if c.error_code == 429]


async def test_429_storms_and_5xx_bursts_delay_replies_but_each_arrives_once_in_order(
    cluster: Cluster, pool: Pool, store: FsArtifactStore, owner: tuple[UUID, UUID], standin: BotApiStandIn,
    redis_client: Redis,
) -> None:  # fmt: skip
    # Given an echo bot with 40 chats and 15 updates for each
    chat_ids = list(range(2001, 2041))
    bot = await create_echo_bot(pool, store, owner, standin, chat_ids)
    planned = plan(chat_ids, 15)
    total = sum(map(len, planned.values()))
    storms, bursts = 0, 0

    async def storm(at: int) -> None:
        nonlocal storms
        await replies_reach(bot, at)
        bot.api.faults.storm(10, retry_after=RETRY_AFTER)
        storms += 1
        await until(lambda: bot.api.faults.storm_next == 0)

    async def burst(at: int) -> None:
        # At most 4 failures per action (RetryPolicy.attempts is 5): wait until every failed one got through
        nonlocal bursts
        await replies_reach(bot, at)
        bot.api.faults.fail(4, status=502)
        bursts += 1
        await until(lambda: not bot.api.faults.fail_next and _all_redelivered(standin.calls(bot.api, "sendMessage")))

    async def faults() -> None:
        await storm(total // 6)
        await burst(total * 2 // 6)
        await storm(total * 3 // 6)
        await burst(total * 4 // 6)

    # When Telegram answers 429 storms and 502 bursts in the middle of the traffic
    started = time.monotonic()
    async with Telegram(cluster.urls, bot, in_flight=IN_FLIGHT) as telegram:
        await during(telegram.send(planned), faults)
    await answered(bot, redis_client, total, within=90)
    took = time.monotonic() - started
    # Then every reply arrives once, in order, nothing is dead-lettered ...
    assert problems(replies(bot), planned) == []
    assert (await leftovers(redis_client, bot.bot_id)) == NONE_LEFT
    calls = standin.calls(bot.api)
    statuses = [c.error_code for c in calls if not c.ok]
    assert (statuses.count(429), statuses.count(502), len(statuses)) == (10 * storms, 4 * bursts, len(statuses))
    # ... and no call reached Telegram while a 429's retry_after was running (stragglers aside)
    windows = blocked_windows(calls, RETRY_AFTER)
    early = [(round(c.at - s, 3), c.method, c.error_code) for s, e in windows for c in calls
             if s + STRAGGLERS_S < c.at < e - 0.02]  # fmt: skip
    late = max((c.at - s for s, e in windows for c in calls if s < c.at < e), default=0.0)
    print(f"\nstorms: {total} updates, {storms} storms of 10 x 429 (retry_after {RETRY_AFTER}s) and {bursts} "
          f"bursts of 4 x 502, answered in {took:.1f}s; latest call after a 429: {late * 1000:.0f} ms")  # fmt: skip
    assert early == []


def _all_redelivered(calls: list[CallRecord]) -> bool:
    """Whether every message refused with a 5xx was later sent successfully."""
    refused = {str(c.params.get("text")) for c in calls if c.error_code is not None and c.error_code >= 500}
    sent = {str(c.params.get("text")) for c in calls if c.ok}
    return refused <= sent


@dataclass(frozen=True)
class Mischief:
    """A webhook request Telegram would not send, and the status docs/ingress.md promises for it."""

    name: str
    expected: int
    body: bytes
    secret: str | None = ""
    bot_id: str | None = None
    chunked: bool = False


def mischiefs(bot: EchoBot, chat_id: int) -> list[Mischief]:
    """One of each kind of bad request; the valid-looking ones carry seq numbers no plan uses."""
    stray = update_body(99_000_001, chat_id, f"/e {chat_id}:901")
    big = json.dumps({"update_id": 99_000_002, "message": {"text": "x" * (1 << 20)}}).encode()
    no_chat = json.dumps({"update_id": 99_000_003, "inline_query": {"id": "1", "from": {"id": 1, "is_bot": False,
                          "first_name": "A"}, "query": "q", "offset": ""}}).encode()  # fmt: skip
    return [
        Mischief("not JSON", 400, b"{not json"),
        Mischief("not an object", 400, b"[1, 2]"),
        Mischief("no update_id", 400, json.dumps({"message": {"text": "/e 1:1"}}).encode()),
        Mischief("negative update_id", 400, json.dumps({"update_id": -5}).encode()),
        Mischief("update_id a string", 400, json.dumps({"update_id": "7"}).encode()),
        Mischief("wrong secret", 401, stray, secret="not-the-secret"),
        Mischief("no secret", 401, stray, secret=None),
        Mischief("unknown bot", 404, stray, bot_id="rt-0000000000"),
        Mischief("malformed bot id", 404, stray, bot_id="Not_A_Bot!"),
        Mischief("declared over 1 MiB", 413, big),
        Mischief("streamed over 1 MiB", 413, big, chunked=True),
        Mischief("no chat (inline query)", 200, no_chat),
    ]


async def test_malformed_duplicated_oversized_and_forged_webhooks_get_their_statuses_and_disturb_nothing(
    cluster: Cluster, pool: Pool, store: FsArtifactStore, owner: tuple[UUID, UUID], standin: BotApiStandIn,
    redis_client: Redis,
) -> None:  # fmt: skip
    # Given an echo bot with 30 + 5 chats and 10 updates for each
    chat_ids, twin_chats = list(range(3001, 3031)), list(range(3031, 3036))
    bot = await create_echo_bot(pool, store, owner, standin, chat_ids + twin_chats)
    everything = plan(chat_ids + twin_chats, 10)
    planned = {c: everything[c] for c in chat_ids}
    total = sum(map(len, everything.values()))
    by_update = {p.update_id: p for items in planned.values() for p in items}
    sent = Sent()
    got: list[tuple[str, int, int]] = []
    duplicated: list[int] = []

    async def mischief(telegram: Telegram) -> None:
        rng = random.Random()
        for round_ in range(3):
            await replies_reach(bot, total * (round_ + 1) // 5)
            for bad in mischiefs(bot, rng.choice(chat_ids)):
                response = await _post(telegram, bad)
                got.append((bad.name, bad.expected, response.status_code))
            # Telegram's retries of updates already accepted: the same update_id, the same or other bytes
            for update_id in rng.sample(sorted(sent.accepted_at), 5):
                original = by_update[update_id]
                for body in (original.body, update_body(update_id, original.chat_id, f"/e {original.chat_id}:902")):
                    response = await telegram.post(body)
                    got.append((f"duplicate {update_id}", 200, response.status_code))
                duplicated.append(update_id)

    async def twins(telegram: Telegram, chat_id: int) -> None:
        # Telegram's retry while its first attempt is still in flight: both copies at once, one to each ingress
        for update in everything[chat_id]:
            for response in await asyncio.gather(telegram.post(update.body), telegram.post(update.body)):
                got.append((f"concurrent copy of {update.update_id}", 200, response.status_code))

    async def meddle(telegram: Telegram) -> None:
        await asyncio.gather(mischief(telegram), *(twins(telegram, c) for c in twin_chats))

    # When bad requests and duplicates are mixed into the traffic
    async with Telegram(cluster.urls, bot, in_flight=IN_FLIGHT) as telegram:
        await during(telegram.send(planned, sent), lambda: meddle(telegram))
    await answered(bot, redis_client, total, within=60)
    # Then each got the status docs/ingress.md gives it ...
    assert [(name, status) for name, expected, status in got if status != expected] == []
    assert len(duplicated) == 15
    # ... and the traffic is answered exactly as without them: duplicates once, forged and bad ones never
    assert problems(replies(bot), everything) == []
    assert (await leftovers(redis_client, bot.bot_id)) == NONE_LEFT


async def _post(telegram: Telegram, bad: Mischief) -> httpx.Response:
    if not bad.chunked:
        return await telegram.post(bad.body, secret=bad.secret, bot_id=bad.bot_id)

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(bad.body), 64 * 1024):
            yield bad.body[start : start + 64 * 1024]

    return await telegram.post(stream(), secret=bad.secret, bot_id=bad.bot_id)


async def test_a_flip_mid_traffic_never_mixes_revisions_within_an_update_and_settles_on_the_new_one(
    cluster: Cluster, pool: Pool, store: FsArtifactStore, owner: tuple[UUID, UUID], standin: BotApiStandIn,
    redis_client: Redis,
) -> None:  # fmt: skip
    # Given an echo bot on its "old" revision, 40 chats and 15 updates for each
    chat_ids = list(range(4001, 4041))
    bot = await create_echo_bot(pool, store, owner, standin, chat_ids)
    planned = plan(chat_ids, 15)
    total = sum(map(len, planned.values()))
    sent = Sent()
    flipped: list[float] = []

    async def flip() -> None:
        await replies_reach(bot, total * 2 // 5)
        new_rev = await activate(pool, store, bot.bot_id, echo_spec(bot.bot_id, prefix="new"))
        await publish_flip(redis_client, bot.bot_id, new_rev)
        flipped.append(time.time())

    # When the "new" revision is activated and the flip announced in the middle of the traffic
    async with Telegram(cluster.urls, bot, in_flight=IN_FLIGHT) as telegram:
        await during(telegram.send(planned, sent), flip)
    await answered(bot, redis_client, total, within=60)
    # Then every reply is entirely one revision's (problems() checks prefix == tag), each update once, in order
    found = replies(bot)
    assert problems(found, planned) == []
    assert {r.prefix for r in found} == {"old", "new"}
    # ... and once the flip has settled, every update is answered by the new revision
    settle_s = 0.5
    posted = {(p.chat_id, p.seq): sent.posted_at[p.update_id] for items in planned.values() for p in items}
    after_flip = [r for r in found if posted[(r.chat_id, r.seq)] > flipped[0]]
    old_after_flip = [r.text for r in after_flip if r.prefix == "old"]
    print(f"\nflip: {total} updates, {sum(r.prefix == 'old' for r in found)} answered old, "
          f"{len(after_flip)} posted after the flip of which {len(old_after_flip)} answered old")  # fmt: skip
    settled = [r for r in after_flip if posted[(r.chat_id, r.seq)] > flipped[0] + settle_s]
    assert [r.text for r in settled if r.prefix == "old"] == []
