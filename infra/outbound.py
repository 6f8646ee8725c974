"""The outbound sender: an update's Bot API actions, in order, within Telegram's limits, at most once each.

Invariants (docs/outbound.md has the reasoning and the Redis layout):

- every metered call is admitted by ``OutboundLimiter`` first: one Lua script
  (``infra/lua/outbound_admit.lua``) checks and takes, atomically and for every process, a token from the
  bot's bucket, the chat's bucket and, for a group (chat id < 0), the group's bucket, and refuses while the
  bot is blocked after a 429; the refusal is a wait in ms, computed on the Redis clock (``TIME``);
- the actions of one ``send`` go out strictly in list order, one at a time;
- ``BotApiRetryAfter`` blocks the whole bot (every process) for ``retry_after`` and the same action is retried;
  5xx answers and network failures are retried with exponential backoff up to ``RetryPolicy.attempts``;
  other refusals (400, 401, 404, …) are permanent: the action is dead-lettered at once and the next one sent;
- 403 (blocked by the user, kicked from the group) stops this update's sending to the chat; the report says so;
- an action that is not delivered is appended to ``dlq:out:<botId>`` (JSON, no token) and can be replayed;
- with a ``fence`` (the executor passes a renewal of its chat lease), each call is preceded by it: a sender
  whose claim was lost sends nothing more, and a renewed lease keeps the next holder out for a whole lease,
  so a stale send needs a stall longer than the lease between the fence and the request;
- action ``i`` of ``dedup_key`` is sent at most once: a marker is set after Telegram's OK and checked before
  sending. A crash between Telegram's OK and the marker can still send that one action twice; a retried
  network failure can too when Telegram had in fact received the call (no idempotency keys in the Bot API).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from opentelemetry.trace import SpanKind
from redis.asyncio import Redis

from botkiln.infra.lua_scripts import lua_script
from botkiln.infra.metrics import OUTBOUND_RETRY_AFTER_SECONDS, OUTBOUND_SENDS
from botkiln.infra.ports import BotApi
from botkiln.infra.redis_keys import PREFIX, OutboundKeys
from botkiln.infra.telegram_api import BotApiError, BotApiForbidden, BotApiRetryAfter, BotApiUnreachable
from botkiln.infra.tracing import start_span
from botkiln.interpreter.types import Action

__all__ = [
    "ActionResult", "BotApiCaller", "DeadAction", "OutboundLimiter", "OutboundRates", "OutboundSender", "RetryPolicy",
    "SendReport",
]  # fmt: skip

SENT_TTL_S = 24 * 3600
"""How long a sent action is remembered for its ``dedup_key``."""

UNMETERED = frozenset({"answerCallbackQuery"})
"""Methods that take no token (Telegram does not count them); the bot-wide block still applies."""

Status = Literal["sent", "duplicate", "dead_lettered", "forbidden", "fenced", "skipped"]
Sleep = Callable[[float], Awaitable[None]]
Fence = Callable[[], Awaitable[bool]]
"""Called right before each Bot API call; False stops the update's sending (``fenced``): its owner changed."""


BotApiCaller = BotApi
"""The Bot API as the sender calls it (``infra.ports.BotApi``)."""


