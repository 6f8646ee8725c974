"""Every Redis key and channel Botkiln uses, in one place (STYLE rule 7).

| key or channel | type | meaning |
|---|---|---|
| ``botkiln:progress:bot:<botId>`` | pub/sub channel | progress events of one bot's tasks (``infra/progress.py``) |
| ``botkiln:progress:all`` | pub/sub channel | the same events for every bot |
| ``botkiln:flips`` | pub/sub channel | ``{botId, revHash}`` after every flip: runtime nodes drop what they cached |
| ``botkiln:staged:<botId>:<revHash>`` | hash, TTL 7 days | a deploy's verified artifacts by file name (a) |
| ``botkiln:cq:chat:<botId>:<chatId>`` | list | a chat's queued updates, head first (docs/chat-queue.md) |
| ``botkiln:cq:ready`` | zset | chats with updates and no lease, scored by turn |
| ``botkiln:cq:leases`` | zset | leased chats, scored by lease deadline (ms, Redis clock) |
| ``botkiln:cq:lease:<botId>:<chatId>`` | string, PX lease | ``<token>:<consumerId>`` of the chat's lease holder |
| ``botkiln:cq:tries`` | hash | deliveries of each chat's current head |
| ``botkiln:cq:seq`` / ``botkiln:cq:fence`` | string (int) | turn counter / fencing-token counter |
| ``botkiln:cq:seen:<botId>:<updateId>`` | string, TTL 24 h | an accepted ``update_id`` (dedup) |
| ``botkiln:cq:depth:<botId>`` | string (int) | updates queued for the bot |
| ``botkiln:cq:heads:<botId>`` | zset | the bot's non-empty chats, scored by their head's enqueue time (ms) |
| ``botkiln:dlq:in:<botId>`` | list | dead-lettered inbound updates: ``<json header>\\n<payload>`` |
| ``botkiln:ingress:rate:<botId>`` | string (int), PX window | webhook requests in the current window (ingress) |
| ``botkiln:out:tb:bot:<botId>`` | hash, PX | outbound token bucket of the bot: ``tokens``, ``ts`` (ms, Redis clock) |
| ``botkiln:out:tb:chat:<botId>:<chatId>`` | hash, PX | outbound token bucket of one chat (docs/outbound.md) |
| ``botkiln:out:tb:group:<botId>:<chatId>`` | hash, PX | outbound token bucket of one group (chat id < 0) |
| ``botkiln:out:blocked:<botId>`` | string, PX | "blocked until" (ms, Redis clock) after Telegram's ``retry_after`` |
| ``botkiln:out:sent:<botId>:<dedupKey>:<i>`` | string, TTL 24 h | action ``i`` of an update is settled (sent or DLQ) |
| ``botkiln:dlq:out:<botId>`` | list | dead-lettered outbound actions, JSON, oldest first |
| ``botkiln:state:<botId>:<chatId>`` | string, TTL | the chat's state JSON (docs/runtime.md) |
| ``botkiln:fx:<botId>:<updateId>`` | string, TTL 1 h | an update's committed actions until its ack |
| ``botkiln:rt:wake`` | list (capped) | wake-up tokens for idle executors: a chat became ready |
| ``botkiln:rt:lingering`` | zset | drains waiting for a wake token, score = deadline (ms, Redis clock) |
| ``botkiln:rt:pump`` | string, PX | at most one recovery nudge per interval across all workers |
| ``botkiln:analytics:rows`` | stream, MAXLEN ~ 10⁶ | analytics rows for the drainers (docs/analytics.md) |
| ``botkiln-dramatiq:*`` | Dramatiq's own | the broker's queues, delay queues, acks, heartbeats (b) |

(a) fields ``bot.js``, ``spec.json``, ``rev.json``: runtime nodes load a staged
revision from here without going to the artifact store.
(b) ``DRAMATIQ_NAMESPACE``; tests pass their own namespace to ``build_broker``.

Pub/sub channels ignore the database number: every process on one Redis server
shares them, so subscribers filter by bot id rather than rely on a database.
"""

from __future__ import annotations

PREFIX = "botkiln"

PROGRESS_ALL = f"{PREFIX}:progress:all"
"""Channel: every bot's progress events."""

FLIPS = f"{PREFIX}:flips"
"""Channel: revision-flip invalidations ``{"botId", "revHash"}``."""

DRAMATIQ_NAMESPACE = f"{PREFIX}-dramatiq"
"""Prefix of the keys Dramatiq's Redis broker owns."""

STAGED_TTL_S = 7 * 24 * 3600
"""How long a staged copy of a revision stays in Redis."""


def progress_channel(bot_id: str) -> str:
    """Channel: one bot's progress events."""
    return f"{PREFIX}:progress:bot:{bot_id}"


