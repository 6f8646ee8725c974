"""Routing rules of progressive delivery (``infra/routing.py``), and the versioned Redis copy of a route."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from botkiln.infra.routing import (
    Affinity,
    LiveRollout,
    RevisionStats,
    Route,
    RouteStore,
    bucket,
    choose,
    newest,
    next_affinity,
    verdict,
)
from tests.services import delete_keys

BOT = "rt-bot"
CURSOR: dict[str, Any] = {"vars": {}, "cursor": {"flow": "f", "step": "s", "since": 0}, "cooldowns": {}, "setAt": {},
                          "updatedAt": 0}  # fmt: skip
IDLE: dict[str, Any] = {**CURSOR, "cursor": None}
chat_ids = st.integers(min_value=-(10**13), max_value=10**13).filter(lambda c: c != 0)
percents = st.integers(min_value=0, max_value=100)


@given(chat_ids, percents, percents)
def test_raising_the_share_only_moves_chats_to_the_candidate(chat_id: int, p1: int, p2: int) -> None:
    low, high = sorted((p1, p2))
    at_low = LiveRollout(1, "cand", low).covers(BOT, chat_id)
    at_high = LiveRollout(1, "cand", high).covers(BOT, chat_id)
    assert not at_low or at_high
    assert LiveRollout(1, "cand", 100).covers(BOT, chat_id) and not LiveRollout(1, "cand", 0).covers(BOT, chat_id)


def test_a_share_covers_about_that_share_of_chats_and_differs_per_bot() -> None:
    chats = range(1, 20_001)
    share = sum(LiveRollout(1, "c", 10).covers(BOT, c) for c in chats) / len(chats)
    assert 0.09 < share < 0.11
    assert [bucket("a", c) for c in range(50)] != [bucket("b", c) for c in range(50)]
    assert all(0 <= bucket(BOT, c) < 10_000 for c in range(-500, 500))


@given(chat_ids, percents, st.booleans())
def test_a_pinned_chat_runs_the_candidate_whatever_the_share_or_its_conversation(
    chat_id: int, percent: int, mid_flow: bool
) -> None:
    route = Route(3, "stable", rollout=LiveRollout(7, "cand", percent, frozenset({chat_id})))
    affinity = Affinity("stable", 0)
    choice = choose(route, BOT, chat_id, CURSOR if mid_flow else IDLE, affinity, 1000)  # type: ignore[arg-type]
    assert (choice.rev, choice.why, choice.rollout_id) == ("cand", "pinned", 7)


def test_a_conversation_stays_on_a_serving_revision_until_the_window_closes() -> None:
    route = Route(3, "new", draining="old", affinity_ms=60_000)
    on_old = Affinity("old", 1_000)
    assert choose(route, BOT, 5, CURSOR, on_old, 61_000).rev == "old"  # type: ignore[arg-type]
    assert choose(route, BOT, 5, CURSOR, on_old, 61_001).rev == "new"  # type: ignore[arg-type]
    assert choose(route, BOT, 5, IDLE, on_old, 2_000).rev == "new"  # type: ignore[arg-type]  # no flow under way
    # a revision the bot no longer serves (rolled back from, an aborted candidate) keeps no conversation
    assert choose(Route(4, "new"), BOT, 5, CURSOR, on_old, 2_000).rev == "new"  # type: ignore[arg-type]
    aborted = Route(5, "stable", rollout=None)
    assert choose(aborted, BOT, 5, CURSOR, Affinity("cand", 1_000), 2_000).why == "active"  # type: ignore[arg-type]


def test_a_live_candidate_keeps_its_conversations_even_below_the_share() -> None:
    chat_id = next(c for c in range(1, 10_000) if bucket(BOT, c) >= 5_000)
    route = Route(3, "stable", rollout=LiveRollout(1, "cand", 50))
    choice = choose(route, BOT, chat_id, CURSOR, Affinity("cand", 0), 10)  # type: ignore[arg-type]
    assert (choice.rev, choice.why) == ("cand", "affinity")
    assert choose(route, BOT, chat_id, IDLE, None, 10).rev == "stable"  # type: ignore[arg-type]


def test_affinity_starts_with_a_flow_and_ends_with_it() -> None:
    assert next_affinity(None, "r1", IDLE, 5) is None  # type: ignore[arg-type]
    assert next_affinity(None, "r1", CURSOR, 5) == Affinity("r1", 5)  # type: ignore[arg-type]
    assert next_affinity(Affinity("r1", 5), "r1", CURSOR, 9) == Affinity("r1", 5)  # type: ignore[arg-type]
    assert next_affinity(Affinity("r1", 5), "r2", CURSOR, 9) == Affinity("r2", 9)  # type: ignore[arg-type]
    assert next_affinity(Affinity("r1", 5), "r1", None, 9) is None
    assert Affinity.from_text(Affinity("abc", 12).to_text()) == Affinity("abc", 12)
    assert Affinity.from_text("garbage") is None


@given(
    st.integers(min_value=0, max_value=2**40), st.none() | st.text(min_size=1, max_size=8),
    st.none() | st.builds(LiveRollout, st.integers(1, 10**6), st.text(min_size=1, max_size=8), percents,
                          st.frozensets(chat_ids, max_size=5)),
)  # fmt: skip
def test_a_route_survives_its_json(version: int, draining: str | None, rollout: LiveRollout | None) -> None:
    route = Route(version, "active", draining, 42_000, rollout)
    assert Route.from_json(route.to_json()) == route
    assert newest(route, None) is route and newest(None, route) is route


def test_the_verdict_waits_for_evidence_then_compares_with_a_margin() -> None:
    stable = RevisionStats(updates=1000, errors=20, dead=0, chats=100)
    assert verdict(stable, RevisionStats(4, 4, 0, 4), margin=0.05, min_updates=5) is None
    assert verdict(stable, RevisionStats(100, 6, 0, 50), margin=0.05, min_updates=5) is None  # 6% <= 2% + 5%
    bad = verdict(stable, RevisionStats(100, 8, 0, 50), margin=0.05, min_updates=5)
    assert bad is not None and bad.startswith("the candidate's error rate 8.0% (100 updates)")
    dead = verdict(stable, RevisionStats(100, 0, 10, 50), margin=0.05, min_updates=5)
    assert dead is not None and "dead-letter rate 10.0%" in dead


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.mark.anyio
async def test_the_redis_copy_is_only_replaced_by_a_newer_version(redis: Redis, redis_url: str) -> None:
    prefix = f"test-route-{secrets.token_hex(4)}"
    store = RouteStore(redis, prefix=prefix)
    try:
        assert await store.publish(BOT, Route(5, "b", rollout=LiveRollout(1, "c", 10)))
        assert not await store.publish(BOT, Route(4, "a"))  # a late writer
        assert not await store.publish(BOT, Route(5, "a"))
        assert (await store.get(BOT)) == Route(5, "b", rollout=LiveRollout(1, "c", 10))
        assert await store.publish(BOT, Route(12, "c"))
        assert (await store.get(BOT)) == Route(12, "c")
        await store.count(1, "c", 77, error=True, dead=False)
        await store.count(1, "c", 77, error=False, dead=False)
        await store.count(1, "c", 78, error=True, dead=True)
        stats = await store.stats(1, ["c", "b"])
        assert stats["c"] == RevisionStats(updates=3, errors=2, dead=1, chats=2)
        assert stats["b"] == RevisionStats(0, 0, 0, 0)
    finally:
        delete_keys(redis_url, f"{prefix}:*")
