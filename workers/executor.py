"""The executor: drains chat queues, runs each update on its bot's active revision, sends the result.

Per claimed update (docs/runtime.md has the sequence and the crash analysis):

1. if the update's *effects* were committed by an earlier delivery, skip to 4;
2. run ``host.handle_update`` on the bot's active revision (one ``ActiveBot`` value, so one
   revision for the whole update) in a warm QuickJS sandbox, apiCalls through ``HttpApi``
   (allow-list, JSON only, deadline, retries, size cap, at most two per update), off the
   event loop; a failure of the bot's code dead-letters the update to ``dlq:in:<botId>``
   with the reason and the chat moves on;
3. commit the new state and the actions in one script, fenced by the chat lease;
4. hand the actions to the ``OutboundSender`` with ``dedup_key = <botId>:<updateId>`` (each
   action index is sent at most once), then acknowledge and forget the effects (one script).

The chat lease is renewed every third of its length while the update is handled, and once more
right before each Bot API call (the send fence). Losing it is checked cooperatively, never by
cancelling: the commit and the ack are fenced by the lease token in Redis, and a sender whose lease
is gone sends nothing more. (Cancelling a task in the middle of a Redis command is what stalled
updates under 429 storms: in Python 3.11 such a cancellation can be absorbed on its way out of
redis-py, and the keeper being stopped then renewed the lease forever while the update waited for it.)
Analytics rows are published best effort: a failure is logged, never fails the update.

``drain`` claims chat after chat until none is ready, then lingers on the wake list for
``linger_s`` (the ingress pushes a token when a chat becomes ready) before returning. While it
lingers it is registered in ``rt:lingering``, so the ingress knows a token will be taken and sends
no Dramatiq message for it (workers/execute.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from opentelemetry.trace import SpanKind
from redis.asyncio import Redis

from botkiln.infra.analytics import EventRow, UpdateRef, host_row, rows_from_telemetry, update_ref
from botkiln.infra.chat_queue import RedisChatQueue
from botkiln.infra.chat_state import RedisChatState
from botkiln.infra.http_api import HttpApi
from botkiln.infra.logs import log_context, set_log_context
from botkiln.infra.lua_scripts import lua_script
from botkiln.infra.metrics import EXECUTOR_SECONDS, UPDATES, TimedApi, timed_engine
from botkiln.infra.outbound import OutboundSender, SendReport
from botkiln.infra.ports import Claim, Effects
from botkiln.infra.redis_keys import RuntimeKeys
from botkiln.infra.routing import ERROR_EVENTS, Choice, Route, RouteStore, choose, newest, next_affinity
from botkiln.infra.tracing import start_span
from botkiln.interpreter.host import ApiPerformer, UpdateResult, handle_update
from botkiln.interpreter.quickjs import PooledEngine, SandboxPool
from botkiln.interpreter.types import State
from botkiln.workers.active import ActiveBot, ActiveBots, Inactive

_log = logging.getLogger(__name__)

Outcome = Literal["done", "dead_lettered", "lost"]

MAX_REASON = 500
"""Characters of a dead letter's reason."""


ApiFactory = Callable[[ActiveBot], ApiPerformer]
"""Who performs a bot's apiCalls: real HTTP by default; the embedded platform answers examples from fixtures."""


class RowPublisher(Protocol):
    """Where analytics rows go (``infra/analytics_relay.AnalyticsRelay``)."""

    async def publish(self, rows: Sequence[EventRow]) -> None:
        """Queue ``rows`` for the analytics store."""
        ...


@dataclass(frozen=True)
class ExecutorOptions:
    """Timing of the executors (defaults suit production; tests shorten them)."""

    lease_ms: int = 15_000
    """A claimed chat's lease; a dead executor's update is re-delivered this long after it stopped renewing."""
    drain_budget_s: float = 10.0
    """One ``drain`` call's time before it hands the rest to a fresh message."""
    linger_s: float = 1.0
    """How long an idle ``drain`` waits for a wake token before returning."""
    private_api_ok: bool = False
    """Allow apiCalls to loopback/private addresses (embedded mode and tests only)."""


@dataclass(frozen=True)
class Drained:
    """What one ``drain`` did; ``more`` when it stopped for its budget (work may be left)."""

    handled: int
    more: bool


