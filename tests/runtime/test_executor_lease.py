"""Two races around the executor's chat lease, found with the real processes of ``test_scale_faults.py``.

1. **A holder stalled past its lease must not send.** Pausing a real worker with SIGSTOP for 3 s during
   traffic once gave one chat ``[.., 7, 8, 5, 9, ..]``: update 5's reply a second time, after update 8's.
   The executor passes a renewal of the chat lease as ``OutboundSender.send(fence=)``: right before
   every Bot API call the lease is extended, and a holder that lost it sends nothing more.
   Here, deterministically: executor A holds update 1's lease, has committed its effects, then
   stalls on its way to Telegram (a GC pause, CPU starvation, SIGSTOP) until executor B, on a thread of
   its own, has taken the expired lease and answered updates 1 and 2. A resumes: its fence finds the lease
   gone and Telegram never gets update 1's message twice. What no fence can close (the Bot API has no
   idempotency key) is a stall longer than a whole lease between that renewal and the request itself.

2. **A renewal after the ack cancels the rest of the update.** Under heavy CPU load the 10 000-update
   test and the storm test ended with every reply delivered but an update's effects
   (``<p>:fx:<botId>:<updateId>``) left in Redis, and workers logged "lost the lease ... mid-update".
   The ack ends the lease; if the keeper's next renewal came before ``forget`` (and the analytics
   rows) were done, it found no lease, cancelled the update, and ``handle`` reported ``lost``: the effects
   stayed for an hour and the update's ``message_sent`` / ``update_processed`` rows were never published.
   The ack now deletes the effects in the same script; here analytics rows slower to publish than a
   renewal period make the keeper's tick fall in the window after the ack.

3. **A keeper stopped mid-renewal.** The first fix of race 2 cancelled the keeper task; cancelling a task
   in the middle of a redis-py command can be absorbed on Python 3.11, and the keeper then renewed the
   lease forever while the update waited for it to end (a few chats stalled under 429 storms). The keeper
   is now stopped cooperatively: ``stop`` lets a renewal in flight finish and no renewal starts after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from botkiln.infra.analytics import EventRow
from botkiln.infra.artifacts_fs import FsArtifactStore
from botkiln.infra.chat_queue import RedisChatQueue
from botkiln.infra.db import Pool
from botkiln.infra.outbound import OutboundSender
from botkiln.infra.settings import Settings
from botkiln.infra.telegram_standin import BotApiStandIn
from botkiln.workers import WorkerOptions
from botkiln.workers import executor as executor_module
from botkiln.workers.executor import Executor, ExecutorOptions
from botkiln.workers.runtime import Runtime, build_executor, open_runtime
from tests.runtime.conftest import OUTBOUND_RATES
from tests.runtime.echo import create_echo_bot, plan, replies
from tests.services import delete_keys
from tests.workers.support import SECRET_KEY

pytestmark = pytest.mark.anyio

LEASE_MS = 600
CHAT = 77


class _Discard:
    """Analytics rows go nowhere."""

    async def publish(self, rows: Sequence[EventRow]) -> None:
        return None


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    value = f"test-fence-{secrets.token_hex(5)}"
    yield value
    delete_keys(redis_url, f"{value}:*")


@pytest.fixture
def settings(database: str, artifacts_dir: Path, redis_url: str, standin: BotApiStandIn) -> Settings:
    rates = tuple((name, float(value)) for name, value in (p.split("=") for p in OUTBOUND_RATES.split(",")))
    return Settings(
        database_url=database, artifacts_url=f"file://{artifacts_dir}", redis_url=redis_url, secret_key=SECRET_KEY,
        telegram_api_url=standin.url, outbound_rates=rates, executor_lease_ms=LEASE_MS,
    )  # fmt: skip


async def _executor(settings: Settings, prefix: str) -> tuple[Runtime, Executor]:
    rt = await open_runtime(settings, WorkerOptions(redis_prefix=prefix, active_ttl_s=60.0))
    assert rt.http is not None
    executor = build_executor(rt, rt.http, analytics=_Discard())
    executor.options = ExecutorOptions(lease_ms=LEASE_MS, drain_budget_s=10.0, linger_s=0.05)
    return rt, executor


async def test_an_executor_stalled_past_its_lease_sends_nothing_after_the_next_holder(
    settings: Settings, prefix: str, pool: Pool, store: FsArtifactStore, owner: tuple[UUID, UUID],
    standin: BotApiStandIn, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # Given updates 1 and 2 of one chat, queued
    bot = await create_echo_bot(pool, store, owner, standin, [CHAT])
    rt_a, executor_a = await _executor(settings, prefix)
    queue = RedisChatQueue(rt_a.redis, prefix=prefix)
    for update in plan([CHAT], 2)[CHAT]:
        await queue.enqueue(bot.bot_id, CHAT, update.update_id, update.body)

    # ... and executor B, which drains on a thread of its own once started
    b_done = threading.Event()
    b_handled: list[int] = []

    def run_b() -> None:
        async def drain() -> None:
            rt_b, executor_b = await _executor(settings, prefix)
            try:
                deadline = time.monotonic() + 15
                while sum(b_handled) < 2 and time.monotonic() < deadline:
                    b_handled.append((await executor_b.drain()).handled)
            finally:
                await rt_b.aclose()

        try:
            asyncio.run(drain())
        finally:
            b_done.set()

    b_thread = threading.Thread(target=run_b, daemon=True)
    real_wait = OutboundSender._wait_turn
    a_thread = threading.get_ident()

    async def stall_a_once(self: OutboundSender, *args: Any) -> None:
        if threading.get_ident() == a_thread and not b_thread.is_alive() and not b_done.is_set():
            b_thread.start()
            b_done.wait(20)  # A's event loop is frozen here: no lease renewal, no cancellation, nothing
        await real_wait(self, *args)

    async def keeper_behind(self: executor_module._Lease) -> None:
        await self._stopping.wait()  # no background renewal: A's has not come round yet when its call goes out

    monkeypatch.setattr(OutboundSender, "_wait_turn", stall_a_once)
    monkeypatch.setattr(executor_module._Lease, "_keep", keeper_behind)
    try:
        # When A handles update 1 and stalls on its way to Telegram, past its lease
        claim = await queue.claim("executor-a", LEASE_MS)
        assert claim is not None
        handled = await executor_a.handle(claim)
        b_thread.join(20)
    finally:
        await rt_a.aclose()
    # Then B answered both updates, A's late acknowledgement is refused ...
    assert sum(b_handled) == 2 and handled.outcome == "lost"
    # ... and the chat got each answer once, in order
    texts = [r.text for r in replies(bot)]
    assert texts == [f"old|old|1|{CHAT}:1", f"old|old|2|{CHAT}:2"]


async def test_a_renewal_after_the_ack_does_not_cancel_the_rest_of_the_update(
    settings: Settings, prefix: str, pool: Pool, store: FsArtifactStore, owner: tuple[UUID, UUID],
    standin: BotApiStandIn, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # Given one queued update, and analytics rows that take longer than the keeper's renewal period to publish
    bot = await create_echo_bot(pool, store, owner, standin, [CHAT])
    rt, executor = await _executor(settings, prefix)
    queue = RedisChatQueue(rt.redis, prefix=prefix)
    update = plan([CHAT], 1)[CHAT][0]
    await queue.enqueue(bot.bot_id, CHAT, update.update_id, update.body)
    published: list[list[Any]] = []

    async def slow_publish(self: Executor, rows: list[Any]) -> None:
        await asyncio.sleep(LEASE_MS / 1000 / 3 * 1.5)  # a slow stream write under load: the keeper ticks meanwhile
        published.append(rows)

    monkeypatch.setattr(Executor, "_publish", slow_publish)
    try:
        # When the executor handles it
        claim = await queue.claim("executor", LEASE_MS)
        assert claim is not None
        handled = await executor.handle(claim)
        effects = await executor.states.effects(bot.bot_id, update.update_id)
    finally:
        await rt.aclose()
    # Then it is answered once, done, its effects are forgotten and its analytics rows published
    assert [r.text for r in replies(bot)] == [f"old|old|1|{CHAT}:1"]
    assert (handled.outcome, effects) == ("done", None)
    assert [row.type for row in published[0] if row.type in ("message_sent", "update_processed")] == [
        "message_sent", "update_processed"
    ]  # fmt: skip


async def test_an_update_does_not_wait_on_a_renewal_in_flight_that_absorbs_a_cancellation(
    settings: Settings, prefix: str, pool: Pool, store: FsArtifactStore, owner: tuple[UUID, UUID],
    standin: BotApiStandIn, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # Given one queued update, and keeper renewals that take half a lease and absorb a cancellation
    # (as a redis-py command cancelled mid-flight can on Python 3.11)
    bot = await create_echo_bot(pool, store, owner, standin, [CHAT])
    rt, executor = await _executor(settings, prefix)
    queue = RedisChatQueue(rt.redis, prefix=prefix)
    update = plan([CHAT], 1)[CHAT][0]
    await queue.enqueue(bot.bot_id, CHAT, update.update_id, update.body)
    real_renew, real_send = RedisChatQueue.renew, OutboundSender.send
    keeper_renewing = asyncio.Event()
    keeper_renewals: list[float] = []

    async def stubborn_renew(self: RedisChatQueue, claim: Any, lease_ms: int) -> bool:
        task = asyncio.current_task()
        if task is not None and task.get_coro().__qualname__.endswith("_keep"):  # type: ignore[union-attr]
            keeper_renewals.append(time.monotonic())
            keeper_renewing.set()
            with contextlib.suppress(asyncio.CancelledError):  # absorbed
                await asyncio.sleep(LEASE_MS / 1000 / 2)
        return await real_renew(self, claim, lease_ms)

    async def send_while_the_keeper_renews(self: OutboundSender, *args: Any, **kwargs: Any) -> Any:
        await keeper_renewing.wait()  # the update ends while a keeper renewal is in flight
        return await real_send(self, *args, **kwargs)

    monkeypatch.setattr(RedisChatQueue, "renew", stubborn_renew)
    monkeypatch.setattr(OutboundSender, "send", send_while_the_keeper_renews)
    try:
        # When the executor handles it
        claim = await queue.claim("executor", LEASE_MS)
        assert claim is not None
        handled = await asyncio.wait_for(executor.handle(claim), 10)
        ended = time.monotonic()
        await asyncio.sleep(LEASE_MS / 1000)
    finally:
        await rt.aclose()
    # Then it is done and answered once, and no keeper renewal started after it ended
    assert handled.outcome == "done"
    assert [r.text for r in replies(bot)] == [f"old|old|1|{CHAT}:1"]
    assert keeper_renewals and max(keeper_renewals) < ended
