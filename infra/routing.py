"""Which revision runs a chat's update: the bot's route (active revision, live rollout, pins, affinity).

The rules (docs/rollouts.md), applied once per update so the whole update runs on one revision:

1. a chat pinned to the live rollout runs its candidate, whatever the percentage;
2. a chat in the middle of a flow (its state has a cursor) whose flow started on a revision the
   bot still serves (active, draining, or the live candidate) stays on it while the flow is
   younger than ``affinity_ms``;
3. else a chat whose ``bucket`` is below the live rollout's percentage runs the candidate;
4. else the active revision.

``bucket`` is a stable hash of (bot, chat) into 0..9999, so raising the percentage only moves
chats from the stable revision to the candidate, never back; lowering it happens only on abort.

The route lives in PostgreSQL (the truth, ``infra/db/rollouts.py``) and in one Redis string per
bot that every update reads with its chat state. The Redis copy carries ``bots.route_version``
and ``route_set.lua`` replaces it only with a newer version, so every executor on every machine
sees a step at the same moment and a late writer cannot undo one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from redis.asyncio import Redis

from botkiln.infra.lua_scripts import lua_script
from botkiln.infra.redis_keys import PREFIX
from botkiln.interpreter.types import State

BUCKETS = 10_000
"""Buckets of the rollout hash: a percentage covers ``percent * 100`` of them."""

ERROR_EVENTS = frozenset({"api_error", "limit_reached", "flow_aborted", "executor_error", "send_failed"})
"""Telemetry and host events that make an update count as an error in a rollout's comparison."""

Why = Literal["pinned", "affinity", "canary", "active"]


