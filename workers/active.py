"""What a runtime node needs to run a bot's update: ``ActiveBots``, a per-process cache.

Invariants:

- ``get`` returns one ``ActiveBot`` value: the active revision's hash, spec and bot.js
  together, so an update that took it runs entirely on that revision (never a mix);
- a bot's entry is re-read from PostgreSQL once it is ``ttl_s`` old, and dropped at once
  when a flip is announced on ``botkiln:flips`` (``listen``): the broadcast is best effort,
  the TTL bounds how long a node can miss a flip;
- revisions are immutable and content-addressed, so their artifacts are cached by hash
  (LRU) and read from the deploy's staged copy in Redis first, the artifact store second;
- the bot token and the bot's secrets (``{{secret.NAME}}`` in apiCall headers) are decrypted
  only here and kept only in memory (never logged: the dataclass fields have ``repr=False``);
  changing a secret broadcasts on ``botkiln:flips`` like a flip, so nodes re-read them;
- an entry also carries the bot's route as PostgreSQL had it (``infra/routing.Route``); the
  executor prefers the newer Redis copy and repairs an older one. ``at_revision`` gives the
  same bot on another of its revisions (a rollout's candidate, a conversation's revision).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from botkiln.infra.chat_state import DEFAULT_STATE_TTL_S
from botkiln.infra.crypto import SecretBox
from botkiln.infra.db.bot_secrets import decrypt_secrets
from botkiln.infra.db.bots import decrypt_token
from botkiln.infra.db.pool import Db
from botkiln.infra.db.rollouts import load_route
from botkiln.infra.ports import ArtifactStore
from botkiln.infra.redis_keys import FLIPS, staged_revision
from botkiln.infra.routing import Route

_log = logging.getLogger(__name__)

REVISION_CACHE = 64
"""Revisions whose spec and bot.js a node keeps parsed."""


@dataclass(frozen=True)
class ActiveBot:
    """A bot as the executor runs it: its active revision and what sending needs."""

    bot_id: str
    rev_hash: str
    spec: dict[str, Any] = field(repr=False)
    source: str = field(repr=False)
    token: str = field(repr=False)
    username: str | None = None
    route: Route | None = field(default=None, compare=False)
    """The route as PostgreSQL had it when this entry was loaded."""
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    """The bot's secrets by name, in clear (for the apiCall performer only)."""

    @functools.cached_property
    def secrets_version(self) -> str:
        """A digest of the secrets (names and values): which apiCall performer fits this entry (computed once)."""
        digest = hashlib.sha256()
        for name in sorted(self.secrets):
            digest.update(f"{len(name)}:{name}{len(self.secrets[name])}:{self.secrets[name]}".encode())
        return digest.hexdigest()

    @property
    def state_ttl_s(self) -> int:
        """How long Redis keeps an untouched chat state: the spec's ``stateTtlSec``, else the default."""
        retention = self.spec.get("meta", {}).get("retention", {})
        ttl = retention.get("stateTtlSec")
        return int(ttl) if isinstance(ttl, int) and ttl > 0 else DEFAULT_STATE_TTL_S


@dataclass(frozen=True)
class Inactive:
    """Why a bot cannot run updates now (deleted, never deployed, no token)."""

    reason: str


@dataclass
class _Entry:
    value: ActiveBot | Inactive
    loaded_at: float


class ActiveBots:
    """The per-process cache of active bots (see the module docstring)."""

    def __init__(
        self,
        db: Db,
        box: SecretBox,
        redis: Redis,
        store: ArtifactStore,
        *,
        ttl_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db, self._box, self._redis, self._store = db, box, redis, store
        self._ttl_s = ttl_s
        self._clock = clock
        self._bots: dict[str, _Entry] = {}
        self._revisions: OrderedDict[str, tuple[dict[str, Any], str]] = OrderedDict()

    async def get(self, bot_id: str) -> ActiveBot | Inactive:
        """The bot's active revision and token, from the cache when fresh."""
        entry = self._bots.get(bot_id)
        now = self._clock()
        if entry is not None and now - entry.loaded_at < self._ttl_s:
            return entry.value
        value = await self._load(bot_id)
        self._bots[bot_id] = _Entry(value, now)
        return value

    async def at_revision(self, bot: ActiveBot, rev_hash: str) -> ActiveBot:
        """``bot`` running ``rev_hash`` instead (same token and route; the revision's artifacts are cached)."""
        if rev_hash == bot.rev_hash:
            return bot
        spec, source = await self._revision(bot.bot_id, rev_hash)
        return dataclasses.replace(bot, rev_hash=rev_hash, spec=spec, source=source)

    def invalidate(self, bot_id: str) -> None:
        """Forget the bot's entry (after a flip); the next ``get`` re-reads it."""
        self._bots.pop(bot_id, None)

    async def listen(self, ready: asyncio.Event | None = None) -> None:
        """Drop entries as flips are announced, until cancelled (reconnects after Redis errors)."""
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(FLIPS)
                    if ready is not None:
                        ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._on_flip(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a lost subscription only delays invalidation to the TTL
                _log.warning("flip subscription lost (%s); retrying", type(exc).__name__)
                self._bots.clear()
                await asyncio.sleep(1.0)

    def _on_flip(self, data: bytes | str) -> None:
        try:
            bot_id = json.loads(data)["botId"]
        except (ValueError, KeyError, TypeError):
            return
        if isinstance(bot_id, str):
            self.invalidate(bot_id)

    async def _load(self, bot_id: str) -> ActiveBot | Inactive:
        row = await self._db.fetchrow(
            "SELECT active_rev, telegram_username FROM bots WHERE id = $1 AND deleted_at IS NULL", bot_id
        )
        if row is None:
            return Inactive("no such bot (deleted?)")
        rev_hash = row["active_rev"]
        if rev_hash is None:
            return Inactive("the bot has no active revision (never deployed)")
        token = await decrypt_token(self._db, self._box, bot_id)
        if not token:
            return Inactive("the bot has no Telegram token")
        route = await load_route(self._db, bot_id)
        spec, source = await self._revision(bot_id, rev_hash)
        secrets = await decrypt_secrets(self._db, self._box, bot_id)
        return ActiveBot(bot_id, rev_hash, spec, source, token, row["telegram_username"], route, secrets)

    async def _revision(self, bot_id: str, rev_hash: str) -> tuple[dict[str, Any], str]:
        cached = self._revisions.get(rev_hash)
        if cached is not None:
            self._revisions.move_to_end(rev_hash)
            return cached
        staged = await self._redis.hmget(staged_revision(bot_id, rev_hash), ["spec.json", "bot.js"])
        if staged[0] is not None and staged[1] is not None:
            spec_raw, source_raw = staged[0], staged[1]
        else:
            stored = await asyncio.to_thread(self._store.get_revision, bot_id, rev_hash)
            spec_raw, source_raw = stored.files["spec.json"], stored.files["bot.js"]
        source = source_raw.decode("utf-8") if isinstance(source_raw, bytes) else source_raw
        value = (json.loads(spec_raw), source)
        self._revisions[rev_hash] = value
        while len(self._revisions) > REVISION_CACHE:
            self._revisions.popitem(last=False)
        return value
