"""Progressive delivery end to end in one process: stand-in user → webhook → chat queue → executor → stand-in.

Chats are routed by the bot's route (docs/rollouts.md): rollout share by chat hash, pins, and
conversation affinity; the automatic controller runs in the worker.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import dramatiq
import pytest
from redis.asyncio import Redis

from botkiln.graphql.app import build_app
from botkiln.infra.artifacts_fs import FsArtifactStore
from botkiln.infra.db import Pool, bots, deployments, rollouts, transaction
from botkiln.infra.db.rollouts import Rollout, RolloutPlan
from botkiln.infra.rollout_control import announce_route, operate
from botkiln.infra.routing import bucket
from botkiln.infra.settings import Settings
from botkiln.infra.telegram_standin import BotApiStandIn, StandInBot, Webhook
from botkiln.infra.telegram_standin_updates import chat, user_command, user_message
from botkiln.workers import WorkerOptions
from tests.conftest import minimal_spec
from tests.graphql.support import ServerThread
from tests.runtime.echo import echo_spec
from tests.services import delete_keys
from tests.workers.runtime_support import activate, live_bot, record, served_standin
from tests.workers.support import SECRET_KEY

pytestmark = pytest.mark.anyio

PREFIX = f"test-ro-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def standin() -> Iterator[BotApiStandIn]:
    made, server = served_standin()
    yield made
    server.stop()


@pytest.fixture(scope="module")
def settings(database: str, artifacts_dir: Path, redis_url: str, standin: BotApiStandIn) -> Iterator[Settings]:
    yield Settings(
        database_url=database, artifacts_url=f"file://{artifacts_dir}", redis_url=redis_url, secret_key=SECRET_KEY,
        telegram_api_url=standin.url, outbound_rates=(("bot_per_s", 1000.0), ("chat_per_s", 200.0)),
        executor_lease_ms=2000,
    )  # fmt: skip
    delete_keys(redis_url, f"{PREFIX}:*")


@pytest.fixture(scope="module")
def options() -> WorkerOptions:
    return WorkerOptions(
        redis_prefix=PREFIX, recovery_interval_s=0, pump_interval_s=0.2, active_ttl_s=0.5, rollout_interval_s=0.2
    )


@pytest.fixture(scope="module")
def api(settings: Settings, broker: dramatiq.Broker, worker: dramatiq.Worker) -> Iterator[str]:
    server = ServerThread()
    server.start(build_app(settings, broker=broker, redis_prefix=f"{PREFIX}:"))
    yield server.url
    server.stop()


async def _bot(
    pool: Pool, store: FsArtifactStore, owner: tuple[UUID, UUID], standin: BotApiStandIn, api: str,
    spec: Callable[[str], dict[str, Any]],
) -> tuple[StandInBot, str, str]:  # fmt: skip
    """A live bot on the stand-in with ``spec(botId)`` active; (its stand-in side, id, active revision)."""
    tg = standin.register()
    secret = secrets.token_hex(16)
    bot_id = await live_bot(pool, owner, tg.token, username=tg.username, webhook_secret=secret)
    rev = await activate(pool, store, bot_id, spec(bot_id))
    tg.webhook = Webhook(url=f"{api}/wh/{bot_id}", secret_token=secret)
    return tg, bot_id, rev


async def _open(pool: Pool, redis: Redis, bot_id: str, candidate: str, plan: RolloutPlan) -> Rollout:
    """Open a rollout as the deploy pipeline's flip stage does (its earlier stages are the deploy tests' matter)."""
    stable = await pool.fetchval("SELECT active_rev FROM bots WHERE id = $1", bot_id)
    dep = await deployments.start_deployment(
        pool, bot_id=bot_id, rev_hash=candidate, kind="rollout", actor_id=None, percent=plan.percent
    )
    async with transaction(pool) as conn:
        ro = await rollouts.start(
            conn, bot_id=bot_id, stable_rev=stable, candidate_rev=candidate, plan=plan, deployment_id=dep.id,
            actor_id=None,
        )  # fmt: skip
    await announce_route(pool, redis, bot_id, None, prefix=PREFIX)
    return ro


def _texts(standin: BotApiStandIn, bot: StandInBot, chat_id: int) -> list[str]:
    return [
        str(c.params.get("text"))
        for c in standin.calls(bot, "sendMessage")
        if c.ok and int(c.params["chat_id"]) == chat_id
    ]


async def _until(check: Callable[[], bool], within: float = 20.0, what: str = "the replies") -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not come in time")
        await asyncio.sleep(0.02)


async def _say(standin: BotApiStandIn, bot: StandInBot, chat_id: int, text: str) -> None:
    update = user_command(text, chat_id=chat_id) if text.startswith("/") else user_message(chat_id, text)
    assert (await standin.asend_update(bot, update)).delivered


async def test_a_rollout_from_0_to_100_percent_moves_each_chat_once_and_never_back(
    pool: Pool, store: FsArtifactStore, owner: tuple[UUID, UUID], standin: BotApiStandIn, api: str,
    redis_client: Redis,
) -> None:  # fmt: skip
    # Given an echo bot ("old") with 30 chats and a candidate ("new") in a rollout at 0 %
    tg, bot_id, _ = await _bot(pool, store, owner, standin, api, lambda b: echo_spec(b, "old"))
    candidate = await record(pool, store, bot_id, echo_spec(bot_id, "new"))
    chats = list(range(500, 530))
    for chat_id in chats:
        standin.open_chat(tg, chat(chat_id))
    await _open(pool, redis_client, bot_id, candidate, RolloutPlan(percent=0))
    steps = [10, 50, 100]
    stepped = asyncio.Event()
    sent = dict.fromkeys(chats, 0)

    async def traffic() -> None:
        extra = 3  # rounds after the promotion
        while extra:
            if stepped.is_set():
                extra -= 1
            for chat_id in chats:
                sent[chat_id] += 1
            await asyncio.gather(*(_say(standin, tg, c, f"/e {c}:{sent[c]}") for c in chats))
            await asyncio.sleep(0.05)

    async def stepping() -> None:
        await _until(lambda: all(_texts(standin, tg, c) for c in chats))  # routing happens when an update runs
        for percent in steps:
            await asyncio.sleep(0.7)
            await operate(pool, redis_client, bot_id, "advance", prefix=PREFIX, actor_id=None, percent=percent)
        stepped.set()

    # When the share rises 0 → 10 → 50 → 100 % under continuous traffic
    await asyncio.gather(traffic(), stepping())
    await _until(lambda: all(len(_texts(standin, tg, c)) == sent[c] for c in chats), within=30)

    # Then every chat got each reply once, in order, and moved from old to new exactly once, never back
    for chat_id in chats:
        replies = _texts(standin, tg, chat_id)
        assert [int(r.split("|")[2]) for r in replies] == list(range(1, sent[chat_id] + 1)), replies
        revisions = [r.split("|")[0] for r in replies]
        switch = revisions.index("new")
        assert revisions == ["old"] * switch + ["new"] * (len(revisions) - switch), (chat_id, revisions)
        assert switch >= 1  # the first round ran at 0 % (the steps waited for its replies)
    # ... chats in the lower buckets moved first (10 % before 50 % before the rest)
    first_new = {c: _texts(standin, tg, c).index(next(r for r in _texts(standin, tg, c) if r.startswith("new|")))
                 for c in chats}  # fmt: skip
    early = [first_new[c] for c in chats if bucket(bot_id, c) < 1000]
    late = [first_new[c] for c in chats if bucket(bot_id, c) >= 5000]
    assert not early or not late or max(early) <= min(late)
    # ... the candidate is now active, the stable one draining, and each step is a deployment record
    bot = await bots.get_bot(pool, bot_id)
    assert bot is not None and bot.active_rev == candidate
    history = await deployments.list_deployments(pool, bot_id, limit=10)
    assert [(d.kind, d.percent, d.status) for d in history[:4]] == [
        ("rollout", 100, "succeeded"), ("rollout", 50, "succeeded"), ("rollout", 10, "succeeded"),
        ("rollout", 0, "succeeded"),
    ]  # fmt: skip


def _asker(version: str, *, ask_id: str = "name", fallback: bool = False) -> Callable[[str], dict[str, Any]]:
    """The minimal bot whose strings say ``version``; ``ask_id`` renames its ask step (a cursor on it breaks)."""

    def make(bot_id: str) -> dict[str, Any]:
        spec = minimal_spec()
        spec["meta"]["botId"] = bot_id
        spec["flows"][0]["steps"][1]["id"] = ask_id
        strings = spec["localization"]["strings"]
        strings["hello"] = {"en": f"{version} hello", "ru": f"{version} привет"}
        strings["ask_name"] = {"en": f"{version} name?"}
        strings["bye"] = {"en": f"{version} bye {{{{state.name}}}}"}
        if fallback:
            spec["flows"].append({"id": "lost", "steps": [{"id": "sorry", "type": "reply", "text": "sorry"}]})
            spec["fallback"] = {"flow": "lost"}
            strings["sorry"] = {"en": f"{version}: this bot was updated, send /start to begin again"}
        return spec

    return make


async def test_a_chat_mid_flow_finishes_on_its_revision_within_the_affinity_window(
    pool: Pool, store: FsArtifactStore, owner: tuple[UUID, UUID], standin: BotApiStandIn, api: str,
    redis_client: Redis,
) -> None:  # fmt: skip
    # Given v1 active and three chats waiting at its ask
    tg, bot_id, v1 = await _bot(pool, store, owner, standin, api, _asker("v1"))
    a, b, c = 610, 611, 612
    for chat_id in (a, b, c):
        standin.open_chat(tg, chat(chat_id))
        await _say(standin, tg, chat_id, "/start")
    await _until(lambda: all(_texts(standin, tg, x) == ["v1 hello", "v1 name?"] for x in (a, b, c)))

    # When v2 is rolled out and promoted to every chat
    v2 = await record(pool, store, bot_id, _asker("v2")(bot_id))
    await _open(pool, redis_client, bot_id, v2, RolloutPlan(percent=0))
    await operate(pool, redis_client, bot_id, "promote", prefix=PREFIX, actor_id=None)
    # Then chat A's conversation finishes on v1, and its next one starts on v2
    await _say(standin, tg, a, "Ada")
    await _until(lambda: len(_texts(standin, tg, a)) == 3)
    await _say(standin, tg, a, "/start")
    await _until(lambda: len(_texts(standin, tg, a)) == 5)
    assert _texts(standin, tg, a)[2:] == ["v1 bye Ada", "v2 hello", "v2 name?"]

    # When the affinity window is closed, chat B's answer goes to the active revision (whose ask is the same)
    assert await rollouts.set_affinity(pool, bot_id, 0)
    await announce_route(pool, redis_client, bot_id, None, prefix=PREFIX)
    await _say(standin, tg, b, "Bea")
    await _until(lambda: len(_texts(standin, tg, b)) == 3)
    assert _texts(standin, tg, b)[2] == "v2 bye Bea"

    # When v3 renames the ask step chat C waits at, C's cursor is reset (documented) and its text falls back
    await activate(pool, store, bot_id, _asker("v3", ask_id="who", fallback=True)(bot_id), drain=True)
    await announce_route(pool, redis_client, bot_id, None, prefix=PREFIX)
    await _say(standin, tg, c, "Cy")
    await _until(lambda: len(_texts(standin, tg, c)) == 3)
    assert _texts(standin, tg, c)[2] == "v3: this bot was updated, send /start to begin again"
    assert v1 != v2


async def test_pinned_chats_see_the_candidate_at_0_percent_and_no_one_else_does(
    pool: Pool, store: FsArtifactStore, owner: tuple[UUID, UUID], standin: BotApiStandIn, api: str,
    redis_client: Redis,
) -> None:  # fmt: skip
    # Given an echo bot ("old") and a rollout of "new" at 0 % with chat 700 pinned
    tg, bot_id, _ = await _bot(pool, store, owner, standin, api, lambda b: echo_spec(b, "old"))
    candidate = await record(pool, store, bot_id, echo_spec(bot_id, "new"))
    chats = list(range(700, 712))
    for chat_id in chats:
        standin.open_chat(tg, chat(chat_id))
    await _open(pool, redis_client, bot_id, candidate, RolloutPlan(percent=0))
    await operate(pool, redis_client, bot_id, "pin", prefix=PREFIX, actor_id=None, chat_id=700)
    # When every chat writes
    await asyncio.gather(*(_say(standin, tg, c, f"/e {c}:1") for c in chats))
    await _until(lambda: all(len(_texts(standin, tg, c)) == 1 for c in chats))
    # Then only the pinned chat was answered by the candidate
    assert {c for c in chats if _texts(standin, tg, c)[0].startswith("new|")} == {700}
    # ... and once unpinned it is back on the stable revision
    await operate(pool, redis_client, bot_id, "unpin", prefix=PREFIX, actor_id=None, chat_id=700)
    await _say(standin, tg, 700, "/e 700:2")
    await _until(lambda: len(_texts(standin, tg, 700)) == 2)
    assert _texts(standin, tg, 700)[1].startswith("old|")


def _broken(bot_id: str) -> dict[str, Any]:
    """The echo bot with a bug: its flow loops until the engine's transition limit aborts it (no reply)."""
    spec = echo_spec(bot_id, "new")
    steps = spec["flows"][0]["steps"]
    steps.insert(1, {"id": "spin", "type": "goto", "next": "count", "elseNext": "say"})
    return spec


