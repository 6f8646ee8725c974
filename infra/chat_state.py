"""Per-chat state and committed effects in Redis, written under the chat queue's lease.

Invariants (docs/runtime.md has the reasoning):

- ``commit`` writes the chat's new state and the update's *effects* (the actions still to send)
  in one Lua script (``infra/lua/commit.lua``), and only while the caller's lease (fencing
  token) is current: a consumer whose lease expired writes nothing;
- an update whose effects exist was fully computed: a redelivery sends the recorded actions
  (the outbound sender de-duplicates them per index) instead of running the engine again,
  so state and messages change once per update whatever process dies;
- the ack deletes the effects in the same script (``effects_key`` names them for
  ``ChatQueue.ack(forget=…)``), so no crash can leave them behind an acknowledged update; they
  also expire after ``EFFECTS_TTL_S``;
- the chat's *affinity* (the revision its current flow started on, ``infra/routing.py``) is
  written by the same script, with the state's TTL, and deleted when no flow is under way;
- a state expires ``ttl_s`` after its last write (the spec's ``stateTtlSec`` if set, else
  ``DEFAULT_STATE_TTL_S``); the engines apply the finer expiry rules of docs/botspec.md §5.3.
"""

from __future__ import annotations

import json
from typing import Any, cast

from redis.asyncio import Redis

from botkiln.infra.lua_scripts import lua_script
from botkiln.infra.ports import Begun, Claim, Effects
from botkiln.infra.redis_keys import PREFIX, ChatQueueKeys, RuntimeKeys
from botkiln.infra.routing import Affinity, Route
from botkiln.interpreter.types import State

DEFAULT_STATE_TTL_S = 30 * 24 * 3600
"""How long an untouched chat state is kept when the spec sets no ``stateTtlSec``."""

EFFECTS_TTL_S = 3600
"""How long committed effects wait for their update's acknowledgement."""

MAX_STATE_BYTES = 256 * 1024
"""A stored state larger than this is refused (the engines cap ``vars`` at 64 KiB; the rest is small)."""


class StateTooLarge(ValueError):
    """The state JSON is beyond ``MAX_STATE_BYTES`` (an engine bug: the spec's limit is far lower)."""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class RedisChatState:
    """``StateStore`` on the chat queue's Redis (same ``prefix``)."""

    def __init__(self, redis: Redis, *, prefix: str = PREFIX) -> None:
        self._redis = redis
        self._keys = RuntimeKeys(prefix)
        self._queue_keys = ChatQueueKeys(prefix)
        self._commit = lua_script(redis, "commit")

    async def load(self, bot_id: str, chat_id: int) -> State | None:
        """The chat's state, or None for a new (or expired) chat."""
        raw = await self._redis.get(self._keys.state(bot_id, chat_id))
        return None if raw is None else cast(State, json.loads(raw))

    async def begin(self, bot_id: str, chat_id: int, update_id: int, *, route_key: str | None = None) -> Begun:
        """What an update starts from, in one round trip: its committed effects (if an earlier delivery got that
        far), the chat's state and affinity, and (with ``route_key``) the bot's route (``infra/routing.py``)."""
        keys = [self._keys.effects(bot_id, update_id), self._keys.state(bot_id, chat_id)]
        keys += [self._keys.affinity(bot_id, chat_id)]
        if route_key is not None:
            keys.append(route_key)
        fx_raw, state_raw, affinity_raw, *rest = await self._redis.mget(keys)
        effects = None
        if fx_raw is not None:
            data = json.loads(fx_raw)
            effects = Effects(data["rev"], data["actions"])
        state = None if state_raw is None else cast(State, json.loads(state_raw))
        affinity = None if affinity_raw is None else Affinity.from_text(affinity_raw)
        route = Route.from_json(rest[0]) if rest and rest[0] is not None else None
        return Begun(effects, state, affinity, route)

    async def effects(self, bot_id: str, update_id: int) -> Effects | None:
        """The committed effects of an update that was not acknowledged yet, if any."""
        raw = await self._redis.get(self._keys.effects(bot_id, update_id))
        if raw is None:
            return None
        data = json.loads(raw)
        return Effects(data["rev"], data["actions"])

    async def commit(
        self,
        claim: Claim,
        state: State | None,
        effects: Effects,
        *,
        ttl_s: int = DEFAULT_STATE_TTL_S,
        affinity: Affinity | None = None,
    ) -> bool:
        """Write ``state`` and ``effects`` atomically if ``claim``'s lease is current; False (nothing written) if not.

        Raises:
            StateTooLarge: the state JSON exceeds ``MAX_STATE_BYTES``.
        """
        if ttl_s < 1:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        state_json = "" if state is None else _dumps(state)
        if len(state_json.encode()) > MAX_STATE_BYTES:
            raise StateTooLarge(f"the state of chat {claim.chat_id} is over {MAX_STATE_BYTES} bytes")
        member = f"{claim.bot_id}:{claim.chat_id}"
        keys = [
            self._queue_keys.lease(member),
            self._keys.state(claim.bot_id, claim.chat_id),
            self._keys.effects(claim.bot_id, claim.update_id),
            self._keys.affinity(claim.bot_id, claim.chat_id),
        ]
        fx = _dumps({"rev": effects.rev_hash, "actions": effects.actions})
        aff = "" if affinity is None else affinity.to_text()
        return bool(await self._commit(keys, [claim.token, state_json, ttl_s, fx, EFFECTS_TTL_S, aff]))

    def effects_key(self, bot_id: str, update_id: int) -> str:
        """Where an update's committed effects live until its ack (the ack deletes it: ``ChatQueue.ack(forget=…)``)."""
        return self._keys.effects(bot_id, update_id)
