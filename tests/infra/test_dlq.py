"""Dead letters: inbound replay/drop in ``RedisChatQueue`` and the ``botkiln dlq`` CLI.

Real Redis with a key prefix of each test's own (deleted afterwards), a real migrated database
holding the bot's encrypted token, and the Telegram stand-in on loopback for outbound replay.
The CLI runs in-process through ``botkiln.infra.cli.main`` (it calls ``asyncio.run``, so those
tests are synchronous and prepare Redis with ``asyncio.run`` too).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
import redis as sync_redis
import redis.asyncio as aioredis
from redis.asyncio import Redis

from botkiln.infra.chat_queue import RedisChatQueue
from botkiln.infra.cli import main
from botkiln.infra.crypto import SecretBox, generate_secret_key, new_webhook_secret
from botkiln.infra.db import bots, connect, projects, users
from botkiln.infra.outbound import BotApiCaller, OutboundLimiter, OutboundSender, RetryPolicy
from botkiln.infra.ports import Claim, Duplicate
from botkiln.infra.redis_keys import ChatQueueKeys, OutboundKeys
from botkiln.infra.telegram_api import BotApiClient
from botkiln.infra.telegram_standin import BotApiStandIn, StandInBot
from botkiln.infra.telegram_standin_updates import chat
from botkiln.interpreter.types import Action
from tests.graphql.support import ServerThread
from tests.services import delete_keys

pytestmark = pytest.mark.anyio

T = TypeVar("T")
BOT = "bot-a"
LONG = 10_000
SECRET_TEXT = "SECRET-USER-TEXT"
SECRET_KEY = generate_secret_key()
PAYLOAD = b'{"update_id":%d,"message":{"chat":{"id":7},"text":"' + SECRET_TEXT.encode() + b'"}}'


def payload(update_id: int) -> bytes:
    return PAYLOAD.replace(b"%d", str(update_id).encode())


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    value = f"test-dlq-{secrets.token_hex(6)}"
    yield value
    delete_keys(redis_url, f"{value}:*")


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[Redis]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def queue(aredis: Redis, prefix: str) -> RedisChatQueue:
    return RedisChatQueue(aredis, prefix=prefix)


async def claim_one(queue: RedisChatQueue, consumer: str = "c1") -> Claim:
    claim = await queue.claim(consumer, LONG)
    assert claim is not None
    return claim


async def dead_letter(
    queue: RedisChatQueue, chat_id: int, update_id: int, body: bytes, reason: str = "bot failed"
) -> None:
    """Enqueue ``update_id`` into an otherwise idle chat, claim it and dead-letter it."""
    await queue.enqueue(BOT, chat_id, update_id, body)
    claim = await claim_one(queue)
    assert claim.update_id == update_id
    assert await queue.dead_letter(claim, reason)


async def drain(queue: RedisChatQueue) -> list[tuple[int, int, bytes]]:
    """Claim and ack until nothing is ready: ``(chat_id, update_id, payload)`` in delivery order."""
    seen = []
    while (claim := await queue.claim("drain", LONG)) is not None:
        seen.append((claim.chat_id, claim.update_id, claim.payload))
        assert await queue.ack(claim)
    return seen


# --- RedisChatQueue: replay and drop ---------------------------------------------------------------------------------


async def test_a_replayed_entry_goes_to_the_tail_of_its_chat_with_its_payload_intact(
    queue: RedisChatQueue, aredis: Redis, prefix: str
) -> None:
    # Given a dead letter whose payload is arbitrary bytes, and a chat that has moved on
    odd = bytes(range(256)) + b":\n:" + payload(1)
    await dead_letter(queue, 7, 1, odd)
    [letter] = await queue.dead_letters(BOT)
    await queue.enqueue(BOT, 7, 2, payload(2))
    assert await queue.depth(BOT) == 1
    # When it is replayed
    assert await queue.replay_dead_letters(BOT, 0) == 1
    # Then it leaves the DLQ and is queued behind the chat's update, enqueued now on the Redis clock
    assert await queue.dead_letters(BOT) == []
    assert await queue.depth(BOT) == 2
    entries: list[bytes] = await aredis.lrange(ChatQueueKeys(prefix).chat(f"{BOT}:7"), 0, -1)  # type: ignore[assignment]
    assert [e.split(b":", 1)[0] for e in entries] == [b"2", b"1"]
    assert int(entries[1].split(b":", 2)[1]) >= letter.at_ms
    first = await claim_one(queue)
    assert first.update_id == 2 and await queue.ack(first)
    replayed = await claim_one(queue)
    assert (replayed.chat_id, replayed.update_id, replayed.payload, replayed.deliveries) == (7, 1, odd, 1)
    assert await queue.ack(replayed)
    assert await queue.depth(BOT) == 0 and await queue.oldest_age_ms(BOT) is None


async def test_a_replay_into_an_idle_chat_makes_it_claimable_and_dedup_does_not_block_it(
    queue: RedisChatQueue, aredis: Redis, prefix: str
) -> None:
    await dead_letter(queue, 9, 50, payload(50))
    assert await queue.claim("c1", LONG) is None and await queue.oldest_age_ms(BOT) is None
    assert await aredis.exists(ChatQueueKeys(prefix).seen(BOT, 50)), "the update id is still remembered"
    assert await queue.replay_dead_letters(BOT, 0) == 1
    age = await queue.oldest_age_ms(BOT)
    assert age is not None and 0 <= age < 5_000
    # The replay neither cleared nor consumed the dedup: the same update from Telegram is still a duplicate
    assert await queue.enqueue(BOT, 9, 50, payload(50)) == Duplicate(50)
    assert await drain(queue) == [(9, 50, payload(50))]


async def test_replaying_all_keeps_the_dead_letter_order_per_chat(queue: RedisChatQueue) -> None:
    for chat_id, update_id in ((1, 10), (2, 20), (1, 11), (1, 12), (2, 21)):
        await dead_letter(queue, chat_id, update_id, payload(update_id))
    assert [d.update_id for d in await queue.dead_letters(BOT)] == [10, 20, 11, 12, 21]
    assert await queue.replay_dead_letters(BOT, "all") == 5
    assert await queue.dead_letters(BOT) == [] and await queue.depth(BOT) == 5
    delivered = await drain(queue)
    assert [u for c, u, _ in delivered if c == 1] == [10, 11, 12]
    assert [u for c, u, _ in delivered if c == 2] == [20, 21]
    assert await queue.replay_dead_letters(BOT) == 0, "an empty DLQ replays nothing"


async def test_a_replay_while_the_chat_is_leased_keeps_the_holders_head_first(queue: RedisChatQueue) -> None:
    # Given update 1 dead-lettered and update 2, now the chat's head, leased by c1
    await queue.enqueue(BOT, 5, 1, payload(1))
    await queue.enqueue(BOT, 5, 2, payload(2))
    first = await claim_one(queue)
    assert await queue.dead_letter(first, "bot failed")
    holder = await claim_one(queue)
    assert holder.update_id == 2
    # When update 1 is replayed
    assert await queue.replay_dead_letters(BOT, 0) == 1
    # Then the chat stays leased: no one else gets it, and the holder's head is still the head
    assert await queue.claim("c2", LONG) is None
    assert await queue.depth(BOT) == 2
    assert await queue.renew(holder, LONG)
    assert await queue.ack(holder)
    after = await claim_one(queue, "c2")
    assert (after.update_id, after.payload) == (1, payload(1))


async def test_concurrent_replays_of_one_entry_replay_it_once(
    queue: RedisChatQueue, redis_url: str, prefix: str
) -> None:
    await dead_letter(queue, 3, 30, payload(30))
    await dead_letter(queue, 4, 40, payload(40))
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(4)]
    try:
        queues = [RedisChatQueue(c, prefix=prefix) for c in clients]
        counts = await asyncio.gather(
            queues[0].replay_dead_letters(BOT, 0),
            queues[1].replay_dead_letters(BOT, 0),
            queues[2].replay_dead_letters(BOT, "all"),
            queues[3].replay_dead_letters(BOT, "all"),
        )
    finally:
        for c in clients:
            await c.aclose()
    assert sum(counts) == 2, counts
    assert await queue.depth(BOT) == 2
    assert sorted(u for _, u, _ in await drain(queue)) == [30, 40]


async def test_requeue_reports_an_entry_someone_else_took_first(
    queue: RedisChatQueue, aredis: Redis, prefix: str
) -> None:
    await dead_letter(queue, 3, 30, payload(30))
    raw = await aredis.lindex(ChatQueueKeys(prefix).dlq_in(BOT), 0)
    assert raw is not None
    # A second copy of the very same entry (the same bytes) is one more entry: LREM removes one per replay
    await aredis.rpush(ChatQueueKeys(prefix).dlq_in(BOT), raw)
    [(letter, position), (again, second)] = await queue.requeue_dead_letters(BOT, "all")
    assert (letter.update_id, position, again.update_id, second) == (30, 1, 30, 2)


async def test_a_missing_index_or_a_malformed_bot_id_is_refused(queue: RedisChatQueue) -> None:
    await dead_letter(queue, 3, 30, payload(30))
    with pytest.raises(IndexError, match="no entry 1"):
        await queue.replay_dead_letters(BOT, 1)
    with pytest.raises(IndexError):
        await queue.drop_dead_letters(BOT, 5)
    with pytest.raises(ValueError, match="not a bot id"):
        await queue.replay_dead_letters("Bad Bot", "all")
    assert len(await queue.dead_letters(BOT)) == 1


async def test_drop_discards_the_chosen_entries_and_nothing_else(queue: RedisChatQueue) -> None:
    for chat_id, update_id in ((1, 10), (2, 20), (1, 11)):
        await dead_letter(queue, chat_id, update_id, payload(update_id))
    await queue.enqueue(BOT, 1, 12, payload(12))
    assert await queue.drop_dead_letters(BOT, 1) == 1
    assert [d.update_id for d in await queue.dead_letters(BOT)] == [10, 11]
    assert await queue.drop_dead_letters(BOT, "all") == 2
    assert await queue.dead_letters(BOT) == [] and await queue.drop_dead_letters(BOT) == 0
    assert await queue.depth(BOT) == 1
    assert [u for _, u, _ in await drain(queue)] == [12]


# --- the CLI ---------------------------------------------------------------------------------------------------------


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines()]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], prefix: str) -> Callable[..., Run]:
    def run(*argv: str) -> Run:
        capsys.readouterr()
        code = main(["dlq", *argv, "--key-prefix", prefix])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def with_queue(redis_url: str, prefix: str, work: Callable[[RedisChatQueue], Awaitable[T]]) -> T:
    """Run ``work`` on a queue with its own client, from a synchronous test."""

    async def go() -> T:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await work(RedisChatQueue(client, prefix=prefix))
        finally:
            await client.aclose()

    return asyncio.run(go())


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> pytest.MonkeyPatch:
    monkeypatch.setenv("BOTKILN_REDIS_URL", redis_url)
    for name in ("BOTKILN_DATABASE_URL", "BOTKILN_SECRET_KEY", "BOTKILN_TELEGRAM_API_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def three_letters(env: pytest.MonkeyPatch, redis_url: str, prefix: str) -> None:
    async def fill(queue: RedisChatQueue) -> None:
        await dead_letter(queue, 7, 70, payload(70), reason="TypeError: x is undefined\n    at step ask")
        await dead_letter(queue, 8, 80, payload(80))
        await dead_letter(queue, 7, 71, payload(71))

    with_queue(redis_url, prefix, fill)


def test_list_shows_each_inbound_entry_without_its_payload(three_letters: None, cli: Callable[..., Run]) -> None:
    run = cli("list", BOT)
    assert run.code == 0 and run.err == ""
    lines = run.out.splitlines()
    assert lines[0] == f"dlq:in:{BOT}: 3 entries" and lines[-1] == f"dlq:out:{BOT}: 0 entries"
    assert "chat 7  update 70  deliveries 1  reason: TypeError: x is undefined at step ask" in lines[1]
    assert lines[1].split()[0] == "0" and "+00:00" in lines[1]
    assert ["chat 8  update 80" in lines[2], "chat 7  update 71" in lines[3]] == [True, True]
    assert SECRET_TEXT not in run.out
    as_json = cli("list", BOT, "--queue", "in", "--json")
    assert as_json.code == 0 and SECRET_TEXT not in as_json.out
    rows = as_json.json_lines()
    assert [(r["queue"], r["index"], r["chatId"], r["updateId"]) for r in rows] == [
        ("in", 0, 7, 70), ("in", 1, 8, 80), ("in", 2, 7, 71)
    ]  # fmt: skip
    assert rows[0]["reason"] == "TypeError: x is undefined\n    at step ask" and rows[0]["deliveries"] == 1
    assert rows[0]["at"].endswith("+00:00") and isinstance(rows[0]["atMs"], int) and rows[0]["bot"] == BOT


def test_show_prints_one_inbound_entry_in_full(three_letters: None, cli: Callable[..., Run]) -> None:
    run = cli("show", BOT, "in", "1")
    assert run.code == 0
    head, body = run.out.split("update:\n", 1)
    assert head.splitlines()[0] == f"dlq:in:{BOT} #1" and "chat:       8" in head and "update:     80" in head
    assert json.loads(body) == json.loads(payload(80)) and '\n  "message": {' in body
    missing = cli("show", BOT, "in", "3")
    assert (missing.code, missing.out) == (2, "")
    assert missing.err == f"botkiln dlq: dlq:in:{BOT} has no entry 3 (it holds 3 entries)\n"


def test_replay_and_drop_of_inbound_entries_from_the_cli(
    three_letters: None, cli: Callable[..., Run], redis_url: str, prefix: str
) -> None:
    one = cli("replay", BOT, "in", "1")
    assert one.code == 0
    assert one.out.splitlines() == [
        "in #1: chat 8 update 80: re-queued at the tail of its chat (position 1)",
        f"replayed 1 of 1 from dlq:in:{BOT}",
    ]
    dropped = cli("drop", BOT, "in", "0")
    assert (dropped.code, dropped.out.splitlines()[0]) == (0, "in #0: chat 7 update 70: dropped")
    rest = cli("replay", BOT, "in", "--all")
    assert rest.code == 0 and rest.out.splitlines()[-1] == f"replayed 1 of 1 from dlq:in:{BOT}"
    assert cli("replay", BOT, "in", "--all").out == f"dlq:in:{BOT} is empty: nothing to replay\n"
    assert [(c, u) for c, u, _ in with_queue(redis_url, prefix, drain)] == [(8, 80), (7, 71)]
    assert cli("drop", BOT, "in", "--all").out == f"dropped 0 of 0 from dlq:in:{BOT}\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("list", "Bad Bot"), "'Bad Bot' is not a bot id"),
        (("replay", BOT, "in", "7"), f"dlq:in:{BOT} has no entry 7 (it holds 3 entries)"),
        (("drop", BOT, "out", "0"), f"dlq:out:{BOT} has no entry 0 (it holds 0 entries)"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_code_2(
    three_letters: None, cli: Callable[..., Run], argv: tuple[str, ...], message: str
) -> None:
    run = cli(*argv)
    assert (run.code, run.out) == (2, "")
    assert run.err.startswith("botkiln dlq: ") and message in run.err and run.err.count("\n") == 1


def test_index_and_all_are_exclusive_and_one_is_required(three_letters: None, cli: Callable[..., Run]) -> None:
    assert cli("replay", BOT, "in").code == 2
    assert cli("drop", BOT, "in", "0", "--all").code == 2
    assert cli("show", BOT, "in", "-1").code == 2
    assert cli("list", BOT).out.count("chat ") == 3, "nothing was replayed or dropped"


def test_redis_down_is_a_failure_naming_redis(env: pytest.MonkeyPatch, cli: Callable[..., Run]) -> None:
    env.setenv("BOTKILN_REDIS_URL", "redis://:hunter2@127.0.0.1:1/0")
    run = cli("list", BOT)
    assert (run.code, run.out) == (1, "")
    assert run.err.startswith("botkiln dlq: Redis at redis://:***@127.0.0.1:1/0 failed: ") and run.err.count("\n") == 1
    assert "hunter2" not in run.err


# --- outbound: the stand-in and the bot's token from PostgreSQL ------------------------------------------------------


@pytest.fixture(scope="module")
def standin() -> Iterator[BotApiStandIn]:
    made = BotApiStandIn()
    server = ServerThread()
    server.start(made.app)
    made.url = server.url
    yield made
    server.stop()


@dataclass
class Outbound:
    bot_id: str
    bot: StandInBot
    standin: BotApiStandIn

    def texts(self) -> list[str]:
        return [c.params["text"] for c in self.standin.calls(self.bot, "sendMessage") if c.ok]


async def _store_bot(dsn: str, bot_id: str, token: str) -> None:
    conn = await connect(dsn)
    try:
        user = await users.create_user(conn, email=f"{bot_id}@example.com", password="correct horse 1")
        assert isinstance(user, users.User)
        project = await projects.create_project(conn, name="dlq", owner_id=user.id)
        made = await bots.create_bot(
            conn, SecretBox.from_setting(SECRET_KEY), bot_id=bot_id, project_id=project.id, name="DLQ test",
            token=token, webhook_secret=new_webhook_secret(), created_by=user.id,
        )  # fmt: skip
        assert isinstance(made, bots.Bot)
    finally:
        await conn.close()


@pytest.fixture
def outbound(env: pytest.MonkeyPatch, database: str, standin: BotApiStandIn) -> Outbound:
    bot = standin.register()
    standin.open_chat(bot, chat(501))
    bot_id = f"dlq-{secrets.token_hex(5)}"
    asyncio.run(_store_bot(database, bot_id, bot.token))
    env.setenv("BOTKILN_DATABASE_URL", database)
    env.setenv("BOTKILN_SECRET_KEY", SECRET_KEY)
    env.setenv("BOTKILN_TELEGRAM_API_URL", standin.url)
    return Outbound(bot_id, bot, standin)


def message(text: str) -> Action:
    return {"method": "sendMessage", "params": {"chat_id": 501, "text": text}}


def send_failing(redis_url: str, prefix: str, rig: Outbound, actions: list[Action], dedup_key: str) -> None:
    """Send ``actions`` while Telegram answers 502 to the first: it is dead-lettered after one attempt."""

    async def go() -> None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            async with httpx.AsyncClient() as http:

                def api(token: str) -> BotApiCaller:
                    return BotApiClient(http, token, base_url=rig.standin.url)

                limiter = OutboundLimiter(client, prefix=prefix)
                sender = OutboundSender(client, limiter, api, prefix=prefix, retry=RetryPolicy(attempts=1))
                rig.bot.faults.fail(1)
                await sender.send(rig.bot_id, rig.bot.token, 501, actions, dedup_key=dedup_key)
        finally:
            await client.aclose()

    asyncio.run(go())


def test_outbound_entries_are_listed_and_shown_without_leaking(
    outbound: Outbound, cli: Callable[..., Run], redis_url: str, prefix: str
) -> None:
    send_failing(redis_url, prefix, outbound, [message(SECRET_TEXT)], "u1")
    listed = cli("list", outbound.bot_id, "--queue", "out")
    assert listed.code == 0 and SECRET_TEXT not in listed.out
    [header, line] = listed.out.splitlines()
    assert header == f"dlq:out:{outbound.bot_id}: 1 entry"
    assert "chat 501  sendMessage  attempts 1  error: sendMessage (502): Bad Gateway" in line
    [row] = cli("list", outbound.bot_id, "--queue", "out", "--json").json_lines()
    assert (row["method"], row["errorCode"], row["dedupKey"], row["actionIndex"]) == ("sendMessage", 502, "u1", 0)
    assert "params" not in json.dumps(row)
    shown = cli("show", outbound.bot_id, "out", "0")
    assert shown.code == 0 and f"dlq:out:{outbound.bot_id} #0" in shown.out
    assert json.loads(shown.out.split("action:\n", 1)[1]) == message(SECRET_TEXT)
    assert outbound.bot.token not in listed.out + shown.out + shown.err


def test_outbound_replay_reaches_telegram_and_leaves_the_list(
    outbound: Outbound, cli: Callable[..., Run], redis_url: str, prefix: str
) -> None:
    send_failing(redis_url, prefix, outbound, [message("first"), message("second")], "u2")
    assert outbound.texts() == ["second"]
    run = cli("replay", outbound.bot_id, "out", "0")
    assert run.code == 0, run.err
    assert run.out.splitlines() == [
        "out #0: chat 501 sendMessage (update u2, action 0): sent (1 attempt), removed from the DLQ",
        f"delivered 1 of 1; 0 kept in dlq:out:{outbound.bot_id}",
    ]
    assert outbound.texts() == ["second", "first"]
    assert cli("list", outbound.bot_id, "--queue", "out", "--json").out == ""
    assert outbound.bot.token not in run.out + run.err


def test_a_replayed_action_already_delivered_is_not_sent_again(
    outbound: Outbound, cli: Callable[..., Run], redis_url: str, prefix: str
) -> None:
    send_failing(redis_url, prefix, outbound, [message("once")], "u3")
    # Telegram had in fact received it (say, by an earlier replay whose answer was lost): its marker says so
    with sync_redis.Redis.from_url(redis_url) as client:
        client.set(OutboundKeys(prefix).sent(outbound.bot_id, "u3", 0), '{"s":"sent","r":null}')
    run = cli("replay", outbound.bot_id, "out", "--all")
    assert run.code == 0
    assert "already delivered, not sent again, removed from the DLQ" in run.out
    assert outbound.texts() == [] and cli("list", outbound.bot_id, "--queue", "out", "--json").out == ""


def test_a_replay_that_fails_again_keeps_the_entry_and_exits_1(
    outbound: Outbound, cli: Callable[..., Run], redis_url: str, prefix: str
) -> None:
    # An empty text is refused by Telegram every time (400): permanent, kept after the replay
    send_failing(redis_url, prefix, outbound, [message(" "), message("ok")], "u4")
    run = cli("replay", outbound.bot_id, "out", "--all")
    assert run.code == 1
    assert "dead lettered: sendMessage (400): Bad Request: message text is empty; kept in the DLQ" in run.out
    assert run.out.splitlines()[-1] == f"delivered 0 of 1; 1 kept in dlq:out:{outbound.bot_id}"
    assert len(cli("list", outbound.bot_id, "--queue", "out", "--json").json_lines()) == 1
    assert cli("drop", outbound.bot_id, "out", "0").out.splitlines() == [
        "out #0: chat 501 sendMessage: dropped", f"dropped 1 of 1 from dlq:out:{outbound.bot_id}"
    ]  # fmt: skip
    assert cli("list", outbound.bot_id, "--queue", "out", "--json").out == ""


@pytest.mark.parametrize("missing", ["BOTKILN_DATABASE_URL", "BOTKILN_SECRET_KEY"])
def test_outbound_replay_names_a_missing_setting(
    outbound: Outbound, env: pytest.MonkeyPatch, cli: Callable[..., Run], redis_url: str, prefix: str, missing: str
) -> None:
    send_failing(redis_url, prefix, outbound, [message("later")], "u5")
    env.delenv(missing)
    run = cli("replay", outbound.bot_id, "out", "0")
    assert (run.code, run.out) == (2, "")
    assert run.err.startswith(f"botkiln dlq: {missing} is missing") and run.err.count("\n") == 1
    assert outbound.texts() == []


def test_outbound_replay_of_an_unknown_bot_is_refused(
    env: pytest.MonkeyPatch, database: str, cli: Callable[..., Run], redis_url: str, prefix: str, standin: BotApiStandIn
) -> None:
    ghost = Outbound(f"dlq-{secrets.token_hex(5)}", standin.register(), standin)
    standin.open_chat(ghost.bot, chat(501))
    send_failing(redis_url, prefix, ghost, [message("nobody")], "u6")
    env.setenv("BOTKILN_DATABASE_URL", database)
    env.setenv("BOTKILN_SECRET_KEY", SECRET_KEY)
    run = cli("replay", ghost.bot_id, "out", "0")
    assert run.code == 2 and f"no live bot '{ghost.bot_id}' in the database" in run.err
