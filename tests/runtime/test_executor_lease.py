"""Two races around the executor's chat lease, found with the real processes of ``test_scale_faults.py``.

1. **A holder stalled past its lease must not send.** Pausing a real worker with SIGSTOP for 3 s during
   traffic once gave one chat ``[.., 7, 8, 5, 9, ..]``: update 5's reply a second time, after update 8's.
   ``OutboundSender.send(fence=)`` can renew the chat lease right before every Bot API call (a holder
   that lost its lease then sends nothing more); the executor does not pass it yet: with it, replies
   stalled under 429 storms in ``test_scale_faults.py`` (not yet understood), so this stays an xfail.
   Here, deterministically: executor A holds update 1's lease, has committed its effects, then
   stalls on its way to Telegram (a GC pause, CPU starvation, SIGSTOP) until executor B, on a thread of
   its own, has taken the expired lease and answered updates 1 and 2. A resumes: its fence finds the lease
   gone and Telegram never gets update 1's message twice. What no fence can close (the Bot API has no
   idempotency key) is a stall longer than a whole lease between that renewal and the request itself.

2. **A renewal after the ack cancels the rest of the update.** Under heavy CPU load the 10 000-update
   test and the storm test ended with every reply delivered but an update's effects
   (``<p>:fx:<botId>:<updateId>``) left in Redis, and workers logged "lost the lease ... mid-update".
   The ack ends the lease; if the keeper's next renewal comes before ``forget`` (and the analytics
   rows) are done, it finds no lease, cancels the update, and ``handle`` reports ``lost``: the effects
   stay for an hour and the update's ``message_sent`` / ``update_processed`` rows are never published.
   Here a ``forget`` slower than a renewal period makes the keeper's tick fall in that window.
"""

from __future__ import annotations

import asyncio
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
from botkiln.infra.chat_state import RedisChatState
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


@pytest.mark.xfail(
    strict=True,
    reason="the executor does not fence its sends yet: a lease renewal as OutboundSender's fence fixes this race "
    "but made replies stall under 429 storms (test_scale_faults); race 1 of this module's docstring",
)
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

    async def keeper_behind(*args: Any) -> bool:
        await asyncio.Event().wait()  # A's renewal has not come round yet when its call goes out (see above)
        return False

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


async def test_a_renewal_after_the_ack_does_not_cancel_forgetting_the_effects(
    settings: Settings, prefix: str, pool: Pool, store: FsArtifactStore, owner: tuple[UUID, UUID],
    standin: BotApiStandIn, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # Given one queued update, and a forget() that takes longer than the keeper's renewal period
    bot = await create_echo_bot(pool, store, owner, standin, [CHAT])
    rt, executor = await _executor(settings, prefix)
    queue = RedisChatQueue(rt.redis, prefix=prefix)
    update = plan([CHAT], 1)[CHAT][0]
    await queue.enqueue(bot.bot_id, CHAT, update.update_id, update.body)
    real_forget = RedisChatState.forget

    async def slow_forget(self: RedisChatState, bot_id: str, update_id: int) -> None:
        await asyncio.sleep(LEASE_MS / 1000 / 3 * 1.5)  # a slow DEL under load: the keeper ticks meanwhile
        await real_forget(self, bot_id, update_id)

    monkeypatch.setattr(RedisChatState, "forget", slow_forget)
    try:
        # When the executor handles it
        claim = await queue.claim("executor", LEASE_MS)
        assert claim is not None
        handled = await executor.handle(claim)
        effects = await executor.states.effects(bot.bot_id, update.update_id)
    finally:
        await rt.aclose()
    # Then it is answered once, done, and its effects are forgotten
    assert [r.text for r in replies(bot)] == [f"old|old|1|{CHAT}:1"]
    assert (handled.outcome, effects) == ("done", None)
