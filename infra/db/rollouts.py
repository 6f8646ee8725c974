"""Rollouts in PostgreSQL: the truth behind a bot's route (docs/rollouts.md, ``infra/routing.py``).

Invariants:

- at most one live (running or paused) rollout per bot (a partial unique index);
- every change that can move a chat (start, a step, promotion, abort, a pin, the affinity
  window, any flip) bumps ``bots.route_version`` in the same transaction, and the caller then
  publishes ``load_route`` to Redis, where only a newer version replaces the copy;
- every traffic step (start, each percentage, promotion, abort) is a deployment record of
  kind ``rollout`` with its percentage, its ``flip`` stage and its outcome, written in the
  transaction that moves the traffic;
- the percentage only rises while the rollout is live; promotion flips the bot's active
  revision to the candidate with a compare-and-set from the stable one (and keeps the stable
  one draining, so conversations on it finish); abort sends every chat back to stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast
from uuid import UUID

import asyncpg

from botkiln.infra.db.pool import Connection, Db, transaction
from botkiln.infra.routing import LiveRollout, Route
from botkiln.interpreter.errors import BotkilnError

RolloutStatus = Literal["running", "paused", "completed", "aborted"]
MAX_PINS = 100
"""Chats pinned to one rollout."""
MAX_STEPS = 20


class RolloutRefused(BotkilnError):
    """A rollout operation that the bot's current state does not allow; the message says why."""


@dataclass(frozen=True)
class Rollout:
    """A rollout row with its pins."""

    id: int
    bot_id: str
    stable_rev: str
    candidate_rev: str
    percent: int
    status: RolloutStatus
    steps: tuple[int, ...]
    auto: bool
    dwell_s: int
    error_margin: float
    min_updates: int
    step_started_at: datetime
    reason: str
    created_by: UUID | None
    created_at: datetime
    ended_at: datetime | None
    pins: tuple[int, ...]

    @property
    def live(self) -> bool:
        """Running or paused."""
        return self.status in ("running", "paused")

    def next_step(self) -> int | None:
        """The first planned percentage above the current one (100 when the plan has none left)."""
        if self.percent >= 100:
            return None
        return next((s for s in self.steps if s > self.percent), 100)


@dataclass(frozen=True)
class RolloutPlan:
    """How a rollout starts and, when ``auto``, advances."""

    percent: int = 0
    steps: tuple[int, ...] = (1, 10, 50, 100)
    auto: bool = False
    dwell_s: int = 300
    error_margin: float = 0.05
    min_updates: int = 50

    def problems(self) -> list[tuple[str, str]]:
        """(field, why) for each invalid value."""
        out = []
        if not 0 <= self.percent <= 99:
            out.append(("percent", "0 to 99 (100 is a promotion)"))
        if not 1 <= len(self.steps) <= MAX_STEPS or any(not 1 <= s <= 100 for s in self.steps):
            out.append(("steps", f"1 to {MAX_STEPS} percentages between 1 and 100"))
        elif list(self.steps) != sorted(set(self.steps)):
            out.append(("steps", "strictly increasing"))
        if not 0 <= self.dwell_s <= 604_800:
            out.append(("dwellSec", "0 to 604800 seconds"))
        if not 0 <= self.error_margin <= 1:
            out.append(("errorMargin", "a fraction between 0 and 1"))
        if not 1 <= self.min_updates <= 1_000_000:
            out.append(("minUpdates", "1 to 1000000"))
        return out


_SELECT = (
    "SELECT r.*, coalesce((SELECT array_agg(p.chat_id ORDER BY p.chat_id) FROM rollout_pins p"
    " WHERE p.rollout_id = r.id), '{}') AS pins FROM rollouts r"
)