async def test_a_failing_candidate_is_aborted_automatically_and_every_chat_ends_on_stable(
    pool: Pool, store: FsArtifactStore, owner: tuple[UUID, UUID], standin: BotApiStandIn, api: str,
    redis_client: Redis,
) -> None:  # fmt: skip
    # Given an echo bot ("old") and an automatic rollout at 50 % of a candidate that fails every update
    tg, bot_id, stable = await _bot(pool, store, owner, standin, api, lambda b: echo_spec(b, "old"))
    candidate = await record(pool, store, bot_id, _broken(bot_id))
    chats = list(range(800, 830))
    for chat_id in chats:
        standin.open_chat(tg, chat(chat_id))
    plan = RolloutPlan(percent=50, steps=(50, 100), auto=True, dwell_s=600, error_margin=0.1, min_updates=5)
    ro = await _open(pool, redis_client, bot_id, candidate, plan)
    on_candidate = {c for c in chats if bucket(bot_id, c) < 5000}
    assert on_candidate and on_candidate != set(chats)

    # When traffic flows
    for round_no in (1, 2):
        await asyncio.gather(*(_say(standin, tg, c, f"/e {c}:{round_no}") for c in chats))

    async def aborted() -> Rollout:
        while True:
            found = await rollouts.get_rollout(pool, ro.id)
            assert found is not None
            if found.status != "running":
                return found
            await asyncio.sleep(0.05)

    # Then the controller aborts it on the error rate, and the abort is a deployment record
    ended = await asyncio.wait_for(aborted(), 20)
    assert ended.status == "aborted" and ended.percent == 0
    assert ended.reason.startswith("automatic: the candidate's error rate 100.0%")
    latest = (await deployments.list_deployments(pool, bot_id, limit=1))[0]
    assert (latest.kind, latest.percent, latest.rev_hash) == ("rollout", 0, candidate)
    bot = await bots.get_bot(pool, bot_id)
    assert bot is not None and bot.active_rev == stable
    # ... the chats on the stable revision were answered all along; the candidate never answered anyone
    # (its chats' updates that ran after the abort were answered by the stable revision)
    await _until(lambda: all(len(_texts(standin, tg, c)) == 2 for c in set(chats) - on_candidate))
    assert [t for c in chats for t in _texts(standin, tg, c) if not t.startswith("old|")] == []
    assert sum(len(_texts(standin, tg, c)) for c in on_candidate) < 2 * len(on_candidate)
    # ... and from now on every chat is answered by the stable revision
    await asyncio.gather(*(_say(standin, tg, c, f"/e {c}:3") for c in chats))
    await _until(lambda: all(any(t.endswith(f"|{c}:3") for t in _texts(standin, tg, c)) for c in chats))
    assert all(_texts(standin, tg, c)[-1].startswith("old|") for c in chats)
