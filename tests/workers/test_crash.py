"""A worker process SIGKILLed mid-deploy leaves a consistent state, which recovery completes.

The deploy runs in a real worker subprocess on its own Dramatiq namespace; the
test kills it while the health stage is running (it waits there, see
``crash_worker.py``), checks what the dead worker left, then starts this module's
in-process worker (with its recovery monitor) on another namespace and watches
recovery take over.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import UUID

import dramatiq
import pytest

from botkiln.infra.db import Pool, bots, deployments, tasks
from botkiln.infra.settings import Settings
from botkiln.workers import build_broker
from botkiln.workers.enqueue import send_task
from tests.workers.support import deployed, generated, new_bot, spec_for, wait_task

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


class CrashWorker:
    """The worker subprocess, its broker (to send it work) and its pause switch."""

    def __init__(self, settings: Settings, tmp_path: Path) -> None:
        self.namespace = f"botkiln-crash-{secrets.token_hex(4)}"
        self.pause_file = tmp_path / "pause"
        self.log = tmp_path / "crash_worker.log"
        self.broker = build_broker(settings, namespace=self.namespace)
        env = {
            **os.environ,
            "BOTKILN_DATABASE_URL": settings.database_url or "",
            "BOTKILN_ARTIFACTS": settings.artifacts_url,
            "BOTKILN_REDIS_URL": settings.redis_url,
        }
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.workers.crash_worker", "--namespace", self.namespace,
                 "--pause-file", str(self.pause_file), "--lease", "1.0"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind runs in the worker."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        self.broker.flush_all()
        self.broker.close()


@pytest.fixture
def crash_worker(settings: Settings, tmp_path: Path) -> Iterator[CrashWorker]:
    """A crash worker subprocess, killed at the end if still alive."""
    made = CrashWorker(settings, tmp_path)
    yield made
    made.close()


@pytest.fixture
async def inprocess_worker(request: pytest.FixtureRequest) -> AsyncIterator[dramatiq.Worker]:
    """This module's in-process worker (with recovery), started only when a test asks for it."""
    yield request.getfixturevalue("worker")


async def wait_for_stage(
    pool: Pool, bot_id: str, task_id: UUID, stage: str, *, within: float = 20.0
) -> deployments.Deployment:
    """The task's deployment once ``stage`` started on it."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for found in await deployments.list_deployments(pool, bot_id, limit=5):
            if found.task_id == task_id and any(s.stage == stage for s in found.stages):
                return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} did not reach {stage} within {within}s")


async def active(pool: Pool, bot_id: str) -> str | None:
    bot = await bots.get_bot(pool, bot_id)
    assert bot is not None
    return bot.active_rev


async def start_paused_deploy(
    pool: Pool, crash_worker: CrashWorker, owner: tuple[UUID, UUID], *, max_attempts: int
) -> tuple[str, str, str, UUID, deployments.Deployment]:
    """A bot serving A, with a deploy of B killed during health; (bot, A, B, task id, dead deployment)."""
    bot_id = await new_bot(pool, owner)
    rev_a = await generated(pool, crash_worker.broker, bot_id, spec_for(bot_id, greeting="A"))
    rev_b = await generated(pool, crash_worker.broker, bot_id, spec_for(bot_id, greeting="B"))
    assert (await deployed(pool, crash_worker.broker, bot_id, rev_a)).status == "succeeded"
    crash_worker.pause_file.touch()
    enqueued = await tasks.enqueue_task(
        pool, kind="deploy", payload={"revHash": rev_b}, actor_id=None, bot_id=bot_id, max_attempts=max_attempts
    )
    assert isinstance(enqueued, tasks.Enqueued)
    await send_task(crash_worker.broker, "deploy", enqueued.task.id)
    paused = await wait_for_stage(pool, bot_id, enqueued.task.id, "health")
    crash_worker.kill()
    return bot_id, rev_a, rev_b, enqueued.task.id, paused


async def test_a_worker_killed_mid_deploy_leaves_the_old_revision_and_recovery_completes_the_deploy(
    pool: Pool, crash_worker: CrashWorker, owner: tuple[UUID, UUID], request: pytest.FixtureRequest
) -> None:
    # Given A serves and the worker deploying B is SIGKILLed during the health stage
    bot_id, rev_a, rev_b, task_id, dead = await start_paused_deploy(pool, crash_worker, owner, max_attempts=3)
    # Then traffic is still entirely on A, and the task and deployment show the dead attempt
    assert await active(pool, bot_id) == rev_a
    stuck = await tasks.get_task(pool, task_id)
    assert stuck is not None and stuck.status == "running" and stuck.attempts == 1
    assert (await deployments.get_deployment(pool, dead.id)).status == "running"  # type: ignore[union-attr]
    # When a live worker with the recovery monitor comes up
    request.getfixturevalue("worker")
    seen: set[str | None] = set()
    deadline = time.monotonic() + 20
    while (task := await tasks.get_task(pool, task_id)) is not None and task.status != "succeeded":
        seen.add(await active(pool, bot_id))
        assert time.monotonic() < deadline, f"recovery did not finish the deploy: {task}"
        await asyncio.sleep(0.05)
    # Then the lease expired, the task was re-queued and its second attempt flipped to B
    assert task is not None and task.attempts == 2 and task.lease_owner is None
    assert seen <= {rev_a, rev_b} and await active(pool, bot_id) == rev_b
    # And the dead attempt's deployment is closed as interrupted at health; a new record did the flip
    retried, interrupted, first = await deployments.list_deployments(pool, bot_id)
    assert interrupted.id == dead.id and (interrupted.status, interrupted.failed_stage) == ("failed", "health")
    assert interrupted.reason is not None and interrupted.reason.startswith(
        "interrupted: the worker stopped during health"
    )
    assert (retried.status, retried.rev_hash, retried.previous_rev) == ("succeeded", rev_b, rev_a)
    assert first.status == "succeeded" and first.rev_hash == rev_a


async def test_a_worker_killed_on_the_last_attempt_fails_the_task_and_keeps_the_old_revision(
    pool: Pool, crash_worker: CrashWorker, owner: tuple[UUID, UUID], request: pytest.FixtureRequest
) -> None:
    # Given the only attempt of a deploy of B dies during health
    bot_id, rev_a, _, task_id, dead = await start_paused_deploy(pool, crash_worker, owner, max_attempts=1)
    # When a live worker with the recovery monitor comes up
    request.getfixturevalue("worker")
    task = await wait_task(pool, task_id)
    # Then the task failed, saying the worker stopped; A still serves; the deployment is closed at health
    assert task.status == "failed" and task.lease_owner is None
    assert task.error == "the worker stopped (lease expired) on attempt 1 of 1"
    assert await active(pool, bot_id) == rev_a
    closed = await deployments.get_deployment(pool, dead.id)
    assert closed is not None and (closed.status, closed.failed_stage) == ("failed", "health")
    assert closed.reason is not None and "interrupted" in closed.reason
