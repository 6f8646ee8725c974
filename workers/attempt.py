"""One attempt at a task: claim with a lease, keep the lease, end it exactly once.

Invariants (with ``infra/db/tasks.py``):

- an attempt starts only by ``claim_task`` (queued, or running with an expired
  lease, and attempts left); a message for a task that is finished or leased by a
  live attempt does nothing, so duplicate messages are harmless;
- while the body runs, the lease is renewed every third of ``lease_s``; once a
  renewal finds the task taken over, ``lost`` is set and ``check`` raises
  ``LeaseLost`` — the new owner carries on, this attempt stops quietly;
- the attempt ends once: the body completes the task (``complete``, possibly in
  the same transaction as its last write), or ``run_attempt`` fails it:
  ``TaskFailed`` (an expected failure: not retried), a transient error (DB, Redis,
  store unreachable: back to queued and the message retried with backoff by
  Dramatiq, until ``max_attempts``), anything else (a bug: failed, logged);
- a worker that dies ends nothing: its lease runs out and ``workers/recovery.py``
  re-queues the task (or fails it when its attempts are spent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import redis.exceptions

from botkiln.infra import progress
from botkiln.infra.db import tasks
from botkiln.infra.db.pool import DatabaseUnavailable, Db
from botkiln.infra.ports import ArtifactStoreUnavailable
from botkiln.interpreter.errors import BotkilnError
from botkiln.workers.runtime import Runtime

_log = logging.getLogger(__name__)

CONTROL_QUEUE = "botkiln-control"
"""The Dramatiq queue of the control-plane actors (generate, deploy, rollback)."""
MAX_RETRIES = 5
"""Dramatiq redeliveries of one message after transient failures (the task's own ``max_attempts`` also bounds it)."""
_CLEANUP_S = 0.5


class TaskFailed(BotkilnError):
    """An expected failure: the task ends ``failed`` with ``reason`` and is not retried."""

    def __init__(self, reason: str, *, stage: str | None = None, deployment_id: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stage = stage
        self.deployment_id = deployment_id


class Transient(BotkilnError):
    """A failure worth retrying later that is not a connection error (e.g. the bot is busy)."""


class LeaseLost(BotkilnError):
    """Another attempt owns the task now; this one must stop without writing."""


_TRANSIENT = (
    Transient,
    DatabaseUnavailable,
    asyncpg.PostgresConnectionError,
    asyncpg.TransactionRollbackError,
    asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ArtifactStoreUnavailable,
    ConnectionError,
    TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of the outside world that may pass (connection, timeout, busy)."""
    return isinstance(exc, _TRANSIENT)


def retry_when(retries: int, exc: BaseException) -> bool:
    """Dramatiq's ``retry_when``: redeliver after transient failures only, at most ``MAX_RETRIES`` times."""
    return retries < MAX_RETRIES and is_transient(exc)


def new_owner() -> str:
    """A lease owner unique to one attempt: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def describe(exc: BaseException) -> str:
    """A short description of an exception for a task's error (no traceback, no secrets in our messages)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class Attempt:
    """The running attempt: the claimed task, its owner id, and whether the lease was lost."""

    rt: Runtime
    task: tasks.Task
    owner: str
    lost: bool = False

    @property
    def task_id(self) -> str:
        """The task id as text (for events and messages)."""
        return str(self.task.id)

    def check(self) -> None:
        """Raise ``LeaseLost`` if another attempt took the task over."""
        if self.lost:
            raise LeaseLost(f"task {self.task.id} was taken over; attempt {self.owner} stops")

    async def fence(self, conn: Db) -> None:
        """Prove ownership inside ``conn``'s transaction (locks the task row until commit).

        Raises:
            LeaseLost: the task is no longer this attempt's.
        """
        if not await tasks.renew_lease(conn, self.task.id, owner=self.owner, lease_s=self.rt.options.lease_s):
            self.lost = True
            self.check()

    async def complete(self, db: Db, result: Any) -> None:
        """Mark the task succeeded with ``result`` (JSON).

        Raises:
            LeaseLost: the task is no longer this attempt's.
        """
        if not await tasks.complete_task(db, self.task.id, owner=self.owner, result=result):
            self.lost = True
            self.check()

    async def emit(self, event: progress.ProgressEvent) -> None:
        """Publish a progress event; best effort (the task and deployment rows are the record)."""
        try:
            await progress.publish(self.rt.redis, event)
        except (redis.exceptions.RedisError, OSError) as exc:
            _log.warning("progress event %s of task %s not published: %s", event["type"], self.task.id, describe(exc))


Body = Callable[[Attempt], Awaitable[None]]
OnFailure = Callable[[Attempt, TaskFailed], Awaitable[None]]


async def run_attempt(rt: Runtime, task_id: UUID, kind: str, body: Body, on_failure: OnFailure) -> None:
    """Claim ``task_id`` and run ``body``; see the module docstring for how it ends.

    Raises:
        Exception: a transient failure when the task was re-queued (for Dramatiq to retry).
    """
    owner = new_owner()
    task = await tasks.claim_task(rt.db, task_id, owner=owner, lease_s=rt.options.lease_s)
    if task is None:
        _log.info("task %s: nothing to do (finished, leased elsewhere or out of attempts)", task_id)
        return
    attempt = Attempt(rt, task, owner)
    keeper = asyncio.create_task(_keep_lease(attempt))
    try:
        if task.kind != kind:
            raise TaskFailed(f"task {task_id} is a {task.kind!r} task, not {kind!r}")
        await body(attempt)
    except TaskFailed as exc:
        if await tasks.fail_task(rt.db, task.id, owner=owner, error=exc.reason, retry=False) is not None:
            await on_failure(attempt, exc)
    except LeaseLost:
        _log.warning("task %s: lease lost by %s; the new owner carries on", task_id, owner)
    except asyncio.CancelledError:
        reason = "stopped: the time limit ran out or the worker is shutting down"
        with contextlib.suppress(Exception):
            await asyncio.wait_for(tasks.fail_task(rt.db, task.id, owner=owner, error=reason, retry=False), _CLEANUP_S)
        raise
    except Exception as exc:
        await _unexpected(attempt, exc, on_failure)
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


async def _unexpected(attempt: Attempt, exc: Exception, on_failure: OnFailure) -> None:
    rt, task = attempt.rt, attempt.task
    if not is_transient(exc):
        _log.exception("task %s (%s) failed with an unexpected error", task.id, task.kind)
        reason = f"internal error ({type(exc).__name__}); see the worker log"
        if await tasks.fail_task(rt.db, task.id, owner=attempt.owner, error=reason, retry=False) is not None:
            await on_failure(attempt, TaskFailed(reason))
        return
    _log.warning("task %s (%s): transient failure on attempt %d: %s", task.id, task.kind, task.attempts, describe(exc))
    try:
        ended = await tasks.fail_task(rt.db, task.id, owner=attempt.owner, error=describe(exc), retry=True)
    except Exception as cleanup:
        _log.warning("task %s: could not record the failure (%s); its lease will expire", task.id, describe(cleanup))
        raise exc from None
    if ended is not None and ended.status == "queued":
        raise exc
    if ended is not None:
        reason = f"gave up after {ended.attempts} attempt(s): {describe(exc)}"
        await on_failure(attempt, TaskFailed(reason))


async def _keep_lease(attempt: Attempt) -> None:
    rt = attempt.rt
    interval = rt.options.lease_s / 3
    while True:
        await asyncio.sleep(interval)
        try:
            renewed = await tasks.renew_lease(rt.db, attempt.task.id, owner=attempt.owner, lease_s=rt.options.lease_s)
        except Exception as exc:
            _log.warning("task %s: lease renewal failed: %s", attempt.task.id, describe(exc))
            continue
        if not renewed:
            attempt.lost = True
            return