def bucket(bot_id: str, chat_id: int) -> int:
    """The chat's rollout bucket, 0..9999: the first 8 bytes of sha256("<bot>:<chat>") modulo 10 000."""
    digest = hashlib.sha256(f"{bot_id}:{chat_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


@dataclass(frozen=True)
class LiveRollout:
    """What routing needs of a running or paused rollout."""

    id: int
    candidate: str
    percent: int
    pins: frozenset[int] = frozenset()

    def covers(self, bot_id: str, chat_id: int) -> bool:
        """Whether the percentage sends this chat to the candidate."""
        return bucket(bot_id, chat_id) < self.percent * (BUCKETS // 100)


@dataclass(frozen=True)
class Route:
    """A bot's route at ``version`` (``bots.route_version``)."""

    version: int
    active: str | None
    draining: str | None = None
    affinity_ms: int = 1_800_000
    rollout: LiveRollout | None = None

    def serving(self) -> frozenset[str]:
        """Revisions a conversation may stay on: active, draining and the live candidate."""
        revs = {self.active, self.draining, self.rollout.candidate if self.rollout else None}
        return frozenset(r for r in revs if r is not None)

    def to_json(self) -> str:
        """The Redis copy's JSON."""
        ro = self.rollout
        body: dict[str, Any] = {
            "v": self.version, "active": self.active, "draining": self.draining, "affinityMs": self.affinity_ms,
            "rollout": None if ro is None else {
                "id": ro.id, "candidate": ro.candidate, "percent": ro.percent, "pins": sorted(ro.pins),
            },
        }  # fmt: skip
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Route:
        """Parse the Redis copy."""
        data = json.loads(raw)
        ro = data.get("rollout")
        rollout = None
        if ro is not None:
            rollout = LiveRollout(int(ro["id"]), str(ro["candidate"]), int(ro["percent"]), frozenset(ro["pins"]))
        return cls(int(data["v"]), data["active"], data.get("draining"), int(data["affinityMs"]), rollout)


def newest(a: Route | None, b: Route | None) -> Route | None:
    """The route with the higher version (either when one is missing)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if a.version >= b.version else b


@dataclass(frozen=True)
class Affinity:
    """The revision a chat's current flow started on, and when (ms)."""

    rev: str
    since_ms: int

    def to_text(self) -> str:
        """``<since_ms>:<rev>`` (the Redis value)."""
        return f"{self.since_ms}:{self.rev}"

    @classmethod
    def from_text(cls, raw: bytes | str) -> Affinity | None:
        """Parse ``<since_ms>:<rev>``; None if malformed."""
        text = raw.decode() if isinstance(raw, bytes) else raw
        since, _, rev = text.partition(":")
        if not since.isdigit() or not rev:
            return None
        return cls(rev, int(since))


@dataclass(frozen=True)
class Choice:
    """The revision an update runs on, and which rule chose it."""

    rev: str | None
    why: Why
    rollout_id: int | None = field(default=None)


def choose(
    route: Route, bot_id: str, chat_id: int, state: State | None, affinity: Affinity | None, now_ms: int
) -> Choice:
    """Apply the module's rules to one update of ``chat_id``."""
    ro = route.rollout
    ro_id = ro.id if ro is not None else None
    if ro is not None and chat_id in ro.pins:
        return Choice(ro.candidate, "pinned", ro_id)
    mid_flow = state is not None and state.get("cursor") is not None
    if (
        mid_flow
        and affinity is not None
        and affinity.rev in route.serving()
        and now_ms - affinity.since_ms <= route.affinity_ms
    ):
        return Choice(affinity.rev, "affinity", ro_id)
    if ro is not None and ro.covers(bot_id, chat_id):
        return Choice(ro.candidate, "canary", ro_id)
    return Choice(route.active, "active", ro_id)


def next_affinity(old: Affinity | None, ran: str, state: State | None, now_ms: int) -> Affinity | None:
    """The chat's affinity after an update ran on ``ran`` and left ``state``: kept while its flow goes on.

    No cursor: no affinity. A cursor after an update that ran on the affinity's revision keeps it
    (the same conversation); on another revision it starts a new one at ``now_ms``.
    """
    if state is None or state.get("cursor") is None:
        return None
    if old is not None and old.rev == ran:
        return old
    return Affinity(ran, now_ms)


class RouteStore:
    """The Redis copy of bots' routes (``<p>:route:<botId>``) and rollouts' live counters."""

    def __init__(self, redis: Redis, *, prefix: str = PREFIX) -> None:
        self._redis = redis
        self.prefix = prefix
        self._set = lua_script(redis, "route_set")

    def key(self, bot_id: str) -> str:
        """String, no TTL: the bot's route JSON."""
        return f"{self.prefix}:route:{bot_id}"

    def stats_key(self, rollout_id: int) -> str:
        """Hash: ``<rev>:updates``, ``<rev>:errors``, ``<rev>:dead`` counted while the rollout is live."""
        return f"{self.prefix}:ro:stats:{rollout_id}"

    def chats_key(self, rollout_id: int, rev: str) -> str:
        """HyperLogLog: the distinct chats a rollout's revision served."""
        return f"{self.prefix}:ro:chats:{rollout_id}:{rev}"

    async def publish(self, bot_id: str, route: Route) -> bool:
        """Store ``route`` unless a newer version is there; True if stored."""
        return bool(await self._set(keys=[self.key(bot_id)], args=[route.version, route.to_json()]))

    async def get(self, bot_id: str) -> Route | None:
        """The stored route, if any."""
        raw = await self._redis.get(self.key(bot_id))
        return None if raw is None else Route.from_json(raw)

    async def count(self, rollout_id: int, rev: str, chat_id: int, *, error: bool, dead: bool) -> None:
        """Count one update of a live rollout on ``rev`` (7-day expiry: counters outlive no rollout for long)."""
        stats, chats = self.stats_key(rollout_id), self.chats_key(rollout_id, rev)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(stats, f"{rev}:updates", 1)
            if error:
                pipe.hincrby(stats, f"{rev}:errors", 1)
            if dead:
                pipe.hincrby(stats, f"{rev}:dead", 1)
            pipe.pfadd(chats, str(chat_id))
            pipe.expire(stats, 7 * 86400)
            pipe.expire(chats, 7 * 86400)
            await pipe.execute()

    async def stats(self, rollout_id: int, revs: list[str]) -> dict[str, RevisionStats]:
        """The counters of ``revs`` in a rollout."""
        raw = await self._redis.hgetall(self.stats_key(rollout_id))
        counts = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
        out = {}
        for rev in revs:
            chats = int(await self._redis.pfcount(self.chats_key(rollout_id, rev)))
            out[rev] = RevisionStats(
                counts.get(f"{rev}:updates", 0), counts.get(f"{rev}:errors", 0), counts.get(f"{rev}:dead", 0), chats
            )
        return out


@dataclass(frozen=True)
class RevisionStats:
    """One revision's share of a rollout: updates, updates with an error event, dead-lettered ones, chats."""

    updates: int
    errors: int
    dead: int
    chats: int

    @property
    def error_rate(self) -> float:
        """errors / updates (0 without updates)."""
        return self.errors / self.updates if self.updates else 0.0

    @property
    def dead_rate(self) -> float:
        """dead-lettered / updates (0 without updates)."""
        return self.dead / self.updates if self.updates else 0.0


def verdict(stable: RevisionStats, candidate: RevisionStats, *, margin: float, min_updates: int) -> str | None:
    """Why the candidate must be rolled back, or None: its error or dead-letter rate exceeds the stable's + margin.

    Nothing is judged before the candidate has ``min_updates`` updates.
    """
    if candidate.updates < min_updates:
        return None
    for name, cand, base in (
        ("error rate", candidate.error_rate, stable.error_rate),
        ("dead-letter rate", candidate.dead_rate, stable.dead_rate),
    ):
        if cand > base + margin:
            return (
                f"the candidate's {name} {cand:.1%} ({candidate.updates} updates) exceeds the stable revision's "
                f"{base:.1%} ({stable.updates} updates) by more than {margin:.1%}"
            )
    return None
