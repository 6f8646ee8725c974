"""workers/broker.py and workers/process.py: how the broker, its actors and a worker are put together."""

from __future__ import annotations

import secrets
from pathlib import Path

import asyncpg
import dramatiq
import dramatiq.broker
import pytest
import redis.exceptions
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.middleware import AsyncIO, Retries, TimeLimit

import botkiln.workers
from botkiln.infra.db.pool import DatabaseUnavailable
from botkiln.infra.ports import ArtifactCorrupt, ArtifactStoreUnavailable
from botkiln.infra.settings import Settings
from botkiln.workers import WorkerOptions, build_broker, start_worker
from botkiln.workers.attempt import CONTROL_QUEUE, MAX_RETRIES, TaskFailed, Transient, retry_when
from botkiln.workers.broker import WorkerBootFailed, WorkerResources, worker_resources
from botkiln.workers.execute import RUNTIME_QUEUE


def test_the_public_surface_is_pinned() -> None:
    assert botkiln.workers.__all__ == [
        "CompatReport", "ControlActors", "Recovered", "Runtime", "WorkerOptions", "WorkerResources",
        "build_broker", "compare_state", "enqueue_deploy", "enqueue_generate", "enqueue_rollback", "open_runtime",
        "recover", "register_actors", "serve", "start_worker",
    ]  # fmt: skip


def test_the_broker_declares_its_actors_on_itself_with_their_options_and_no_global_broker(settings: Settings) -> None:
    broker = build_broker(settings, namespace=f"botkiln-test-{secrets.token_hex(4)}")
    try:
        assert dramatiq.broker.global_broker is None
        assert broker.get_declared_actors() == {
            "botkiln.generate", "botkiln.deploy", "botkiln.rollback", "botkiln.execute",
        }  # fmt: skip
        execute = broker.get_actor("botkiln.execute")
        assert execute.queue_name == RUNTIME_QUEUE and execute.options["max_retries"] == 0
        limits = {}
        for name in broker.get_declared_actors() - {"botkiln.execute"}:
            actor = broker.get_actor(name)
            assert actor.queue_name == CONTROL_QUEUE and actor.broker is broker
            assert actor.options["max_retries"] == MAX_RETRIES and actor.options["retry_when"] is retry_when
            limits[name] = actor.options["time_limit"]
        assert limits == {"botkiln.generate": 900_000, "botkiln.deploy": 600_000, "botkiln.rollback": 120_000}
        kinds = [type(m) for m in broker.middleware]
        assert kinds.index(AsyncIO) < kinds.index(WorkerResources)  # after_* hooks run in reverse order
        assert TimeLimit in kinds and Retries in kinds
    finally:
        broker.close()


def test_only_failures_of_the_outside_world_are_retried() -> None:
    for transient in (
        DatabaseUnavailable("down"), asyncpg.ConnectionDoesNotExistError("gone"), redis.exceptions.ConnectionError(),
        ArtifactStoreUnavailable("s3"), Transient("busy"), TimeoutError(),
    ):  # fmt: skip
        assert retry_when(0, transient), transient
        assert not retry_when(MAX_RETRIES, transient)
    for final in (TaskFailed("no"), ArtifactCorrupt("bad"), ValueError("bug"), KeyError("bug")):
        assert not retry_when(0, final), final


def test_a_booted_worker_opens_its_runtime_and_closes_it_on_stop(settings: Settings) -> None:
    broker = build_broker(
        settings, options=WorkerOptions(recovery_interval_s=0), namespace=f"botkiln-test-{secrets.token_hex(4)}"
    )
    resources = worker_resources(broker)
    with pytest.raises(RuntimeError, match="not open"):
        _ = resources.runtime
    worker = start_worker(broker, threads=1, timeout_ms=100)
    try:
        runtime = resources.runtime
        assert runtime.settings is settings and not runtime.db.is_closing()
    finally:
        worker.stop()
        broker.close()
    assert runtime.db.is_closing() and get_event_loop_thread() is None
    with pytest.raises(RuntimeError, match="not open"):
        _ = resources.runtime


def test_a_worker_that_cannot_reach_postgres_does_not_boot(redis_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql://postgres@127.0.0.1:1/nowhere",
        artifacts_url=f"file://{tmp_path}",
        redis_url=redis_url,
    )
    broker = build_broker(settings, namespace=f"botkiln-test-{secrets.token_hex(4)}")
    try:
        with pytest.raises(WorkerBootFailed, match=r"the worker cannot start: cannot use PostgreSQL at"):
            start_worker(broker, threads=1, timeout_ms=100)
    finally:
        broker.close()
    assert get_event_loop_thread() is None
