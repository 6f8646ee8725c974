"""Webhook ingress: ``POST /wh/{botId}`` turns a Telegram update into an entry of its chat's FIFO.

Invariants (docs/ingress.md has the status table and the reasoning):

- nothing is answered 2xx unless it is durably queued (``RedisChatQueue.enqueue`` returned),
  a duplicate of a queued update, or an update kind that has no chat and is dropped on purpose;
- the secret header is compared in constant time (SHA-256 digests, ``hmac.compare_digest``)
  before the body is read; a bot with an empty stored secret accepts nothing;
- bot lookups are cached in-process for ``cache_ttl_s`` measured from the start of the
  database read, so a deleted bot (or a changed secret) is honoured at most that long after;
- the hot path is two Redis script calls (admission, enqueue) and no database access;
- neither the secret nor the update body is ever logged;
- every answer counts once in ``botkiln_ingress_requests_total{outcome}`` (``Outcome``; a 500 from
  a bug is not counted) and runs in a ``webhook`` span (``infra/tracing.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
from opentelemetry.trace import SpanKind
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from botkiln.infra.chat_queue import RedisChatQueue
from botkiln.infra.crypto import SecretBox
from botkiln.infra.db.bots import decrypt_webhook_secret
from botkiln.infra.db.pool import Db
from botkiln.infra.metrics import INGRESS_REQUESTS
from botkiln.infra.ports import BOT_ID, Enqueued
from botkiln.infra.redis_keys import PREFIX, ChatQueueKeys, ingress_rate
from botkiln.infra.tracing import current_traceparent, start_span
from botkiln.interpreter.events import normalize_update

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 -- a header name, not a secret
MAX_UPDATE_ID = 2**53 - 1
"""Largest ``update_id`` accepted (JSON numbers beyond it lose precision elsewhere)."""

log = logging.getLogger("botkiln.ingress")

Outcome = Literal[
    "accepted", "duplicate", "unauthorized", "unknown_bot", "malformed", "too_large", "rate_limited", "overloaded"
]
"""The ``outcome`` label of an answer: accepted also covers kinds without a chat (200, dropped);
overloaded covers 429 for queue depth and every 503 (Redis or PostgreSQL unavailable)."""

# KEYS[1] rate   string (int), PX = window   <p>:ingress:rate:<botId>   requests admitted or not in this window
# KEYS[2] depth  string (int)                <p>:cq:depth:<botId>       updates queued for the bot (chat queue's)
# ARGV: window ms.  Returns {requests in this window, ms left in it, queue depth}.
# A counter that somehow lost its expiry gets one again, so it can never block a bot for good.
_ADMIT_LUA = """
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl, tonumber(redis.call('GET', KEYS[2]) or '0')}
"""


@dataclass(frozen=True)
class IngressOptions:
    """Limits of the ingress; the defaults are production's."""

    max_body_bytes: int = 1 << 20
    rate_limit: int = 1000
    """Requests per bot per window (all of them: accepted, duplicate, malformed)."""
    rate_window_ms: int = 1000
    max_queue_depth: int = 100_000
    """A bot with this many updates queued gets 429 until its executors catch up."""
    depth_retry_after_s: int = 5
    cache_ttl_s: float = 5.0
    cache_size: int = 10_000


def rate_key(prefix: str, bot_id: str) -> str:
    """The bot's rate-window counter (``infra/redis_keys.py`` owns the layout)."""
    return ingress_rate(bot_id, prefix)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


class SecretCache:
    """bot id -> SHA-256 of its webhook secret, or None for an unknown or deleted bot; TTL and size bounded.

    Concurrent misses for one bot share one database read.
    """

    def __init__(
        self,
        load: Callable[[str], Awaitable[str | None]],
        *,
        ttl_s: float,
        size: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._ttl_s = ttl_s
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[bytes | None, float]] = OrderedDict()
        self._inflight: dict[str, asyncio.Task[bytes | None]] = {}

    async def get(self, bot_id: str) -> bytes | None:
        """The digest of the live bot's secret (None: no such live bot or no secret)."""
        hit = self._entries.get(bot_id)
        if hit is not None and hit[1] > self._clock():
            return hit[0]
        task = self._inflight.get(bot_id)
        if task is None:
            task = asyncio.ensure_future(self._fetch(bot_id))
            self._inflight[bot_id] = task
            task.add_done_callback(lambda _: self._inflight.pop(bot_id, None))
        return await asyncio.shield(task)

    async def _fetch(self, bot_id: str) -> bytes | None:
        started = self._clock()
        secret = await self._load(bot_id)
        value = _digest(secret) if secret else None
        self._entries[bot_id] = (value, started + self._ttl_s)
        self._entries.move_to_end(bot_id)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return value


def _answer(status: int, error: str | None = None, *, retry_after: int | None = None) -> Response:
    headers = None if retry_after is None else {"Retry-After": str(retry_after)}
    return JSONResponse({} if error is None else {"error": error}, status_code=status, headers=headers)


def parse_update(body: bytes) -> tuple[int, int | None] | str:
    """``(update_id, chat_id or None)`` of a webhook body, or why it is malformed."""
    try:
        update = json.loads(body)
    except (ValueError, RecursionError):
        return "body is not JSON"
    if not isinstance(update, dict):
        return "body is not a JSON object"
    update_id = update.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool) or not 0 <= update_id <= MAX_UPDATE_ID:
        return "update_id is missing or not a non-negative integer"
    return update_id, normalize_update(update)["chatId"]