@dataclass(frozen=True)
class OutboundRates:
    """Token buckets (rate per second, burst = capacity); the defaults stay inside Telegram's published limits."""

    bot_per_s: float = 30.0
    bot_burst: int = 10
    chat_per_s: float = 1.0
    chat_burst: int = 3
    group_per_min: float = 20.0
    group_burst: int = 5

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[str, float]]) -> OutboundRates:
        """Rates from ``(field, value)`` pairs (``Settings.outbound_rates``); bursts are whole tokens."""
        values: dict[str, Any] = {name: int(v) if name.endswith("_burst") else float(v) for name, v in pairs}
        return cls(**values)

    def __post_init__(self) -> None:
        for name in ("bot_per_s", "bot_burst", "chat_per_s", "chat_burst", "group_per_min", "group_burst"):
            if getattr(self, name) <= 0:
                raise ValueError(f"OutboundRates.{name} must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of 5xx and network failures: ``attempts`` in all, waiting ``first_delay_s`` × ``factor``ⁿ between.

    ``max_flood_waits`` bounds how many 429s one action may receive before it is dead-lettered.
    """

    attempts: int = 5
    first_delay_s: float = 0.5
    factor: float = 2.0
    max_delay_s: float = 30.0
    max_flood_waits: int = 20

    def delay(self, failures: int) -> float:
        """The wait after the ``failures``-th failure (1-based)."""
        return float(min(self.max_delay_s, self.first_delay_s * self.factor ** (failures - 1)))


@dataclass(frozen=True)
class ActionResult:
    """What became of one action: its Telegram ``result`` when sent, else the error."""

    index: int
    status: Status
    attempts: int = 0
    result: Any = None
    error: str | None = None


@dataclass(frozen=True)
class SendReport:
    """What ``send`` (or ``replay``) did, one ``ActionResult`` per action in order."""

    bot_id: str
    chat_id: int
    dedup_key: str
    results: tuple[ActionResult, ...]

    def count(self, status: Status) -> int:
        """How many actions ended with ``status``."""
        return sum(1 for r in self.results if r.status == status)

    @property
    def delivered(self) -> bool:
        """Every action reached Telegram (now or by an earlier call with the same ``dedup_key``)."""
        return all(r.status in ("sent", "duplicate") for r in self.results)


@dataclass(frozen=True)
class DeadAction:
    """One entry of ``dlq:out:<botId>``; ``raw`` is the stored JSON (the entry's identity for removal)."""

    bot_id: str
    chat_id: int
    action: Action
    error: str
    error_code: int | None
    attempts: int
    dedup_key: str
    index: int
    at_ms: int
    raw: str = field(repr=False)


class OutboundLimiter:
    """Telegram's flood limits as token buckets in Redis, shared by every process sending for a bot."""

    def __init__(self, redis: Redis, *, prefix: str = PREFIX, rates: OutboundRates | None = None) -> None:
        self.rates = rates or OutboundRates()
        self._keys = OutboundKeys(prefix)
        self._redis = redis
        self._script = lua_script(redis, "outbound_admit")

    def _key_list(self, bot_id: str, chat_id: int) -> list[str]:
        k = self._keys
        group = k.group_bucket(bot_id, chat_id)
        return [k.bot_bucket(bot_id), k.chat_bucket(bot_id, chat_id), group, k.blocked(bot_id)]

    async def admit(self, bot_id: str, chat_id: int, *, metered: bool = True) -> int:
        """0 if one message to ``chat_id`` may go now (its tokens are taken), else the wait in ms before asking."""
        r = self.rates
        args: list[str | int | float] = ["admit", int(metered), int(chat_id < 0), r.bot_per_s, r.bot_burst]
        args += [r.chat_per_s, r.chat_burst, r.group_per_min / 60, r.group_burst]
        return int(await self._script(keys=self._key_list(bot_id, chat_id), args=args))

    async def block(self, bot_id: str, seconds: float) -> None:
        """Refuse every call of ``bot_id`` for ``seconds`` from now (Redis clock); a longer block stands."""
        await self._script(keys=self._key_list(bot_id, 0), args=["block", max(1, round(seconds * 1000))])


class OutboundSender:
    """Sends the actions of updates through ``api(token)``, admitted by ``limiter``; dead letters in Redis.

    ``sleep`` is awaited for every limiter wait and retry backoff (tests may pass their own).
    """

    def __init__(
        self,
        redis: Redis,
        limiter: OutboundLimiter,
        api: Callable[[str], BotApiCaller],
        *,
        prefix: str = PREFIX,
        retry: RetryPolicy | None = None,
        sent_ttl_s: int = SENT_TTL_S,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._redis = redis
        self._limiter = limiter
        self._api = api
        self._keys = OutboundKeys(prefix)
        self._retry = retry or RetryPolicy()
        self._sent_ttl_s = sent_ttl_s
        self._sleep = sleep

    async def send(
        self,
        bot_id: str,
        token: str,
        chat_id: int,
        actions: Sequence[Action],
        *,
        dedup_key: str,
        fence: Fence | None = None,
    ) -> SendReport:
        """Send ``actions`` (one update's) in order; see the module docstring for retries, 403 and dead letters."""
        api = self._api(token)
        results: list[ActionResult] = []
        stopped = False
        for index, action in enumerate(actions):
            if stopped:
                results.append(ActionResult(index, "skipped"))
                continue
            result = await self._settle(api, bot_id, chat_id, action, dedup_key, index, fence=fence)
            stopped = result.status in ("forbidden", "fenced")
            results.append(result)
        return SendReport(bot_id, chat_id, dedup_key, tuple(results))

    async def dead_letters(self, bot_id: str) -> list[DeadAction]:
        """The bot's dead-lettered actions, oldest first."""
        raw = await self._redis.lrange(self._keys.dlq_out(bot_id), 0, -1)
        return [_dead_action(_text(entry)) for entry in raw]

    async def replay(self, bot_id: str, token: str, which: int | Literal["all"] = "all") -> list[SendReport]:
        """Send dead-lettered actions again (entry ``which`` or all, oldest first); a delivered one leaves the list.

        An action already marked sent for its ``dedup_key`` is not sent again (it only leaves the list).
        """
        entries = await self.dead_letters(bot_id)
        chosen = entries if which == "all" else [entries[which]]
        api = self._api(token)
        reports = []
        for dead in chosen:
            result = await self._settle(api, bot_id, dead.chat_id, dead.action, dead.dedup_key, dead.index, dead)
            if result.status in ("sent", "duplicate"):
                await self._redis.lrem(self._keys.dlq_out(bot_id), 1, dead.raw)
            reports.append(SendReport(bot_id, dead.chat_id, dead.dedup_key, (result,)))
        return reports

    async def _settle(
        self,
        api: BotApiCaller,
        bot_id: str,
        chat_id: int,
        action: Action,
        dedup_key: str,
        index: int,
        replaying: DeadAction | None = None,
        *,
        fence: Fence | None = None,
    ) -> ActionResult:
        marker_key = self._keys.sent(bot_id, dedup_key, index)
        marker = await self._redis.get(marker_key)
        if marker is not None:
            seen = json.loads(_text(marker))
            if seen["s"] == "sent":
                OUTBOUND_SENDS.labels("duplicate").inc()
                return ActionResult(index, "duplicate", result=seen.get("r"))
            if replaying is None:
                return ActionResult(index, "dead_lettered", error="dead-lettered by an earlier send")
        attempts = floods = 0
        while True:
            await self._wait_turn(bot_id, chat_id, action["method"] not in UNMETERED)
            if fence is not None and not await fence():
                return ActionResult(index, "fenced", attempts, error="the update's claim was lost")
            attempts += 1
            try:
                with start_span(f"telegram.{action['method']}", {"botkiln.bot": bot_id}, kind=SpanKind.CLIENT):
                    result = await api.call(action["method"], dict(action["params"]))
            except BotApiRetryAfter as exc:
                OUTBOUND_SENDS.labels("rate_limited").inc()
                OUTBOUND_RETRY_AFTER_SECONDS.inc(exc.retry_after)
                floods += 1
                await self._limiter.block(bot_id, exc.retry_after)
                if floods <= self._retry.max_flood_waits:
                    attempts -= 1
                    continue
                error: BotApiError = exc
            except BotApiForbidden as exc:
                OUTBOUND_SENDS.labels("forbidden").inc()
                return ActionResult(index, "forbidden", attempts, error=str(exc))
            except BotApiError as exc:
                transient = isinstance(exc, BotApiUnreachable) or (exc.error_code or 0) >= 500
                if transient and attempts < self._retry.attempts:
                    OUTBOUND_SENDS.labels("retried").inc()
                    await self._sleep(self._retry.delay(attempts))
                    continue
                error = exc
            else:
                value = json.dumps({"s": "sent", "r": result}, separators=(",", ":"))
                await self._redis.set(marker_key, value, ex=self._sent_ttl_s)
                OUTBOUND_SENDS.labels("sent").inc()
                return ActionResult(index, "sent", attempts, result=result)
            if replaying is None:
                await self._dead_letter(bot_id, chat_id, action, dedup_key, index, error, attempts)
                dead = json.dumps({"s": "dead"})
                await self._redis.set(marker_key, dead, ex=self._sent_ttl_s, nx=True)
            OUTBOUND_SENDS.labels("dead_lettered").inc()
            return ActionResult(index, "dead_lettered", attempts, error=str(error))

    async def _wait_turn(self, bot_id: str, chat_id: int, metered: bool) -> None:
        while wait_ms := await self._limiter.admit(bot_id, chat_id, metered=metered):
            await self._sleep(wait_ms / 1000)

    async def _dead_letter(
        self, bot_id: str, chat_id: int, action: Action, dedup_key: str, index: int, error: BotApiError, attempts: int
    ) -> None:
        entry = {
            "bot": bot_id, "chat": chat_id, "action": action, "error": str(error), "errorCode": error.error_code,
            "attempts": attempts, "dedupKey": dedup_key, "index": index, "at": int(time.time() * 1000),
        }  # fmt: skip
        await self._redis.rpush(self._keys.dlq_out(bot_id), json.dumps(entry, separators=(",", ":")))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _dead_action(raw: str) -> DeadAction:
    entry = json.loads(raw)
    return DeadAction(
        bot_id=entry["bot"], chat_id=entry["chat"], action=entry["action"], error=entry["error"],
        error_code=entry["errorCode"], attempts=entry["attempts"], dedup_key=entry["dedupKey"],
        index=entry["index"], at_ms=entry["at"], raw=raw,
    )  # fmt: skip