def _rollout(row: asyncpg.Record) -> Rollout:
    return Rollout(
        id=row["id"], bot_id=row["bot_id"], stable_rev=row["stable_rev"], candidate_rev=row["candidate_rev"],
        percent=row["percent"], status=cast(RolloutStatus, row["status"]), steps=tuple(row["steps"]),
        auto=row["auto"], dwell_s=row["dwell_s"], error_margin=row["error_margin"], min_updates=row["min_updates"],
        step_started_at=row["step_started_at"], reason=row["reason"], created_by=row["created_by"],
        created_at=row["created_at"], ended_at=row["ended_at"], pins=tuple(row["pins"]),
    )  # fmt: skip


async def get_live(db: Db, bot_id: str, *, lock: bool = False) -> Rollout | None:
    """The bot's running or paused rollout (``lock``: FOR UPDATE of the rollout row, inside a transaction)."""
    if lock:
        locked = await db.fetchval(
            "SELECT id FROM rollouts WHERE bot_id = $1 AND status IN ('running', 'paused') FOR UPDATE", bot_id
        )
        if locked is None:
            return None
    row = await db.fetchrow(f"{_SELECT} WHERE r.bot_id = $1 AND r.status IN ('running', 'paused')", bot_id)
    return None if row is None else _rollout(row)


async def get_rollout(db: Db, rollout_id: int) -> Rollout | None:
    """One rollout by id."""
    row = await db.fetchrow(f"{_SELECT} WHERE r.id = $1", rollout_id)
    return None if row is None else _rollout(row)


async def list_rollouts(db: Db, bot_id: str, *, limit: int = 20) -> list[Rollout]:
    """The bot's rollouts, newest first."""
    rows = await db.fetch(f"{_SELECT} WHERE r.bot_id = $1 ORDER BY r.id DESC LIMIT $2", bot_id, limit)
    return [_rollout(r) for r in rows]


async def due_auto(db: Db) -> list[Rollout]:
    """Running automatic rollouts of live bots (the controller judges each one)."""
    rows = await db.fetch(
        f"{_SELECT} JOIN bots b ON b.id = r.bot_id AND b.deleted_at IS NULL"
        " WHERE r.status = 'running' AND r.auto ORDER BY r.id"
    )
    return [_rollout(r) for r in rows]


async def load_route(db: Db, bot_id: str) -> Route | None:
    """The bot's route as PostgreSQL has it now; None for no such (or a deleted) bot."""
    row = await db.fetchrow(
        "SELECT active_rev, draining_rev, affinity_max_age_s, route_version FROM bots"
        " WHERE id = $1 AND deleted_at IS NULL",
        bot_id,
    )
    if row is None:
        return None
    live = await get_live(db, bot_id)
    rollout = None
    if live is not None:
        rollout = LiveRollout(live.id, live.candidate_rev, live.percent, frozenset(live.pins))
    return Route(
        row["route_version"], row["active_rev"], row["draining_rev"], row["affinity_max_age_s"] * 1000, rollout
    )


async def _bump(conn: Connection, bot_id: str) -> None:
    await conn.execute("UPDATE bots SET route_version = route_version + 1 WHERE id = $1", bot_id)


async def _record_step(
    conn: Connection, ro: Rollout, percent: int, *, actor_id: UUID | None, why: str, previous_rev: str | None = None
) -> int:
    """A finished deployment record of one traffic step (kind ``rollout``)."""
    deployment_id: int = await conn.fetchval(
        "INSERT INTO deployments (bot_id, rev_hash, previous_rev, kind, actor_id, why, percent)"
        " VALUES ($1, $2, $3, 'rollout', $4, $5, $6) RETURNING id",
        ro.bot_id, ro.candidate_rev, previous_rev or ro.stable_rev, actor_id, why[:1000], percent,
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO deployment_stages (deployment_id, stage, status, detail) VALUES ($1, 'flip', 'passed', $2)",
        deployment_id,
        f"{percent}% of chats on {ro.candidate_rev[:12]}",
    )
    await conn.execute(
        "INSERT INTO deployment_outcomes (deployment_id, status) VALUES ($1, 'succeeded')", deployment_id
    )
    return deployment_id


