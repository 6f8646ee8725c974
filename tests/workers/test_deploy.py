"""deploy: preflight -> compat -> stage -> prewarm -> health -> flip, through a real worker."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from uuid import UUID

import dramatiq
import pytest
from redis.asyncio import Redis

from botkiln.generator.generators import CompilerGenerator
from botkiln.infra import redis_keys
from botkiln.infra.artifacts_fs import FsArtifactStore
from botkiln.infra.db import Pool, audit, bots, deployments
from botkiln.infra.ports import stored_revision
from botkiln.infra.settings import Settings
from botkiln.workers import Runtime, WorkerOptions, enqueue_deploy, open_runtime
from botkiln.workers.deploy_policy import STAGES
from botkiln.workers.stages import DeployContext, StageFailed, health, prewarm, synthetic_update
from tests.workers.support import (
    Events,
    created,
    deployed,
    generated,
    new_bot,
    spec_for,
    stage_trail,
    wait_task,
)

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("worker")]

OLD_VARS = {"name": {"type": "string", "pii": True}, "age": {"type": "number"}, "score": {"type": "number"}}


async def test_a_deploy_runs_every_stage_in_order_then_flips_and_announces_it(
    pool: Pool, broker: dramatiq.Broker, redis_client: Redis, owner: tuple[UUID, UUID]
) -> None:
    # Given a generated revision, a progress subscriber and a flip listener, both active before the deploy
    bot_id = await new_bot(pool, owner)
    rev = await generated(pool, broker, bot_id, spec_for(bot_id))
    flips = redis_client.pubsub()
    await flips.subscribe(redis_keys.FLIPS)
    assert (await flips.get_message(timeout=5))["type"] == "subscribe"
    async with Events(redis_client, {bot_id}) as events:
        # When it is deployed
        task = created(
            await enqueue_deploy(pool, broker, bot_id=bot_id, rev_hash=rev, user_id=owner[0], idempotency_key="d1")
        )
        done = await wait_task(pool, task.id)
        flipped = await events.wait_for("DeployFlipped")
    # Then traffic points at it and the task says which deployment did it
    assert done.status == "succeeded", done.error
    bot = await bots.get_bot(pool, bot_id)
    assert bot is not None and bot.active_rev == rev
    [deployment] = await deployments.list_deployments(pool, bot_id)
    assert done.result == {"deploymentId": deployment.id, "kind": "deploy", "previousRev": None, "revHash": rev}
    # And the record lists every stage, started then passed, in the policy's order, with growing timestamps
    assert deployment.status == "succeeded" and deployment.kind == "deploy" and deployment.task_id == task.id
    assert stage_trail(deployment) == [(s, status) for s in STAGES for status in ("started", "passed")]
    times = [s.at for s in deployment.stages]
    assert times == sorted(times)
    details = {s.stage: s.detail for s in deployment.stages if s.status == "passed"}
    assert "conformance:" in details["preflight"] and "calls agreed" in details["preflight"]
    assert "identical to the reference interpreter" in details["health"]
    # And the subscriber saw the stages as DeployProgress between DeployStarted and DeployFlipped
    mine = [e for e in events.items if e["taskId"] == str(task.id)]
    assert [e["type"] for e in mine] == ["DeployStarted", *["DeployProgress"] * len(STAGES), "DeployFlipped"]
    assert [e.get("stage") for e in mine[1:-1]] == list(STAGES)
    assert flipped["revHash"] == rev and flipped["deploymentId"] == deployment.id
    # And runtime nodes were told to switch, with the artifacts staged for them
    message = None
    while message is None or message["type"] != "message":
        message = await flips.get_message(timeout=5)
        assert message is not None
    assert json.loads(message["data"]) == {"botId": bot_id, "revHash": rev}
    await flips.aclose()
    staged = await redis_client.hgetall(redis_keys.staged_revision(bot_id, rev))
    assert set(staged) == {b"bot.js", b"spec.json", b"rev.json"}
    # And the audit log says who deployed what
    [entry] = await audit.list_entries(pool, bot_id=bot_id)
    assert (entry.action, entry.actor_id, entry.target) == ("bot.deploy", owner[0], rev)


async def test_a_corrupted_artifact_fails_preflight_and_the_old_revision_stays_active(
    pool: Pool, broker: dramatiq.Broker, redis_client: Redis, store: FsArtifactStore, owner: tuple[UUID, UUID]
) -> None:
    # Given revision A serving traffic and revision B whose bot.js was altered in the store
    bot_id = await new_bot(pool, owner)
    rev_a = await generated(pool, broker, bot_id, spec_for(bot_id, greeting="A"))
    assert (await deployed(pool, broker, bot_id, rev_a)).status == "succeeded"
    rev_b = await generated(pool, broker, bot_id, spec_for(bot_id, greeting="B"))
    bot_js = store.root / "bots" / bot_id / rev_b / "bot.js"
    bot_js.write_bytes(bot_js.read_bytes().replace(b'"B"', b'"b"'))
    async with Events(redis_client, {bot_id}) as events:
        # When B is deployed
        done = await deployed(pool, broker, bot_id, rev_b)
        failed = await events.wait_for("DeployFailed")
    # Then the deploy fails at preflight, saying why, and A still serves
    assert done.status == "failed" and done.attempts == 1
    assert done.error is not None and done.error.startswith("deploy failed at preflight: artifacts:")
    assert "bot.js" in done.error and "sha256" in done.error
    bot = await bots.get_bot(pool, bot_id)
    assert bot is not None and bot.active_rev == rev_a
    latest = (await deployments.list_deployments(pool, bot_id))[0]
    assert (latest.rev_hash, latest.status, latest.failed_stage) == (rev_b, "failed", "preflight")
    assert stage_trail(latest) == [("preflight", "started"), ("preflight", "failed")]
    assert failed["stage"] == "preflight" and failed["deploymentId"] == latest.id and "sha256" in failed["reason"]
    assert "DeployFlipped" not in events.types()


async def test_deploying_an_unknown_revision_fails_before_any_record(
    pool: Pool, broker: dramatiq.Broker, owner: tuple[UUID, UUID]
) -> None:
    bot_id = await new_bot(pool, owner)
    done = await deployed(pool, broker, bot_id, "0" * 64)
    assert done.status == "failed" and done.error == f"bot {bot_id} has no revision {'0' * 64}; generate it first"
    assert await deployments.list_deployments(pool, bot_id) == []


async def test_concurrent_deploys_of_one_bot_are_serialised_and_no_flip_is_lost(
    pool: Pool, broker: dramatiq.Broker, owner: tuple[UUID, UUID]
) -> None:
    # Given four revisions of one bot
    bot_id = await new_bot(pool, owner)
    revs = [await generated(pool, broker, bot_id, spec_for(bot_id, greeting=g)) for g in "CDEF"]
    # When all four are deployed at the same moment (the worker runs four at once)
    enqueued = await asyncio.gather(
        *(enqueue_deploy(pool, broker, bot_id=bot_id, rev_hash=r, user_id=None, idempotency_key=None) for r in revs)
    )
    done = await asyncio.gather(*(wait_task(pool, created(t).id) for t in enqueued))
    # Then all succeed, strictly one after another: each started from what the previous one flipped to
    assert [t.status for t in done] == ["succeeded"] * 4
    chain = sorted(await deployments.list_deployments(pool, bot_id), key=lambda d: d.id)
    assert {d.rev_hash for d in chain} == set(revs)
    assert [d.previous_rev for d in chain] == [None, *(d.rev_hash for d in chain[:-1])]
    for before, after in itertools.pairwise(chain):
        assert before.finished_at is not None and before.finished_at <= after.stages[0].at
    bot = await bots.get_bot(pool, bot_id)
    assert bot is not None and bot.active_rev == chain[-1].rev_hash


async def test_an_incompatible_state_shape_is_refused_naming_the_keys_unless_forced(
    pool: Pool, broker: dramatiq.Broker, redis_client: Redis, owner: tuple[UUID, UUID]
) -> None:
    # Given a bot serving a spec with `name` (string, PII), `age` and `score` (numbers)
    bot_id = await new_bot(pool, owner)
    old = await generated(pool, broker, bot_id, spec_for(bot_id, variables=OLD_VARS))
    assert (await deployed(pool, broker, bot_id, old)).status == "succeeded"
    # And a new spec that drops `age`, unflags `name`, makes `score` a string and adds `city` (adding is fine)
    variables = {"name": {"type": "string"}, "score": {"type": "string"}, "city": {"type": "string"}}
    new = await generated(pool, broker, bot_id, spec_for(bot_id, greeting="New", variables=variables))
    # When it is deployed, it is refused at compat, naming the differing keys
    async with Events(redis_client, {bot_id}) as events:
        refused = await deployed(pool, broker, bot_id, new)
        failed = await events.wait_for("DeployFailed")
    assert refused.status == "failed" and refused.error is not None
    assert refused.error == (
        "deploy failed at compat: state.vars incompatible with the active revision (age, name, score): "
        "removed: age (number, removed); type changed: score (number -> string); "
        "PII flag changed: name (pii -> not pii); deploy with forceIncompatible to override"
    )
    assert failed["stage"] == "compat" and failed["reason"] == refused.error
    bot = await bots.get_bot(pool, bot_id)
    assert bot is not None and bot.active_rev == old
    # When it is deployed with the override, it goes through and the record says it was forced
    forced = await deployed(pool, broker, bot_id, new, force_incompatible=True)
    assert forced.status == "succeeded", forced.error
    bot = await bots.get_bot(pool, bot_id)
    assert bot is not None and bot.active_rev == new
    latest = (await deployments.list_deployments(pool, bot_id))[0]
    compat = next(s for s in latest.stages if s.stage == "compat" and s.status == "passed")
    assert compat.detail.startswith("forced: state.vars incompatible") and "age" in compat.detail


@pytest.fixture
async def runtime(settings: Settings, options: WorkerOptions) -> AsyncIterator[Runtime]:
    """The workers' runtime on the test's loop, to run single stages."""
    made = await open_runtime(settings, options)
    try:
        yield made
    finally:
        await made.aclose()


def context(bot_id: str, source: str, rev_hash: str) -> DeployContext:
    spec = spec_for(bot_id)
    files = {"bot.js": source.encode(), "spec.json": b"{}", "rev.json": b"{}"}
    revision = stored_revision(bot_id, rev_hash, files, {}, "file:///nowhere/")
    return DeployContext(bot_id, rev_hash, "deploy", False, 0, None, revision=revision, spec=spec, source=source)


async def test_the_health_stage_refuses_a_program_that_answers_differently_from_the_reference(
    runtime: Runtime,
) -> None:
    spec = spec_for("health-bot")
    assert synthetic_update(spec) == {"text": "/start", "chat": 1}
    good = CompilerGenerator().generate(spec, None)
    assert "identical to the reference" in await health(runtime, context("health-bot", good, "1" * 64))
    wrong = good.replace('["Hello", "Привет"]', '["Hullo", "Привет"]')
    assert wrong != good
    with pytest.raises(StageFailed, match=r"the answer to '/start' differs from the reference: divergence") as caught:
        await health(runtime, context("health-bot", wrong, "2" * 64))
    assert "Hullo" in caught.value.reason


async def test_the_prewarm_stage_refuses_a_program_that_does_not_load(runtime: Runtime) -> None:
    with pytest.raises(StageFailed, match=r"bot\.js does not load in a sandbox"):
        await prewarm(runtime, context("warm-bot", "function step(input) { return", "3" * 64))
    assert "3" * 64 not in runtime.sandboxes
    assert (
        await prewarm(runtime, context("warm-bot", CompilerGenerator().generate(spec_for("warm-bot"), None), "4" * 64))
        == "sandbox loaded"
    )
    assert "4" * 64 in runtime.sandboxes