class Ingress:
    """The webhook endpoint's state: the database, the secret box, Redis, the chat queue and the cache."""

    def __init__(
        self,
        db: Db,
        box: SecretBox,
        redis: Redis,
        queue: RedisChatQueue,
        *,
        prefix: str = PREFIX,
        options: IngressOptions | None = None,
        on_ready: Callable[[], Coroutine[Any, Any, object]] | None = None,
    ) -> None:
        self.options = options or IngressOptions()
        self._on_ready = on_ready
        self._notifying: set[asyncio.Task[object]] = set()
        self._redis = redis
        self._queue = queue
        self._prefix = prefix
        self._keys = ChatQueueKeys(prefix)
        self._admit = redis.register_script(_ADMIT_LUA)
        self.secrets = SecretCache(
            lambda bot_id: decrypt_webhook_secret(db, box, bot_id),
            ttl_s=self.options.cache_ttl_s,
            size=self.options.cache_size,
        )

    async def handle(self, request: Request) -> Response:
        """Answer one webhook POST (statuses in docs/ingress.md), counted and traced (``webhook`` span)."""
        bot_id: str = request.path_params["botId"]
        attributes = {"botkiln.bot": bot_id} if BOT_ID.match(bot_id) else {}
        with start_span("webhook", attributes, kind=SpanKind.SERVER) as span:
            response, outcome = await self._handle(request, bot_id)
            span.set_attribute("http.response.status_code", response.status_code)
            span.set_attribute("botkiln.ingress.outcome", outcome)
        INGRESS_REQUESTS.labels(outcome).inc()
        return response

    async def _handle(self, request: Request, bot_id: str) -> tuple[Response, Outcome]:
        request_id = getattr(request.state, "request_id", "-")
        if not BOT_ID.match(bot_id):
            return _answer(404, "no such bot"), "unknown_bot"
        try:
            expected = await self.secrets.get(bot_id)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("ingress %s: bot lookup failed (%s) [%s]", bot_id, type(exc).__name__, request_id)
            return _answer(503, "unavailable", retry_after=1), "overloaded"
        if expected is None:
            return _answer(404, "no such bot"), "unknown_bot"
        presented = request.headers.get(SECRET_HEADER)
        if presented is None or not hmac.compare_digest(_digest(presented), expected):
            log.warning("ingress %s: wrong or missing secret token [%s]", bot_id, request_id)
            return _answer(401, "wrong secret token"), "unauthorized"
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.options.max_body_bytes):
            return _answer(413, "body too large"), "too_large"
        try:
            refusal = await self._admission(bot_id)
        except (RedisError, OSError) as exc:
            log.warning("ingress %s: Redis unavailable (%s) [%s]", bot_id, type(exc).__name__, request_id)
            return _answer(503, "unavailable", retry_after=1), "overloaded"
        if refusal is not None:
            retry_after, outcome = refusal
            return _answer(429, "overloaded", retry_after=retry_after), outcome
        body = await self._read(request)
        if body is None:
            return _answer(413, "body too large"), "too_large"
        parsed = parse_update(body)
        if isinstance(parsed, str):
            log.warning("ingress %s: malformed update, %s (%d bytes) [%s]", bot_id, parsed, len(body), request_id)
            return _answer(400, parsed), "malformed"
        update_id, chat_id = parsed
        if chat_id is None:
            log.debug("ingress %s: update %d has no chat, dropped", bot_id, update_id)
            return _answer(200), "accepted"
        try:
            queued = await self._queue.enqueue(bot_id, chat_id, update_id, body, traceparent=current_traceparent())
        except (RedisError, OSError) as exc:
            log.warning("ingress %s: enqueue failed (%s) [%s]", bot_id, type(exc).__name__, request_id)
            return _answer(503, "unavailable", retry_after=1), "overloaded"
        if isinstance(queued, Enqueued) and queued.position == 1 and self._on_ready is not None:
            # The chat just became ready: wake an executor without delaying the answer (the queue is the truth).
            task = asyncio.create_task(self._on_ready())
            self._notifying.add(task)
            task.add_done_callback(self._notifying.discard)
        return _answer(200), "accepted" if isinstance(queued, Enqueued) else "duplicate"

    async def _admission(self, bot_id: str) -> tuple[int, Outcome] | None:
        """None if the bot may send now, else the seconds to wait and why (rate window or queue depth)."""
        o = self.options
        keys = [rate_key(self._prefix, bot_id), self._keys.depth(bot_id)]
        count, ttl_ms, depth = await self._admit(keys, [o.rate_window_ms])
        if int(count) > o.rate_limit:
            return max(1, math.ceil(int(ttl_ms) / 1000)), "rate_limited"
        if int(depth) >= o.max_queue_depth:
            return o.depth_retry_after_s, "overloaded"
        return None

    async def _read(self, request: Request) -> bytes | None:
        """The body, or None as soon as it grows past the cap."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.options.max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)


async def webhook(request: Request) -> Response:
    """``POST /wh/{botId}``: the ``Ingress`` made by the app's lifespan answers."""
    ingress: Ingress = request.state.ingress
    return await ingress.handle(request)
