"""recovery: expired leases are re-queued or failed, lost messages are sent again.

The worker's own monitor is off in this module: each test runs ``recover`` itself,
so it can look at exactly what one pass did. A "dead worker" is simulated the way
it looks from outside: the task was claimed with a lease nobody renews, and it
may have left a deployment open at some stage.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from uuid import UUID

import dramatiq
import pytest
from redis.asyncio import Redis

from botkiln.infra.db import Pool, bots, deployments, tasks
from botkiln.infra.settings import Settings
from botkiln.workers import Runtime, WorkerOptions, open_runtime, recover
from botkiln.workers.deploy import ACTOR as DEPLOY
from tests.workers.support import Events, deployed, generated, new_bot, spec_for, wait_task

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("worker")]

DEAD = "dead-host:4242:0123456789ab"


class Pause:
    """A switch the worker's stage hook obeys: hold deploys at ``stage`` until released."""

    def __init__(self) -> None:
        self.stage: str | None = None
        self.reached = threading.Event()
        self.release = threading.Event()

    async def hook(self, stage: str, deployment_id: int) -> None:
        if stage != self.stage:
            return
        self.reached.set()
        while not self.release.is_set():  # noqa: ASYNC110 - set from the test's thread, not this loop
            await asyncio.sleep(0.02)

    async def wait_reached(self) -> None:
        for _ in range(500):
            if self.reached.is_set():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"no deploy reached {self.stage}")


PAUSE = Pause()


@pytest.fixture(scope="module")
def options() -> WorkerOptions:
    """No monitor in the worker; stale queued tasks are re-sent after half a second; deploys pausable."""
    return WorkerOptions(lease_s=2.0, recovery_interval_s=0, stale_queued_s=0.5, stage_hook=PAUSE.hook)


@pytest.fixture
def pause() -> Iterator[Pause]:
    """The worker's pause switch, reset and released after the test."""
    PAUSE.stage = None
    PAUSE.reached.clear()
    PAUSE.release.clear()
    yield PAUSE
    PAUSE.release.set()


@pytest.fixture
async def runtime(settings: Settings, options: WorkerOptions) -> AsyncIterator[Runtime]:
    """The workers' runtime, opened on the test's loop to call ``recover``."""
    made = await open_runtime(settings, options)
    try:
        yield made
    finally:
        await made.aclose()


async def abandoned_deploy(
    pool: Pool, bot_id: str, rev_hash: str, *, stage: str, max_attempts: int = 3
) -> tuple[tasks.Task, deployments.Deployment]:
    """A deploy task a worker claimed, started at ``stage``, then died on (its lease already expired)."""
    enqueued = await tasks.enqueue_task(
        pool, kind="deploy", payload={"revHash": rev_hash}, actor_id=None, bot_id=bot_id, max_attempts=max_attempts
    )
    assert isinstance(enqueued, tasks.Enqueued)
    claimed = await tasks.claim_task(pool, enqueued.task.id, owner=DEAD, lease_s=0.1)
    assert claimed is not None
    dep = await deployments.start_deployment(
        pool, bot_id=bot_id, rev_hash=rev_hash, kind="deploy", actor_id=None, task_id=claimed.id
    )
    await deployments.record_stage(pool, dep.id, stage, "started")
    await asyncio.sleep(0.15)
    return claimed, dep


async def test_a_task_whose_worker_died_is_requeued_and_completed_by_a_new_attempt(
    pool: Pool, broker: dramatiq.Broker, runtime: Runtime, owner: tuple[UUID, UUID]
) -> None:
    # Given a deploy whose worker died during the health stage
    bot_id = await new_bot(pool, owner)
    rev = await generated(pool, broker, bot_id, spec_for(bot_id))
    task, dead = await abandoned_deploy(pool, bot_id, rev, stage="health")
    # When the monitor passes
    done = await recover(runtime, broker)
    # Then the task is queued again and sent; a worker finishes it on attempt 2
    assert done.requeued == [task.id] and done.failed == [] and done.resent == []
    finished = await wait_task(pool, task.id)
    assert finished.status == "succeeded" and finished.attempts == 2 and finished.lease_owner is None
    # And the dead attempt's deployment was closed as interrupted; the new one flipped
    new, old = await deployments.list_deployments(pool, bot_id)
    assert old.id == dead.id and (old.status, old.failed_stage) == ("failed", "health")
    assert old.reason is not None and old.reason.startswith("interrupted: the worker stopped during health")
    assert new.status == "succeeded" and new.task_id == task.id
    bot = await bots.get_bot(pool, bot_id)
    assert bot is not None and bot.active_rev == rev


