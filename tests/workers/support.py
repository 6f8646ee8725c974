"""Helpers of the worker tests: bots, specs, waiting for tasks, watching progress events."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import dramatiq
from redis.asyncio import Redis

from botkiln.infra.crypto import SecretBox, generate_secret_key
from botkiln.infra.db import Pool, bots, projects, specs, tasks, users
from botkiln.infra.db.tasks import IdempotencyKeyReused, Task
from botkiln.infra.progress import ProgressEvent, subscribe
from botkiln.workers import enqueue_deploy, enqueue_generate
from tests.conftest import minimal_spec

SECRET_KEY = generate_secret_key()
BOX = SecretBox.from_setting(SECRET_KEY)


async def make_owner(pool: Pool) -> tuple[UUID, UUID]:
    """A user and a project they own."""
    user = await users.create_user(pool, email=f"w{secrets.token_hex(4)}@example.com", password="correct horse 1")
    assert isinstance(user, users.User)
    project = await projects.create_project(pool, name="workers", owner_id=user.id)
    return user.id, project.id


async def new_bot(pool: Pool, owner: tuple[UUID, UUID]) -> str:
    """A fresh bot with a unique id."""
    bot_id = f"w-{secrets.token_hex(5)}"
    made = await bots.create_bot(
        pool, BOX, bot_id=bot_id, project_id=owner[1], name="Worker test", token="123:abc",
        webhook_secret=secrets.token_hex(16), created_by=owner[0],
    )  # fmt: skip
    assert isinstance(made, bots.Bot)
    return bot_id


def spec_for(bot_id: str, *, greeting: str = "Hello", variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """The minimal test spec for ``bot_id``, with a greeting and state variables to vary."""
    spec = minimal_spec()
    spec["meta"]["botId"] = bot_id
    spec["localization"]["strings"]["hello"]["en"] = greeting
    if variables is not None:
        spec["state"]["vars"] = copy.deepcopy(variables)
    return spec


async def save_spec(pool: Pool, bot_id: str, spec: dict[str, Any]) -> int:
    """Save ``spec`` as the bot's next version; its number."""
    saved = await specs.save_spec_version(pool, bot_id, spec, await specs.latest_version(pool, bot_id), author_id=None)
    assert isinstance(saved, specs.SpecSaved)
    return saved.version.version


async def wait_task(
    pool: Pool, task_id: UUID, *, within: float = 20.0, until: Callable[[Task], bool] | None = None
) -> Task:
    """The task once it succeeded or failed (or once ``until`` holds)."""
    deadline = time.monotonic() + within
    while True:
        task = await tasks.get_task(pool, task_id)
        assert task is not None
        if until(task) if until is not None else task.status in ("succeeded", "failed"):
            return task
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} not there after {within}s: {task}")
        await asyncio.sleep(0.05)


def created(outcome: Task | IdempotencyKeyReused) -> Task:
    """The task an enqueue returned."""
    assert isinstance(outcome, Task), outcome
    return outcome


async def generated(pool: Pool, broker: dramatiq.Broker, bot_id: str, spec: dict[str, Any]) -> str:
    """Save ``spec`` and generate its revision; the revHash."""
    version = await save_spec(pool, bot_id, spec)
    task = created(
        await enqueue_generate(pool, broker, bot_id=bot_id, spec_version=version, user_id=None, idempotency_key=None)
    )
    done = await wait_task(pool, task.id)
    assert done.status == "succeeded", done.error
    return str(done.result["revHash"])


async def deployed(pool: Pool, broker: dramatiq.Broker, bot_id: str, rev_hash: str, **options: Any) -> Task:
    """Deploy ``rev_hash`` and wait for the task to end."""
    task = created(
        await enqueue_deploy(
            pool, broker, bot_id=bot_id, rev_hash=rev_hash, user_id=None, idempotency_key=None, **options
        )
    )
    return await wait_task(pool, task.id)


class Events:
    """Progress events of some bots, collected from a subscription made active before use."""

    def __init__(self, redis: Redis, bot_ids: set[str] | None) -> None:
        self.redis = redis
        self.bot_ids = bot_ids
        self.items: list[ProgressEvent] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Events:
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._collect(ready))
        await asyncio.wait_for(ready.wait(), 5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _collect(self, ready: asyncio.Event) -> None:
        async for event in subscribe(self.redis, self.bot_ids, ready=ready):
            self.items.append(event)

    async def wait_for(self, type: str, *, within: float = 10.0) -> ProgressEvent:
        """The first event of ``type``, waiting for it if needed."""
        deadline = time.monotonic() + within
        while True:
            for event in self.items:
                if event["type"] == type:
                    return event
            if time.monotonic() > deadline:
                raise AssertionError(f"no {type} event within {within}s; got {[e['type'] for e in self.items]}")
            await asyncio.sleep(0.02)

    def types(self, task_id: UUID | None = None) -> list[str]:
        """Event types in order (of one task, if given)."""
        return [e["type"] for e in self.items if task_id is None or e["taskId"] == str(task_id)]


@contextlib.contextmanager
def sent_messages(broker: dramatiq.Broker) -> Iterator[list[dramatiq.Message[Any]]]:
    """Record every message ``broker`` enqueues inside the block."""
    sent: list[dramatiq.Message[Any]] = []
    original: Callable[..., Any] = broker.enqueue

    def spy(message: dramatiq.Message[Any], **kwargs: Any) -> Any:
        sent.append(message)
        return original(message, **kwargs)

    broker.enqueue = spy  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        del broker.enqueue


def stage_trail(deployment: Any) -> list[tuple[str, str]]:
    """(stage, status) pairs of a deployment, in order."""
    return [(s.stage, s.status) for s in deployment.stages]


def loads(data: bytes | str) -> Any:
    """JSON from a pub/sub payload."""
    return json.loads(data)