@dataclass(frozen=True)
class Handled:
    """What one update came to (tests and the benchmark read it)."""

    outcome: Outcome
    report: SendReport | None = None
    reason: str = ""


class Executor:
    """One process's executor (see the module docstring)."""

    def __init__(
        self,
        *,
        redis: Redis,
        queue: RedisChatQueue,
        states: RedisChatState,
        bots: ActiveBots,
        sandboxes: SandboxPool,
        sender: OutboundSender,
        chat_key: bytes,
        consumer_id: str,
        analytics: RowPublisher | None = None,
        prefix: str,
        options: ExecutorOptions | None = None,
        api: ApiFactory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self.queue = queue
        self.states = states
        self.bots = bots
        self._sandboxes = sandboxes
        self._sender = sender
        self._chat_key = chat_key
        self._consumer_id = consumer_id
        self._analytics = analytics
        self._keys = RuntimeKeys(prefix)
        self._routes = RouteStore(redis, prefix=prefix)
        self.options = options or ExecutorOptions()
        self._api = api or self._http_api
        self._http_apis: dict[str, HttpApi] = {}
        self._clock = clock
        self._lingers = 0
        self._register_linger = lua_script(redis, "linger")

    async def drain(self) -> Drained:
        """Handle updates until no chat is ready for ``linger_s`` or the budget is spent."""
        o = self.options
        deadline = time.monotonic() + o.drain_budget_s
        handled = 0
        while time.monotonic() < deadline:
            claim = await self.queue.claim(self._consumer_id, o.lease_ms)
            if claim is None:
                wait = min(o.linger_s, deadline - time.monotonic())
                if wait <= 0 or not await self._linger(wait):
                    return Drained(handled, more=False)
                continue
            await self.handle(claim)
            handled += 1
        return Drained(handled, more=True)

    async def _linger(self, wait_s: float) -> bool:
        """Wait up to ``wait_s`` for a wake token, registered as lingering meanwhile; True if one came.

        The registration tells the ingress that this drain will take the next token, so it sends no
        execute message (workers/execute.py ChatReady). A drain that dies leaves it to expire.
        """
        self._lingers += 1
        member = f"{self._consumer_id}:{self._lingers}"
        await self._register_linger(keys=[self._keys.lingering], args=[member, max(1, int(wait_s * 1000))])
        token = await self._redis.blpop([self._keys.wake], timeout=max(wait_s, 0.01))
        await self._redis.zrem(self._keys.lingering, member)
        return token is not None

    async def handle(self, claim: Claim) -> Handled:
        """Process one claimed update, keeping its lease alive; ``lost`` if the lease was lost meanwhile.

        When this is cancelled (shutdown) the lease runs out and the update is re-delivered.
        """
        started = time.monotonic()
        EXECUTOR_SECONDS.labels("queue_wait").observe(max(0.0, time.time() - claim.enqueued_ms / 1000))
        attributes: dict[str, str | int] = {"botkiln.bot": claim.bot_id, "botkiln.update": claim.update_id}
        lease = _Lease(self.queue, claim, self.options.lease_ms)
        with (
            log_context(bot=claim.bot_id, chat=claim.chat_id, update=claim.update_id),
            start_span("update", attributes, kind=SpanKind.CONSUMER, parent=claim.traceparent),
        ):
            lease.start()
            try:
                handled = await self._handle(claim, lease)
            finally:
                await lease.stop()
        UPDATES.labels(handled.outcome).inc()
        EXECUTOR_SECONDS.labels("total").observe(time.monotonic() - started)
        if handled.outcome == "lost":
            _log.warning("executor: lost the lease of %s:%s (%s)", claim.bot_id, claim.chat_id, handled.reason)
        return handled

    async def _handle(self, claim: Claim, lease: _Lease) -> Handled:
        now_ms = int(self._clock() * 1000)
        bot = await self.bots.get(claim.bot_id)
        if isinstance(bot, Inactive):
            return await self._dead_letter(claim, lease, None, f"not run: {bot.reason}")
        begun = await self.states.begin(
            claim.bot_id, claim.chat_id, claim.update_id, route_key=self._routes.key(claim.bot_id)
        )
        route = await self._route(bot, begun.route)
        choice = None
        if begun.effects is None and route is not None:
            choice = choose(route, claim.bot_id, claim.chat_id, begun.state, begun.affinity, now_ms)
            if choice.rev is not None and choice.rev != bot.rev_hash:
                bot = await self.bots.at_revision(bot, choice.rev)
        elif begun.effects is not None:
            bot = await self.bots.at_revision(bot, begun.effects.rev_hash)  # the revision that produced them
        set_log_context(revision=bot.rev_hash)
        ref = update_ref(
            self._chat_key, bot_id=claim.bot_id, rev_hash=bot.rev_hash, chat_id=claim.chat_id,
            update_id=claim.update_id, now_ms=now_ms,
        )  # fmt: skip
        effects = begun.effects
        rows: list[EventRow] = []  # published once, after the ack (one stream write per update)
        if effects is None:
            try:
                result = await asyncio.to_thread(self._run, bot, claim, begun.state, now_ms)
            except Exception as exc:  # the bot's code (or its output) failed: the chat moves on
                reason = f"bot code failed: {type(exc).__name__}: {exc}"
                return await self._dead_letter(claim, lease, ref, reason, choice=choice)
            effects = Effects(bot.rev_hash, result.actions)
            affinity = next_affinity(begun.affinity, bot.rev_hash, result.state, now_ms)
            if lease.lost or not await self.states.commit(
                claim, result.state, effects, ttl_s=bot.state_ttl_s, affinity=affinity
            ):
                return Handled("lost", reason="lease lost before commit")
            rows = rows_from_telemetry(ref, result.events)
        report = await self._sender.send(
            claim.bot_id, bot.token, claim.chat_id, effects.actions, dedup_key=f"{claim.bot_id}:{claim.update_id}",
            fence=lease.renew,
        )  # fmt: skip
        if report.count("fenced"):  # the next holder finishes the sending; the engine will not run again
            await self._publish(rows)
            return Handled("lost", report, "lease lost while sending")
        await lease.stop()  # the ack ends the lease: no renewal may run after it
        forget = [self.states.effects_key(claim.bot_id, claim.update_id)]  # deleted with the ack, in one step
        if not await self.queue.ack(claim, forget=forget):
            await self._publish(rows)  # the engine ran and committed: a redelivery will not emit these again
            return Handled("lost", report, "lease lost before ack")
        # Latency from the webhook (the enqueue time, Redis clock) to the end of sending.
        latency_ms = max(0.0, time.time() * 1000 - claim.enqueued_ms)
        sent_rows = self._send_rows(ref, report, latency_ms)
        await self._publish([*rows, *sent_rows])
        if choice is not None:
            await self._count(claim, choice, bot.rev_hash, [*rows, *sent_rows], dead=False)
        return Handled("done", report)

    async def _route(self, bot: ActiveBot, stored: Route | None) -> Route | None:
        """The newer of the Redis route and this node's PostgreSQL view; an older Redis copy is repaired."""
        route = newest(stored, bot.route)
        if route is not None and route is not stored:
            try:
                await self._routes.publish(bot.bot_id, route)
            except Exception as exc:  # the next update repairs it
                _log.warning("executor: route of %s not repaired (%s)", bot.bot_id, type(exc).__name__)
        return route

    async def _count(self, claim: Claim, choice: Choice, ran: str, rows: list[EventRow], *, dead: bool) -> None:
        """Count the update in its live rollout's comparison (best effort, like analytics)."""
        if choice.rollout_id is None:
            return
        error = dead or any(row.type in ERROR_EVENTS for row in rows)
        try:
            await self._routes.count(choice.rollout_id, ran, claim.chat_id, error=error, dead=dead)
        except Exception as exc:
            _log.warning("executor: rollout counters not updated (%s)", type(exc).__name__)

    def _run(self, bot: ActiveBot, claim: Claim, state: State | None, now_ms: int) -> UpdateResult:
        update: Any = json.loads(claim.payload)
        engine = timed_engine(PooledEngine(self._sandboxes, bot.rev_hash, bot.source))
        return handle_update(
            engine, bot.spec, update, state, now=now_ms, api=TimedApi(self._api(bot)), bot_username=bot.username,
            revision=bot.rev_hash,
        )  # fmt: skip

    def _http_api(self, bot: ActiveBot) -> ApiPerformer:
        # One performer per revision and set of secrets (its allow-list is the revision's, its
        # header values the bot's secrets): building one costs ~0.5 ms.
        key = f"{bot.rev_hash}:{bot.secrets_version}"
        api = self._http_apis.get(key)
        if api is None:
            api = HttpApi.for_spec(bot.spec, secrets=bot.secrets, private_ok=self.options.private_api_ok)
            if len(self._http_apis) >= 256:
                self._http_apis.clear()
            self._http_apis[key] = api
        return api

    async def _dead_letter(
        self, claim: Claim, lease: _Lease, ref: UpdateRef | None, reason: str, *, choice: Choice | None = None
    ) -> Handled:
        reason = reason[:MAX_REASON]
        _log.warning("executor: update %s of %s dead-lettered: %s", claim.update_id, claim.bot_id, reason)
        await lease.stop()
        forget = [self.states.effects_key(claim.bot_id, claim.update_id)]
        if not await self.queue.dead_letter(claim, reason, forget=forget):
            return Handled("lost", reason="lease lost before dead-lettering")
        if ref is not None:
            row = host_row(ref, "executor_error", error=reason)
            await self._publish([row])
            if choice is not None:
                await self._count(claim, choice, ref.rev_hash, [row], dead=True)
        return Handled("dead_lettered", reason=reason)

    def _send_rows(self, ref: UpdateRef, report: SendReport, latency_ms: float) -> list[EventRow]:
        at = datetime.now(UTC)
        rows = []
        for result in report.results:
            if result.status == "sent":
                rows.append(host_row(ref, "message_sent", latency_ms=latency_ms, at=at))
            elif result.status in ("dead_lettered", "forbidden"):
                rows.append(host_row(ref, "send_failed", error=result.error or result.status, at=at))
        rows.append(host_row(ref, "update_processed", latency_ms=latency_ms, at=at))
        return rows

    async def _publish(self, rows: list[EventRow]) -> None:
        if self._analytics is None or not rows:
            return
        try:
            await self._analytics.publish(rows)
        except Exception as exc:  # analytics never fails an update
            _log.warning("executor: analytics rows dropped (%s: %s)", type(exc).__name__, exc)


class _Lease:
    """A claim's lease while its update is handled: renewed every third of it, and on demand (the send fence).

    ``lost`` is set when a renewal finds the lease gone; the handler checks it (nothing is cancelled).
    ``stop`` never interrupts a renewal in flight: it lets it finish, then the keeper ends.
    """

    def __init__(self, queue: RedisChatQueue, claim: Claim, lease_ms: int) -> None:
        self._queue, self._claim, self._lease_ms = queue, claim, lease_ms
        self.lost = False
        self._keeper: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        """Start renewing in the background."""
        self._keeper = asyncio.create_task(self._keep())

    async def renew(self) -> bool:
        """Extend the lease to a full period from now; False (and ``lost``) if it is gone."""
        if not self.lost and not await self._queue.renew(self._claim, self._lease_ms):
            self.lost = True
        return not self.lost

    async def stop(self) -> None:
        """Stop renewing (before settling the claim: the ack ends the lease); waits for a renewal in flight."""
        keeper, self._keeper = self._keeper, None
        if keeper is None:
            return
        self._stopping.set()
        done, _ = await asyncio.wait({keeper}, timeout=self._lease_ms / 1000)
        if not done:  # Redis is not answering: leave the keeper behind (its renewal is fenced anyway)
            _log.warning("executor: a lease renewal of %s:%s did not finish", self._claim.bot_id, self._claim.chat_id)
            keeper.cancel()

    async def _keep(self) -> None:
        period = self._lease_ms / 3000
        while not self.lost:
            # Wait for the period or for stop(), without ever cancelling a Redis call.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), period)
            if self._stopping.is_set():
                return
            try:
                await self.renew()
            except Exception as exc:  # Redis trouble: keep going, the commit and ack are fenced anyway
                _log.warning("executor: lease renewal failed (%s)", type(exc).__name__)