async def start(
    conn: Connection,
    *,
    bot_id: str,
    stable_rev: str | None,
    candidate_rev: str,
    plan: RolloutPlan,
    deployment_id: int,
    actor_id: UUID | None,
    why: str = "",
) -> Rollout:
    """Open a rollout (the deploy pipeline's flip stage for a rollout), inside ``conn``'s transaction.

    Records the deployment's ``flip`` stage and its success. ``stable_rev`` must still be active.

    Raises:
        RolloutRefused: no active revision to compare with, it changed, the candidate is it, or a rollout is live.
    """
    active = await conn.fetchval("SELECT active_rev FROM bots WHERE id = $1 AND deleted_at IS NULL FOR UPDATE", bot_id)
    if active is None:
        raise RolloutRefused("the bot has no active revision: deploy one first, a rollout needs a stable revision")
    if active != stable_rev:
        raise RolloutRefused(f"the active revision changed from {stable_rev} to {active}; nothing was started")
    if active == candidate_rev:
        raise RolloutRefused("that revision is already active")
    if await get_live(conn, bot_id) is not None:
        raise RolloutRefused("a rollout is already live for this bot: promote or abort it first")
    rollout_id = await conn.fetchval(
        "INSERT INTO rollouts (bot_id, stable_rev, candidate_rev, percent, status, steps, auto, dwell_s,"
        " error_margin, min_updates, reason, created_by) VALUES ($1, $2, $3, $4, 'running', $5, $6, $7, $8, $9, $10,"
        " $11) RETURNING id",
        bot_id, active, candidate_rev, plan.percent, list(plan.steps), plan.auto, plan.dwell_s, plan.error_margin,
        plan.min_updates, why[:1000], actor_id,
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO deployment_stages (deployment_id, stage, status, detail) VALUES ($1, 'flip', 'passed', $2)",
        deployment_id,
        f"rollout {rollout_id} started at {plan.percent}%",
    )
    await conn.execute(
        "INSERT INTO deployment_outcomes (deployment_id, status) VALUES ($1, 'succeeded')", deployment_id
    )
    await _bump(conn, bot_id)
    found = await get_rollout(conn, rollout_id)
    assert found is not None
    return found


@dataclass(frozen=True)
class Changed:
    """A rollout after an operation, and the deployment record of its traffic step (None for pause/resume/pins)."""

    rollout: Rollout
    deployment_id: int | None


async def _live_or_refuse(conn: Connection, bot_id: str) -> Rollout:
    ro = await get_live(conn, bot_id, lock=True)
    if ro is None:
        raise RolloutRefused("no rollout is live for this bot")
    return ro


async def advance(db: Db, bot_id: str, *, percent: int | None, actor_id: UUID | None, why: str = "") -> Changed:
    """Raise the candidate's share to ``percent`` (default: the plan's next step); 100 promotes.

    Raises:
        RolloutRefused: no live rollout, or ``percent`` is not above the current share (chats never move back).
    """
    async with transaction(db) as conn:
        ro = await _live_or_refuse(conn, bot_id)
        target = ro.next_step() if percent is None else percent
        if target is None or not ro.percent < target <= 100:
            raise RolloutRefused(f"the share can only rise: it is {ro.percent}%, {target}% was asked")
        if target == 100:
            return await _promote(conn, ro, actor_id=actor_id, why=why or "promoted")
        await conn.execute("UPDATE rollouts SET percent = $2, step_started_at = now() WHERE id = $1", ro.id, target)
        deployment_id = await _record_step(conn, ro, target, actor_id=actor_id, why=why or f"advanced to {target}%")
        await _bump(conn, bot_id)
        found = await get_rollout(conn, ro.id)
    assert found is not None
    return Changed(found, deployment_id)


async def promote(db: Db, bot_id: str, *, actor_id: UUID | None, why: str = "") -> Changed:
    """Flip the bot's active revision to the candidate and complete the rollout.

    Raises:
        RolloutRefused: no live rollout, or the active revision is no longer the stable one.
    """
    async with transaction(db) as conn:
        ro = await _live_or_refuse(conn, bot_id)
        return await _promote(conn, ro, actor_id=actor_id, why=why or "promoted")


