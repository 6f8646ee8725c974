"""rollback: a new deployment record flipping back to an earlier revision, without rebuilding."""

from __future__ import annotations

from uuid import UUID

import dramatiq
import pytest
from redis.asyncio import Redis

from botkiln.infra.db import Pool, bots, deployments, revisions
from botkiln.infra.db.tasks import Task
from botkiln.workers import enqueue_rollback
from botkiln.workers.deploy_policy import STAGES
from tests.workers.support import Events, created, deployed, generated, new_bot, spec_for, stage_trail, wait_task

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("worker")]


async def rolled_back(pool: Pool, broker: dramatiq.Broker, bot_id: str, **options: object) -> Task:
    task = created(
        await enqueue_rollback(pool, broker, bot_id=bot_id, user_id=None, idempotency_key=None, **options)  # type: ignore[arg-type]
    )
    return await wait_task(pool, task.id)


async def active(pool: Pool, bot_id: str) -> str | None:
    bot = await bots.get_bot(pool, bot_id)
    assert bot is not None
    return bot.active_rev


async def test_rollback_flips_back_with_a_new_record_and_leaves_history_untouched(
    pool: Pool, broker: dramatiq.Broker, redis_client: Redis, owner: tuple[UUID, UUID]
) -> None:
    # Given A was deployed, then B
    bot_id = await new_bot(pool, owner)
    rev_a = await generated(pool, broker, bot_id, spec_for(bot_id, greeting="A"))
    rev_b = await generated(pool, broker, bot_id, spec_for(bot_id, greeting="B"))
    assert (await deployed(pool, broker, bot_id, rev_a)).status == "succeeded"
    assert (await deployed(pool, broker, bot_id, rev_b)).status == "succeeded"
    history = await deployments.list_deployments(pool, bot_id)
    # When the bot is rolled back
    async with Events(redis_client, {bot_id}) as events:
        done = await rolled_back(pool, broker, bot_id, why="B misbehaves")
        flipped = await events.wait_for("RollbackFlipped")
    # Then A serves again, through a new deployment of kind rollback pointing at A
    assert done.status == "succeeded", done.error
    assert await active(pool, bot_id) == rev_a
    latest, *older = await deployments.list_deployments(pool, bot_id)
    assert (latest.kind, latest.rev_hash, latest.previous_rev, latest.why) == ("rollback", rev_a, rev_b, "B misbehaves")
    assert latest.status == "succeeded" and stage_trail(latest)[-1] == ("flip", "passed")
    assert [s for s, status in stage_trail(latest) if status == "passed"] == list(STAGES)
    assert "conformance passed at build" in latest.stages[1].detail
    assert older == history  # earlier records are exactly as they were
    assert flipped["revHash"] == rev_a and flipped["deploymentId"] == latest.id
    assert "DeployFlipped" not in events.types(done.id)
    # And nothing was rebuilt
    assert len(await revisions.list_revisions(pool, bot_id)) == 2
    # When rolled back again, the last flip is undone: B serves again
    again = await rolled_back(pool, broker, bot_id)
    assert again.status == "succeeded" and await active(pool, bot_id) == rev_b
    assert len(await deployments.list_deployments(pool, bot_id)) == 4


async def test_a_bot_without_an_earlier_revision_has_nothing_to_roll_back_to(
    pool: Pool, broker: dramatiq.Broker, owner: tuple[UUID, UUID]
) -> None:
    bot_id = await new_bot(pool, owner)
    rev = await generated(pool, broker, bot_id, spec_for(bot_id))
    assert (await deployed(pool, broker, bot_id, rev)).status == "succeeded"
    done = await rolled_back(pool, broker, bot_id)
    assert done.status == "failed"
    assert done.error == f"nothing to roll back to: bot {bot_id} has no earlier active revision"
    assert await active(pool, bot_id) == rev
    assert len(await deployments.list_deployments(pool, bot_id)) == 1


async def test_rolling_back_to_a_revision_that_never_served_is_refused(
    pool: Pool, broker: dramatiq.Broker, owner: tuple[UUID, UUID]
) -> None:
    bot_id = await new_bot(pool, owner)
    rev_a = await generated(pool, broker, bot_id, spec_for(bot_id, greeting="A"))
    rev_b = await generated(pool, broker, bot_id, spec_for(bot_id, greeting="B"))
    assert (await deployed(pool, broker, bot_id, rev_a)).status == "succeeded"
    done = await rolled_back(pool, broker, bot_id, to_rev=rev_b)
    assert done.status == "failed" and done.error == f"revision {rev_b} never served bot {bot_id}; deploy it instead"
    assert await active(pool, bot_id) == rev_a


async def test_a_rollback_to_an_incompatible_state_shape_needs_the_override(
    pool: Pool, broker: dramatiq.Broker, owner: tuple[UUID, UUID]
) -> None:
    # Given A (without `email`) was replaced, with the override, by B which declares `email` as PII
    bot_id = await new_bot(pool, owner)
    rev_a = await generated(pool, broker, bot_id, spec_for(bot_id, greeting="A"))
    b_vars = {"name": {"type": "string", "pii": True}, "email": {"type": "string", "pii": True}}
    rev_b = await generated(pool, broker, bot_id, spec_for(bot_id, greeting="B", variables=b_vars))
    assert (await deployed(pool, broker, bot_id, rev_a)).status == "succeeded"
    assert (await deployed(pool, broker, bot_id, rev_b)).status == "succeeded"  # adding a key is compatible
    # When rolling back to A, which would drop `email`, the rollback is refused naming the key
    refused = await rolled_back(pool, broker, bot_id, to_rev=rev_a)
    assert refused.status == "failed" and refused.error is not None
    assert refused.error.startswith(
        "rollback failed at compat: state.vars incompatible with the active revision (email)"
    )
    assert await active(pool, bot_id) == rev_b
    # And the forced rollback, which still passes every other stage, goes through
    forced = await rolled_back(pool, broker, bot_id, to_rev=rev_a, force_incompatible=True)
    assert forced.status == "succeeded" and await active(pool, bot_id) == rev_a