async def test_a_task_out_of_attempts_is_failed_and_its_deployment_closed(
    pool: Pool, broker: dramatiq.Broker, runtime: Runtime, redis_client: Redis, owner: tuple[UUID, UUID]
) -> None:
    # Given A serves, and a deploy of B with a single attempt died while pre-warming
    bot_id = await new_bot(pool, owner)
    rev_a = await generated(pool, broker, bot_id, spec_for(bot_id, greeting="A"))
    rev_b = await generated(pool, broker, bot_id, spec_for(bot_id, greeting="B"))
    assert (await deployed(pool, broker, bot_id, rev_a)).status == "succeeded"
    task, dead = await abandoned_deploy(pool, bot_id, rev_b, stage="prewarm", max_attempts=1)
    # When the monitor passes
    async with Events(redis_client, {bot_id}) as events:
        done = await recover(runtime, broker)
        failed = await events.wait_for("DeployFailed")
    # Then the task is failed for good, saying the worker stopped, and is no longer running
    assert done.failed == [task.id] and done.requeued == []
    ended = await tasks.get_task(pool, task.id)
    assert ended is not None and ended.status == "failed" and ended.lease_owner is None
    assert ended.error == "the worker stopped (lease expired) on attempt 1 of 1"
    # And its deployment is closed at the stage it reached; A still serves
    closed = await deployments.get_deployment(pool, dead.id)
    assert closed is not None and (closed.status, closed.failed_stage) == ("failed", "prewarm")
    assert failed["deploymentId"] == dead.id and failed["stage"] == "prewarm"
    bot = await bots.get_bot(pool, bot_id)
    assert bot is not None and bot.active_rev == rev_a


async def test_a_queued_task_whose_message_was_lost_is_sent_again_once(
    pool: Pool, broker: dramatiq.Broker, runtime: Runtime, owner: tuple[UUID, UUID]
) -> None:
    # Given a deploy task recorded but never sent (the API died between the row and the message)
    bot_id = await new_bot(pool, owner)
    rev = await generated(pool, broker, bot_id, spec_for(bot_id))
    enqueued = await tasks.enqueue_task(pool, kind="deploy", payload={"revHash": rev}, actor_id=None, bot_id=bot_id)
    assert isinstance(enqueued, tasks.Enqueued)
    # When it has waited longer than stale_queued_s, one pass sends it and the next does not
    await asyncio.sleep(0.6)
    first = await recover(runtime, broker)
    second = await recover(runtime, broker)
    assert enqueued.task.id in first.resent and enqueued.task.id not in second.resent
    finished = await wait_task(pool, enqueued.task.id)
    assert finished.status == "succeeded" and finished.attempts == 1


async def test_a_live_lease_is_left_alone(
    pool: Pool, broker: dramatiq.Broker, runtime: Runtime, owner: tuple[UUID, UUID]
) -> None:
    bot_id = await new_bot(pool, owner)
    enqueued = await tasks.enqueue_task(
        pool, kind="deploy", payload={"revHash": "0" * 64}, actor_id=None, bot_id=bot_id
    )
    assert isinstance(enqueued, tasks.Enqueued)
    assert await tasks.claim_task(pool, enqueued.task.id, owner=DEAD, lease_s=30) is not None
    done = await recover(runtime, broker)
    assert enqueued.task.id not in done.requeued + done.failed + done.resent
    still = await tasks.get_task(pool, enqueued.task.id)
    assert still is not None and still.status == "running" and still.lease_owner == DEAD


