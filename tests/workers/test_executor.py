"""The executor against real Redis, PostgreSQL and the Telegram stand-in (no Dramatiq: called directly)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import json
import secrets
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from redis.asyncio import Redis

from botkiln.infra.analytics import EventRow
from botkiln.infra.artifacts_fs import FsArtifactStore
from botkiln.infra.chat_queue import RedisChatQueue
from botkiln.infra.db import Pool
from botkiln.infra.outbound import OutboundSender
from botkiln.infra.settings import Settings
from botkiln.infra.telegram_standin import BotApiStandIn
from botkiln.workers import WorkerOptions
from botkiln.workers.executor import Executor, ExecutorOptions
from botkiln.workers.runtime import Runtime, build_executor, open_runtime
from tests.conftest import minimal_spec
from tests.graphql.support import ServerThread
from tests.services import delete_keys
from tests.workers.runtime_support import activate, live_bot, open_chats, served_standin, texts, update
from tests.workers.support import SECRET_KEY

pytestmark = pytest.mark.anyio

LEASE_MS = 600


@dataclass
class Collector:
    """Analytics rows, kept in memory."""

    rows: list[EventRow] = dataclasses.field(default_factory=list)

    async def publish(self, rows: Sequence[EventRow]) -> None:
        self.rows.extend(rows)


@pytest.fixture(scope="module")
def standin() -> Iterator[BotApiStandIn]:
    made, server = served_standin()
    yield made
    server.stop()


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    value = f"test-ex-{secrets.token_hex(5)}"
    yield value
    delete_keys(redis_url, f"{value}:*")


@dataclass
class Rig:
    rt: Runtime
    executor: Executor
    queue: RedisChatQueue
    redis: Redis
    standin: BotApiStandIn
    analytics: Collector
    bot_id: str
    token: str
    rev: str

    async def push(self, chat_id: int, text: str) -> int:
        update_id, body = update(chat_id, text)
        await self.queue.enqueue(self.bot_id, chat_id, update_id, body)
        return update_id

    def texts(self, chat_id: int) -> list[str]:
        return texts(self.standin, self.token, chat_id)


def _spec(bot_id: str, greeting: str = "Hello") -> dict[str, Any]:
    spec = minimal_spec()
    spec["meta"]["botId"] = bot_id
    spec["localization"]["strings"]["hello"]["en"] = greeting
    spec["localization"]["strings"]["ask_name"]["en"] = f"{greeting}: your name?"
    return spec


@pytest.fixture
async def rig(
    settings: Settings,
    pool: Pool,
    store: FsArtifactStore,
    owner: tuple[UUID, UUID],
    standin: BotApiStandIn,
    prefix: str,
) -> AsyncIterator[Rig]:
    configured = dataclasses.replace(
        settings, secret_key=SECRET_KEY, telegram_api_url=standin.url, executor_lease_ms=LEASE_MS,
        outbound_rates=(("bot_per_s", 1000.0), ("bot_burst", 100.0), ("chat_per_s", 200.0), ("chat_burst", 50.0)),
        apicall_private_ok=True,
    )  # fmt: skip
    rt = await open_runtime(configured, WorkerOptions(redis_prefix=prefix, active_ttl_s=60.0))
    assert rt.http is not None
    collector = Collector()
    executor = build_executor(rt, rt.http, analytics=collector)
    executor.options = ExecutorOptions(lease_ms=LEASE_MS, drain_budget_s=5.0, linger_s=0.05, private_api_ok=True)
    bot = standin.register()
    bot_id = await live_bot(pool, owner, bot.token)
    rev = await activate(pool, store, bot_id, _spec(bot_id))
    try:
        yield Rig(rt, executor, executor.queue, rt.redis, standin, collector, bot_id, bot.token, rev)
    finally:
        await rt.aclose()


async def test_a_conversation_goes_through_state_and_out_to_telegram(rig: Rig) -> None:
    open_chats(rig.standin, rig.token, [71])
    await rig.push(71, "/start")
    await rig.push(71, "Ada")
    drained = await rig.executor.drain()
    assert drained.handled == 2
    assert rig.texts(71) == ["Hello", "Hello: your name?", "Bye Ada"]
    state = await rig.executor.states.load(rig.bot_id, 71)
    assert state is not None and state["vars"]["name"] == "Ada"
    assert await rig.queue.depth(rig.bot_id) == 0
    types = [row.type for row in rig.analytics.rows]
    assert "flow_started" in types and types.count("message_sent") == 3 and types.count("update_processed") == 2
    assert {row.rev_hash for row in rig.analytics.rows} == {rig.rev}
    timed = [row.latency_ms for row in rig.analytics.rows if row.type in ("message_sent", "update_processed")]
    assert len(timed) == 5 and all(t is not None and 0 <= t < 10_000 for t in timed)


async def test_chats_keep_their_order_under_concurrent_drains(rig: Rig) -> None:
    chats = list(range(200, 206))
    open_chats(rig.standin, rig.token, chats)
    for round_ in range(4):
        for chat_id in chats:
            await rig.push(chat_id, "/start" if round_ % 2 == 0 else f"n{round_}{chat_id}")
    results = await asyncio.gather(*(rig.executor.drain() for _ in range(4)))
    assert sum(r.handled for r in results) == 24
    for chat_id in chats:
        assert rig.texts(chat_id) == ["Hello", "Hello: your name?", f"Bye n1{chat_id}"] * 1 + [
            "Hello", "Hello: your name?", f"Bye n3{chat_id}",
        ]  # fmt: skip


class Dying(Exception):
    """The process 'dies' here: nothing after it runs."""


async def test_a_crash_after_commit_resends_nothing_and_does_not_rerun_the_engine(rig: Rig) -> None:
    open_chats(rig.standin, rig.token, [81])
    await rig.push(81, "/start")
    real_send = OutboundSender.send
    sent_once: list[int] = []

    async def send_then_die(self: OutboundSender, *args: Any, **kwargs: Any) -> Any:
        await real_send(self, *args, **kwargs)
        sent_once.append(1)
        raise Dying  # after Telegram got the messages, before the ack

    claim = await rig.queue.claim("victim", LEASE_MS)
    assert claim is not None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(OutboundSender, "send", send_then_die)
        with pytest.raises(Dying):
            await rig.executor.handle(claim)
    assert sent_once and rig.texts(81) == ["Hello", "Hello: your name?"]
    state_before = await rig.executor.states.load(rig.bot_id, 81)
    calls_before = len(rig.standin.calls(rig.standin.bots[rig.token]))
    await asyncio.sleep(LEASE_MS / 1000 + 0.1)  # the victim's lease runs out
    drained = await rig.executor.drain()
    assert drained.handled == 1  # re-delivered ...
    assert rig.texts(81) == ["Hello", "Hello: your name?"]  # ... but nothing sent twice
    assert len(rig.standin.calls(rig.standin.bots[rig.token])) == calls_before
    assert await rig.executor.states.load(rig.bot_id, 81) == state_before
    assert await rig.queue.depth(rig.bot_id) == 0


async def test_a_crash_before_commit_runs_the_update_again_from_the_old_state(rig: Rig) -> None:
    open_chats(rig.standin, rig.token, [82])
    await rig.push(82, "/start")
    claim = await rig.queue.claim("victim", LEASE_MS)
    assert claim is not None
    with pytest.MonkeyPatch.context() as mp:

        async def die(*args: Any, **kwargs: Any) -> bool:
            raise Dying

        mp.setattr(rig.executor.states, "commit", die)
        with pytest.raises(Dying):
            await rig.executor.handle(claim)
    assert rig.texts(82) == [] and await rig.executor.states.load(rig.bot_id, 82) is None
    await asyncio.sleep(LEASE_MS / 1000 + 0.1)
    assert (await rig.executor.drain()).handled == 1
    assert rig.texts(82) == ["Hello", "Hello: your name?"]


async def test_a_stale_lease_holder_cannot_commit(rig: Rig) -> None:
    open_chats(rig.standin, rig.token, [83])
    await rig.push(83, "/start")
    stale = await rig.queue.claim("slow", 100)
    assert stale is not None
    await asyncio.sleep(0.2)
    fresh = await rig.queue.claim("fast", LEASE_MS)
    assert fresh is not None and fresh.update_id == stale.update_id and fresh.token > stale.token
    handled = await rig.executor.handle(stale)
    assert handled.outcome == "lost"
    assert rig.texts(83) == [] and await rig.executor.states.load(rig.bot_id, 83) is None
    assert (await rig.executor.handle(fresh)).outcome == "done"
    assert rig.texts(83) == ["Hello", "Hello: your name?"]


async def test_failing_bot_code_is_dead_lettered_and_the_chat_moves_on(rig: Rig, pool: Pool) -> None:
    open_chats(rig.standin, rig.token, [84])
    await rig.push(84, "/start")
    await rig.push(84, "Bob")
    real_run = Executor._run
    calls = 0

    def fail_first(self: Executor, *args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("InternalError: interrupted")
        return real_run(self, *args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Executor, "_run", fail_first)
        drained = await rig.executor.drain()
    assert drained.handled == 2
    letters = await rig.queue.dead_letters(rig.bot_id)
    assert len(letters) == 1 and letters[0].chat_id == 84
    assert letters[0].reason == "bot code failed: RuntimeError: InternalError: interrupted"
    assert json.loads(letters[0].payload)["message"]["text"] == "/start"
    assert rig.texts(84) == []  # "Bob" with no conversation started: the minimal bot says nothing
    assert any(r.type == "executor_error" for r in rig.analytics.rows)


async def test_an_update_for_a_bot_without_an_active_revision_is_dead_lettered(
    rig: Rig, pool: Pool, owner: tuple[UUID, UUID]
) -> None:
    bot = rig.standin.register()
    idle = await live_bot(pool, owner, bot.token)
    update_id, body = update(90, "/start")
    await rig.queue.enqueue(idle, 90, update_id, body)
    assert (await rig.executor.drain()).handled == 1
    letters = await rig.queue.dead_letters(idle)
    assert [letter.reason for letter in letters] == ["not run: the bot has no active revision (never deployed)"]


async def test_a_flip_changes_the_revision_between_updates_never_within_one(
    rig: Rig, pool: Pool, store: FsArtifactStore
) -> None:
    open_chats(rig.standin, rig.token, [85, 86])
    await rig.push(85, "/start")
    assert (await rig.executor.drain()).handled == 1
    new_rev = await activate(pool, store, rig.bot_id, _spec(rig.bot_id, greeting="Howdy"))
    rig.executor.bots.invalidate(rig.bot_id)  # what the flip broadcast does
    await rig.push(86, "/start")
    assert (await rig.executor.drain()).handled == 1
    assert rig.texts(85) == ["Hello", "Hello: your name?"]
    assert rig.texts(86) == ["Howdy", "Howdy: your name?"]
    by_update: dict[int, set[str]] = {}
    for row in rig.analytics.rows:
        by_update.setdefault(row.update_id, set()).add(row.rev_hash)
    assert sorted(map(sorted, by_update.values())) == sorted([[rig.rev], [new_rev]])


async def test_the_flip_broadcast_invalidates_the_cache(rig: Rig, pool: Pool, store: FsArtifactStore) -> None:
    from botkiln.infra.progress import publish_flip

    listening = asyncio.Event()
    listener = asyncio.create_task(rig.executor.bots.listen(listening))
    try:
        await asyncio.wait_for(listening.wait(), 5)
        first = await rig.executor.bots.get(rig.bot_id)
        new_rev = await activate(pool, store, rig.bot_id, _spec(rig.bot_id, greeting="Yo"))
        assert (await rig.executor.bots.get(rig.bot_id)) is first  # cached (TTL 60 s here)
        await publish_flip(rig.redis, rig.bot_id, new_rev)
        for _ in range(100):
            got = await rig.executor.bots.get(rig.bot_id)
            if getattr(got, "rev_hash", None) == new_rev:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the flip broadcast did not invalidate the cached revision")
    finally:
        listener.cancel()


def _api_spec(bot_id: str, url: str) -> dict[str, Any]:
    spec = copy.deepcopy(_spec(bot_id))
    spec["security"] = {"allowedDomains": ["127.0.0.1"], "allowInsecureHttp": True}
    spec["localization"]["strings"]["got"] = {"en": "Got it"}
    spec["flows"][0]["steps"] = [
        {"id": "call", "type": "apiCall", "method": "GET", "url": url, "timeoutMs": 300, "retries": 0,
         "onError": "oops"},
        {"id": "ok", "type": "reply", "text": "got", "next": "#end"},
        {"id": "oops", "type": "reply", "text": "hello"},
    ]  # fmt: skip
    return spec


async def test_an_api_call_that_hangs_times_out_and_the_flow_takes_its_error_branch(
    rig: Rig, pool: Pool, store: FsArtifactStore
) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def slow(request: Request) -> JSONResponse:
        await asyncio.sleep(5)
        return JSONResponse({"late": True})

    async def fast(request: Request) -> JSONResponse:
        return JSONResponse({"ok": 1})

    server = ServerThread()
    server.start(Starlette(routes=[Route("/slow", slow), Route("/fast", fast)]))
    try:
        await activate(pool, store, rig.bot_id, _api_spec(rig.bot_id, f"{server.url}/slow"))
        rig.executor.bots.invalidate(rig.bot_id)
        open_chats(rig.standin, rig.token, [87])
        await rig.push(87, "/start")
        assert (await rig.executor.drain()).handled == 1
        assert rig.texts(87) == ["Hello"]  # the error branch, after the 300 ms timeout
        assert any(r.type == "api_error" for r in rig.analytics.rows)
        await activate(pool, store, rig.bot_id, _api_spec(rig.bot_id, f"{server.url}/fast"))
        rig.executor.bots.invalidate(rig.bot_id)
        await rig.push(87, "/start")
        assert (await rig.executor.drain()).handled == 1
        assert rig.texts(87) == ["Hello", "Got it"]
    finally:
        server.stop()


async def test_an_api_call_carries_the_bots_secrets_in_its_headers_and_a_changed_secret_is_used_at_once(
    rig: Rig, pool: Pool, store: FsArtifactStore
) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from botkiln.infra.db import bot_secrets
    from botkiln.infra.progress import publish_flip

    seen: list[tuple[str | None, str | None]] = []

    async def crm(request: Request) -> JSONResponse:
        seen.append((request.headers.get("authorization"), request.headers.get("x-org")))
        return JSONResponse({"ok": 1})

    box = rig.rt.settings.secret_box()
    server = ServerThread()
    server.start(Starlette(routes=[Route("/crm", crm)]))
    listening = asyncio.Event()
    listener = asyncio.create_task(rig.executor.bots.listen(listening))
    try:
        await asyncio.wait_for(listening.wait(), 5)
        spec = _api_spec(rig.bot_id, f"{server.url}/crm")
        spec["flows"][0]["steps"][0]["headers"] = {
            "Authorization": "Bearer {{secret.CRM_TOKEN}}",
            "X-Org": "{{ secret.ORG }}",
        }
        await bot_secrets.set_secret(pool, box, rig.bot_id, "CRM_TOKEN", "first-token", updated_by=None)
        rev = await activate(pool, store, rig.bot_id, spec)
        await publish_flip(rig.redis, rig.bot_id, rev)
        open_chats(rig.standin, rig.token, [88])
        await asyncio.sleep(0.1)
        await rig.push(88, "/start")
        assert (await rig.executor.drain()).handled == 1
        # A secret the bot does not have is sent empty (the deploy preflight refuses such revisions)
        assert seen == [("Bearer first-token", "")]
        # When the secrets change, the broadcast makes the next update use them (the cache TTL here is 60 s)
        await bot_secrets.set_secret(pool, box, rig.bot_id, "CRM_TOKEN", "second-token", updated_by=None)
        await bot_secrets.set_secret(pool, box, rig.bot_id, "ORG", "acme", updated_by=None)
        await publish_flip(rig.redis, rig.bot_id, rev)
        for _ in range(100):
            bot = await rig.executor.bots.get(rig.bot_id)
            if getattr(bot, "secrets", {}).get("ORG") == "acme":
                break
            await asyncio.sleep(0.02)
        await rig.push(88, "/start")
        assert (await rig.executor.drain()).handled == 1
        assert seen[1:] == [("Bearer second-token", "acme")]
        assert rig.texts(88) == ["Got it", "Got it"]
        # And the entry never shows its secrets
        assert "second-token" not in repr(await rig.executor.bots.get(rig.bot_id))
    finally:
        listener.cancel()
        server.stop()


async def test_telegram_answering_too_late_is_retried_and_the_update_completes(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    from botkiln.infra import telegram_api

    open_chats(rig.standin, rig.token, [88])
    bot = rig.standin.bots[rig.token]
    monkeypatch.setattr(telegram_api, "_TIMEOUT_S", 0.3)
    impatient = httpx.AsyncClient()
    executor = build_executor(rig.rt, impatient, analytics=rig.analytics)
    executor.options = rig.executor.options
    try:
        bot.faults.slow(800)  # Telegram answers after 0.8 s: the client gives up at 0.3 s
        await rig.push(88, "/start")
        claim = await rig.queue.claim("impatient", LEASE_MS)
        assert claim is not None
        handling = asyncio.create_task(executor.handle(claim))
        await asyncio.sleep(0.4)
        bot.faults.slow(0)  # ... and recovers before the sender's retry (after a 0.5 s backoff)
        handled = await handling
    finally:
        bot.faults.clear()
        await impatient.aclose()
    assert handled.outcome == "done" and handled.report is not None
    assert [r.attempts for r in handled.report.results] == [2, 1]  # the first message was sent again
    # Whether the timed-out call still reached Telegram depends on the server (docs/outbound.md: a retried
    # timeout is the window the Bot API's lack of idempotency keys leaves open): at most one repeat, in place.
    texts = rig.texts(88)
    assert texts in (["Hello", "Hello: your name?"], ["Hello", "Hello", "Hello: your name?"])
    assert await rig.queue.depth(rig.bot_id) == 0 and await rig.queue.dead_letters(rig.bot_id) == []


async def test_a_ready_chat_sends_an_execute_message_only_when_no_drain_is_lingering(
    rig: Rig, prefix: str, broker: Any, namespace: str
) -> None:
    from botkiln.infra.redis_keys import RuntimeKeys
    from botkiln.workers.execute import ChatReady

    keys = RuntimeKeys(prefix)
    ready = ChatReady(rig.redis, broker, prefix=prefix)

    async def messages() -> int:
        return int(await rig.redis.hlen(f"{namespace}:runtime.msgs"))

    # Nobody lingers: the token alone would wait, so a message goes out
    before = await messages()
    assert await ready.notify() is True
    assert await messages() == before + 1
    await rig.redis.delete(keys.wake)
    # A registration past its deadline does not count
    await rig.redis.zadd(keys.lingering, {"dead:1": 0})
    assert await ready.notify() is True
    assert await rig.redis.zcard(keys.lingering) == 0  # and is swept
    await rig.redis.delete(keys.wake)

    # When a drain lingers, an update's notification is its token alone, and the drain handles the update
    rig.executor.options = dataclasses.replace(rig.executor.options, linger_s=5.0, drain_budget_s=3.0)
    open_chats(rig.standin, rig.token, [91])
    drain = asyncio.create_task(rig.executor.drain())
    try:
        for _ in range(200):
            if await rig.redis.zcard(keys.lingering) == 1:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the drain did not register as lingering")
        sent = await messages()
        await rig.push(91, "/start")
        assert await ready.notify() is False
        for _ in range(300):
            if len(rig.texts(91)) == 2:
                break
            await asyncio.sleep(0.01)
        assert rig.texts(91) == ["Hello", "Hello: your name?"]
        assert await messages() == sent
        # Two chats ready at once with one drain lingering: the second notification sends a message
        await rig.redis.delete(keys.wake)
        await rig.redis.zadd(keys.lingering, {"other:1": 10**13})
        await rig.redis.lpush(keys.wake, b"1")  # a token already waiting for that one drain
        assert await ready.notify() is True
    finally:
        drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drain
        await rig.redis.delete(keys.lingering, keys.wake)