def staged_revision(bot_id: str, rev_hash: str) -> str:
    """Hash: a staged revision's artifacts, by file name."""
    return f"{PREFIX}:staged:{bot_id}:{rev_hash}"


class ChatQueueKeys:
    """The chat queue's keys under ``prefix`` (``PREFIX`` in production; tests pass their own)."""

    def __init__(self, prefix: str = PREFIX) -> None:
        self.prefix = prefix
        self.ready = f"{prefix}:cq:ready"
        self.leases = f"{prefix}:cq:leases"
        self.tries = f"{prefix}:cq:tries"
        self.seq = f"{prefix}:cq:seq"
        self.fence = f"{prefix}:cq:fence"

    def chat(self, member: str) -> str:
        """List: the queued updates of chat ``member`` (``<botId>:<chatId>``)."""
        return f"{self.prefix}:cq:chat:{member}"

    def lease(self, member: str) -> str:
        """String with expiry: the lease holder of chat ``member``."""
        return f"{self.prefix}:cq:lease:{member}"

    def seen(self, bot_id: str, update_id: int) -> str:
        """String with TTL: ``update_id`` was accepted for ``bot_id``."""
        return f"{self.prefix}:cq:seen:{bot_id}:{update_id}"

    def depth(self, bot_id: str) -> str:
        """Integer: updates queued for the bot."""
        return f"{self.prefix}:cq:depth:{bot_id}"

    def heads(self, bot_id: str) -> str:
        """Zset: the bot's non-empty chats by the enqueue time of their head."""
        return f"{self.prefix}:cq:heads:{bot_id}"

    def dlq_in(self, bot_id: str) -> str:
        """List: the bot's dead-lettered inbound updates."""
        return f"{self.prefix}:dlq:in:{bot_id}"


def ingress_rate(bot_id: str, prefix: str = PREFIX) -> str:
    """String with expiry: the bot's webhook request count in the current rate window."""
    return f"{prefix}:ingress:rate:{bot_id}"


def analytics_rows(prefix: str = PREFIX) -> str:
    """Stream: analytics rows waiting for a drainer (``infra/analytics_relay.py``)."""
    return f"{prefix}:analytics:rows"


class OutboundKeys:
    """The outbound sender's keys under ``prefix`` (``PREFIX`` in production; tests pass their own)."""

    def __init__(self, prefix: str = PREFIX) -> None:
        self.prefix = prefix

    def bot_bucket(self, bot_id: str) -> str:
        """Hash: the bot's token bucket."""
        return f"{self.prefix}:out:tb:bot:{bot_id}"

    def chat_bucket(self, bot_id: str, chat_id: int) -> str:
        """Hash: one chat's token bucket."""
        return f"{self.prefix}:out:tb:chat:{bot_id}:{chat_id}"

    def group_bucket(self, bot_id: str, chat_id: int) -> str:
        """Hash: one group's token bucket (per minute allowance)."""
        return f"{self.prefix}:out:tb:group:{bot_id}:{chat_id}"

    def blocked(self, bot_id: str) -> str:
        """String with expiry: the bot may not call Telegram before this time (ms, Redis clock)."""
        return f"{self.prefix}:out:blocked:{bot_id}"

    def sent(self, bot_id: str, dedup_key: str, index: int) -> str:
        """String with TTL: action ``index`` of the update ``dedup_key`` is settled (sent or dead-lettered)."""
        return f"{self.prefix}:out:sent:{bot_id}:{dedup_key}:{index}"

    def dlq_out(self, bot_id: str) -> str:
        """List: the bot's dead-lettered outbound actions."""
        return f"{self.prefix}:dlq:out:{bot_id}"


class RuntimeKeys:
    """The executors' keys under ``prefix``: chat state, committed effects, the wake list."""

    def __init__(self, prefix: str = PREFIX) -> None:
        self.prefix = prefix
        self.wake = f"{prefix}:rt:wake"
        self.lingering = f"{prefix}:rt:lingering"
        self.pump = f"{prefix}:rt:pump"

    def state(self, bot_id: str, chat_id: int) -> str:
        """String with TTL: the chat's state JSON (docs/botspec.md §5)."""
        return f"{self.prefix}:state:{bot_id}:{chat_id}"

    def affinity(self, bot_id: str, chat_id: int) -> str:
        """String with the state's TTL: ``<sinceMs>:<revHash>``, the revision the chat's current flow started on."""
        return f"{self.prefix}:aff:{bot_id}:{chat_id}"

    def effects(self, bot_id: str, update_id: int) -> str:
        """String with TTL: the committed outcome of an update not yet acknowledged (its actions)."""
        return f"{self.prefix}:fx:{bot_id}:{update_id}"