async def test_an_attempt_that_lost_its_lease_stops_without_flipping(
    pool: Pool, broker: dramatiq.Broker, pause: Pause, owner: tuple[UUID, UUID]
) -> None:
    # Given A serves and a deploy of B is held just before its flip
    bot_id = await new_bot(pool, owner)
    rev_a = await generated(pool, broker, bot_id, spec_for(bot_id, greeting="A"))
    rev_b = await generated(pool, broker, bot_id, spec_for(bot_id, greeting="B"))
    assert (await deployed(pool, broker, bot_id, rev_a)).status == "succeeded"
    pause.stage = "flip"
    enqueued = await tasks.enqueue_task(pool, kind="deploy", payload={"revHash": rev_b}, actor_id=None, bot_id=bot_id)
    assert isinstance(enqueued, tasks.Enqueued)
    broker.get_actor(DEPLOY).send(str(enqueued.task.id))
    await pause.wait_reached()
    # When its lease expires meanwhile and another owner claims the task (as after a long stall)
    await pool.execute("UPDATE tasks SET lease_until = now() - interval '1 second' WHERE id = $1", enqueued.task.id)
    assert await tasks.claim_task(pool, enqueued.task.id, owner=DEAD, lease_s=30) is not None
    pause.release.set()
    # Then the stalled attempt does not flip: A still serves, its deployment is closed, the new owner keeps the task
    for _ in range(200):
        latest = (await deployments.list_deployments(pool, bot_id, limit=1))[0]
        if latest.status != "running":
            break
        await asyncio.sleep(0.02)
    assert (latest.rev_hash, latest.status, latest.failed_stage) == (rev_b, "failed", "flip")
    assert latest.reason is not None and "LeaseLost" in latest.reason
    bot = await bots.get_bot(pool, bot_id)
    assert bot is not None and bot.active_rev == rev_a
    task = await tasks.get_task(pool, enqueued.task.id)
    assert task is not None and task.status == "running" and task.lease_owner == DEAD


async def test_a_deploy_over_its_time_limit_ends_failed_and_leaves_the_old_revision(
    pool: Pool, broker: dramatiq.Broker, pause: Pause, owner: tuple[UUID, UUID]
) -> None:
    # Given A serves and a deploy of B whose message allows it 3 s (room to reach health on a loaded machine),
    # held at health for longer
    bot_id = await new_bot(pool, owner)
    rev_a = await generated(pool, broker, bot_id, spec_for(bot_id, greeting="A"))
    rev_b = await generated(pool, broker, bot_id, spec_for(bot_id, greeting="B"))
    assert (await deployed(pool, broker, bot_id, rev_a)).status == "succeeded"
    pause.stage = "health"
    enqueued = await tasks.enqueue_task(pool, kind="deploy", payload={"revHash": rev_b}, actor_id=None, bot_id=bot_id)
    assert isinstance(enqueued, tasks.Enqueued)
    broker.get_actor(DEPLOY).send_with_options(args=(str(enqueued.task.id),), time_limit=3000)
    # When it reaches health and Dramatiq's time limit interrupts it there
    await pause.wait_reached()
    done = await wait_task(pool, enqueued.task.id, within=15)
    # Then the task is failed (not left running), the deployment closed at health, and A still serves
    assert done.status == "failed" and done.lease_owner is None
    assert done.error == "stopped: the time limit ran out or the worker is shutting down"
    latest = (await deployments.list_deployments(pool, bot_id, limit=1))[0]
    assert (latest.rev_hash, latest.status, latest.failed_stage) == (rev_b, "failed", "health")
    assert latest.reason is not None and latest.reason.startswith("interrupted at health")
    bot = await bots.get_bot(pool, bot_id)
    assert bot is not None and bot.active_rev == rev_a


async def test_a_task_sent_to_the_wrong_actor_or_with_a_broken_payload_fails_with_a_reason(
    pool: Pool, broker: dramatiq.Broker, redis_client: Redis, owner: tuple[UUID, UUID]
) -> None:
    bot_id = await new_bot(pool, owner)
    generate_task = await tasks.enqueue_task(pool, kind="generate", payload={}, actor_id=None, bot_id=bot_id)
    broken = await tasks.enqueue_task(pool, kind="deploy", payload={}, actor_id=None, bot_id=bot_id)
    assert isinstance(generate_task, tasks.Enqueued) and isinstance(broken, tasks.Enqueued)
    async with Events(redis_client, {bot_id}) as events:
        broker.get_actor(DEPLOY).send(str(generate_task.task.id))
        broker.get_actor(DEPLOY).send(str(broken.task.id))
        wrong = await wait_task(pool, generate_task.task.id)
        bug = await wait_task(pool, broken.task.id)
        await events.wait_for("DeployFailed")
    assert wrong.status == "failed" and wrong.error == f"task {wrong.id} is a 'generate' task, not 'deploy'"
    assert bug.status == "failed" and bug.error == "internal error (KeyError); see the worker log"
