"""generate: spec version -> revision, through a real worker on Redis and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import dramatiq
import pytest
from redis.asyncio import Redis

from botkiln.infra.artifacts_fs import FsArtifactStore
from botkiln.infra.db import Pool, revisions, tasks
from botkiln.infra.db.tasks import IdempotencyKeyReused
from botkiln.workers import enqueue_generate
from tests.workers.support import Events, created, new_bot, save_spec, sent_messages, spec_for, wait_task

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("worker")]


async def test_a_spec_version_becomes_a_stored_and_recorded_revision(
    pool: Pool, broker: dramatiq.Broker, redis_client: Redis, store: FsArtifactStore, owner: tuple[UUID, UUID]
) -> None:
    # Given a bot with a saved spec and a subscriber listening to it
    bot_id = await new_bot(pool, owner)
    version = await save_spec(pool, bot_id, spec_for(bot_id))
    async with Events(redis_client, {bot_id}) as events:
        # When generate runs
        task = created(
            await enqueue_generate(
                pool, broker, bot_id=bot_id, spec_version=version, user_id=owner[0], idempotency_key="gen-1"
            )
        )
        done = await wait_task(pool, task.id)
        succeeded = await events.wait_for("GenerateSucceeded")
    # Then the task succeeded with the revision, which is stored and recorded
    assert done.status == "succeeded" and done.attempts == 1 and done.lease_owner is None
    rev_hash = done.result["revHash"]
    assert done.result == {"revHash": rev_hash, "reused": False}
    record = await revisions.get_revision(pool, bot_id, rev_hash)
    assert record is not None and record.spec_version == version and record.created_by == owner[0]
    stored = store.get_revision(bot_id, rev_hash)
    assert record.artifacts["bot.js"].sha256 == stored.rev["artifacts"]["bot.js"]["sha256"]
    # And the subscriber saw it start, progress and succeed, in that order
    kinds = events.types(task.id)
    assert kinds[0] == "GenerateStarted" and kinds[-1] == "GenerateSucceeded"
    assert "GenerateProgress" in kinds
    assert succeeded["revHash"] == rev_hash and succeeded["botId"] == bot_id


async def test_generating_the_same_inputs_again_reuses_the_revision_without_building(
    pool: Pool, broker: dramatiq.Broker, redis_client: Redis, owner: tuple[UUID, UUID]
) -> None:
    bot_id = await new_bot(pool, owner)
    spec = spec_for(bot_id, greeting="Hi there")
    first_version = await save_spec(pool, bot_id, spec)
    first = created(
        await enqueue_generate(pool, broker, bot_id=bot_id, spec_version=first_version, user_id=owner[0],
                               idempotency_key="same-key")
    )  # fmt: skip
    first_done = await wait_task(pool, first.id)
    assert first_done.status == "succeeded"

    # The same idempotency key returns the same task and sends nothing
    with sent_messages(broker) as sent:
        again = await enqueue_generate(
            pool, broker, bot_id=bot_id, spec_version=first_version, user_id=owner[0], idempotency_key="same-key"
        )
    assert isinstance(again, tasks.Task) and again.id == first.id and sent == []
    # ... and the same key for a different request is refused
    reused = await enqueue_generate(
        pool, broker, bot_id=bot_id, spec_version=first_version + 1, user_id=owner[0], idempotency_key="same-key"
    )
    assert isinstance(reused, IdempotencyKeyReused) and reused.task_id == first.id

    # A new version with the same spec is the same build inputs: the revision is reused, not rebuilt
    second_version = await save_spec(pool, bot_id, {**spec, "meta": {**spec["meta"], "name": spec["meta"]["name"]}})
    async with Events(redis_client, {bot_id}) as events:
        second = created(
            await enqueue_generate(pool, broker, bot_id=bot_id, spec_version=second_version, user_id=owner[0],
                                   idempotency_key="other-key")
        )  # fmt: skip
        second_done = await wait_task(pool, second.id)
        await events.wait_for("GenerateSucceeded")
    assert second_done.result == {"revHash": first_done.result["revHash"], "reused": True}
    assert "GenerateProgress" not in events.types(second.id)
    assert len(await revisions.list_revisions(pool, bot_id)) == 1


async def test_an_invalid_spec_fails_the_task_with_the_reason(
    pool: Pool, broker: dramatiq.Broker, redis_client: Redis, owner: tuple[UUID, UUID]
) -> None:
    bot_id = await new_bot(pool, owner)
    spec = spec_for(bot_id)
    spec["commands"][0]["flow"] = "nowhere"
    version = await save_spec(pool, bot_id, spec)  # saving does not validate; generating does
    async with Events(redis_client, {bot_id}) as events:
        task = created(
            await enqueue_generate(pool, broker, bot_id=bot_id, spec_version=version, user_id=None,
                                   idempotency_key=None)
        )  # fmt: skip
        done = await wait_task(pool, task.id)
        failed = await events.wait_for("GenerateFailed")
    assert done.status == "failed" and done.attempts == 1
    assert done.error is not None and "the spec is invalid" in done.error and "/commands/0/flow" in done.error
    assert "nowhere" in done.error
    assert failed["reason"] == done.error
    assert await revisions.list_revisions(pool, bot_id) == []


async def test_a_missing_spec_version_fails_without_retrying(
    pool: Pool, broker: dramatiq.Broker, owner: tuple[UUID, UUID]
) -> None:
    bot_id = await new_bot(pool, owner)
    task = created(
        await enqueue_generate(pool, broker, bot_id=bot_id, spec_version=7, user_id=None, idempotency_key=None)
    )
    done = await wait_task(pool, task.id)
    assert done.status == "failed" and done.attempts == 1
    assert done.error == f"bot {bot_id} has no spec version 7"


async def test_an_unreachable_store_is_retried_with_backoff_until_it_recovers(
    pool: Pool, broker: dramatiq.Broker, artifacts_dir: Path, owner: tuple[UUID, UUID]
) -> None:
    # Given the store cannot create the bot's folder (a file is in the way): a transient store failure
    bot_id = await new_bot(pool, owner)
    blocker = artifacts_dir / "bots" / bot_id
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("in the way")
    version = await save_spec(pool, bot_id, spec_for(bot_id, greeting="Retry me"))
    task = created(
        await enqueue_generate(pool, broker, bot_id=bot_id, spec_version=version, user_id=None, idempotency_key=None)
    )
    # When the first attempt fails, the task goes back to the queue with the error
    first = await wait_task(pool, task.id, until=lambda t: t.status == "queued" and t.attempts == 1)
    assert first.error is not None and "ArtifactStoreUnavailable" in first.error
    # Then, once the store works again, Dramatiq's retry builds it
    blocker.unlink()
    done = await wait_task(pool, task.id)
    assert done.status == "succeeded" and done.attempts == 2 and done.error is None