async def _promote(conn: Connection, ro: Rollout, *, actor_id: UUID | None, why: str) -> Changed:
    flipped = await conn.fetchval(
        "UPDATE bots SET active_rev = $3, active_since = now(), draining_rev = $2, route_version = route_version + 1"
        " WHERE id = $1 AND active_rev = $2 RETURNING id",
        ro.bot_id, ro.stable_rev, ro.candidate_rev,
    )  # fmt: skip
    if flipped is None:
        raise RolloutRefused("the active revision is no longer the rollout's stable revision; nothing was flipped")
    await conn.execute(
        "UPDATE rollouts SET percent = 100, status = 'completed', ended_at = now(), step_started_at = now()"
        " WHERE id = $1",
        ro.id,
    )
    deployment_id = await _record_step(conn, ro, 100, actor_id=actor_id, why=why)
    found = await get_rollout(conn, ro.id)
    assert found is not None
    return Changed(found, deployment_id)


async def abort(db: Db, bot_id: str, *, actor_id: UUID | None, reason: str) -> Changed:
    """Send every chat back to the stable revision and end the rollout (the candidate keeps no conversation).

    Raises:
        RolloutRefused: no live rollout.
    """
    async with transaction(db) as conn:
        ro = await _live_or_refuse(conn, bot_id)
        await conn.execute(
            "UPDATE rollouts SET percent = 0, status = 'aborted', ended_at = now(), reason = $2 WHERE id = $1",
            ro.id, reason[:1000],
        )  # fmt: skip
        deployment_id = await _record_step(conn, ro, 0, actor_id=actor_id, why=f"aborted: {reason}")
        await _bump(conn, bot_id)
        found = await get_rollout(conn, ro.id)
    assert found is not None
    return Changed(found, deployment_id)


async def set_paused(db: Db, bot_id: str, paused: bool) -> Changed:
    """Pause (automatic steps stop; the share stays) or resume (the dwell time starts again).

    Raises:
        RolloutRefused: no live rollout.
    """
    async with transaction(db) as conn:
        ro = await _live_or_refuse(conn, bot_id)
        await conn.execute(
            "UPDATE rollouts SET status = $2, step_started_at = CASE WHEN $2 = 'running' THEN now()"
            " ELSE step_started_at END WHERE id = $1",
            ro.id, "paused" if paused else "running",
        )  # fmt: skip
        found = await get_rollout(conn, ro.id)
    assert found is not None
    return Changed(found, None)


async def pin(db: Db, bot_id: str, chat_id: int, *, pinned: bool, actor_id: UUID | None) -> Changed:
    """Pin a chat to the live rollout's candidate (or unpin it).

    Raises:
        RolloutRefused: no live rollout, or too many pins.
    """
    async with transaction(db) as conn:
        ro = await _live_or_refuse(conn, bot_id)
        if pinned:
            if chat_id not in ro.pins and len(ro.pins) >= MAX_PINS:
                raise RolloutRefused(f"at most {MAX_PINS} chats can be pinned to a rollout")
            await conn.execute(
                "INSERT INTO rollout_pins (rollout_id, chat_id, created_by) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING",
                ro.id, chat_id, actor_id,
            )  # fmt: skip
        else:
            await conn.execute("DELETE FROM rollout_pins WHERE rollout_id = $1 AND chat_id = $2", ro.id, chat_id)
        await _bump(conn, bot_id)
        found = await get_rollout(conn, ro.id)
    assert found is not None
    return Changed(found, None)


async def set_affinity(db: Db, bot_id: str, max_age_s: int) -> bool:
    """Set how long a conversation may stay on the revision it started on (0: never); False for no such bot."""
    if not 0 <= max_age_s <= 604_800:
        raise ValueError("max_age_s must be 0 to 604800")
    found = await db.fetchval(
        "UPDATE bots SET affinity_max_age_s = $2, route_version = route_version + 1"
        " WHERE id = $1 AND deleted_at IS NULL RETURNING id",
        bot_id,
        max_age_s,
    )
    return found is not None
