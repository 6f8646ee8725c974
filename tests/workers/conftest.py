"""Real services for the worker tests: PostgreSQL, Redis and an in-process Dramatiq worker.

Each module gets a fresh migrated database ``botkiln_test_<random>`` (dropped
afterwards), its own artifact directory and its own Dramatiq namespace on the
real Redis, and one ``dramatiq.Worker`` consuming it from threads of this process.
Pub/sub channels are server-wide, so tests tell their events apart by bot id
(every bot id is random). A service that cannot be reached fails the test;
``BOTKILN_ALLOW_SKIP=1`` turns that into a skip naming the service.

A module tunes the worker by defining an ``options`` fixture (``WorkerOptions``)
and asks for the ``worker`` fixture to have one running.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import UUID

import dramatiq
import pytest
import redis
from redis.asyncio import Redis

from botkiln.infra.artifacts_fs import FsArtifactStore
from botkiln.infra.db import Pool, create_pool
from botkiln.infra.settings import Settings
from botkiln.workers import WorkerOptions, build_broker, start_worker
from tests.workers.support import make_owner


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Async tests run on asyncio (asyncpg's loop)."""
    return "asyncio"


@pytest.fixture(scope="module")
def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's artifact store directory."""
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def settings(database: str, artifacts_dir: Path, redis_url: str) -> Settings:
    """Settings pointing at the module's database, artifacts and the test Redis."""
    return Settings(database_url=database, artifacts_url=f"file://{artifacts_dir}", redis_url=redis_url)


@pytest.fixture(scope="module")
def options() -> WorkerOptions:
    """Short leases and a fast recovery monitor, so the suite stays quick."""
    return WorkerOptions(lease_s=2.0, lock_wait_s=30.0, recovery_interval_s=0.25, stale_queued_s=3.0)


@pytest.fixture(scope="module")
def namespace() -> str:
    """The module's Dramatiq namespace on the shared Redis."""
    return f"botkiln-test-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def broker(settings: Settings, options: WorkerOptions, namespace: str) -> Iterator[dramatiq.Broker]:
    """The module's broker (built as production builds it); its keys are deleted afterwards."""
    made = build_broker(settings, options=options, namespace=namespace)
    yield made
    client = redis.Redis.from_url(settings.redis_url)
    try:
        keys = list(client.scan_iter(match=f"{namespace}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
        made.close()


@pytest.fixture(scope="module")
def worker(broker: dramatiq.Broker) -> Iterator[dramatiq.Worker]:
    """An in-process worker consuming the module's broker."""
    running = start_worker(broker, threads=4, timeout_ms=100)
    yield running
    running.stop(timeout=10_000)


@pytest.fixture(scope="module")
def owner(database: str) -> tuple[UUID, UUID]:
    """A user and their project, for the module's bots."""

    async def make() -> tuple[UUID, UUID]:
        pool = await create_pool(database, min_size=1, max_size=2)
        try:
            return await make_owner(pool)
        finally:
            await pool.close()

    return asyncio.run(make())


@pytest.fixture
async def pool(database: str) -> AsyncIterator[Pool]:
    """A pool on the module's database, on the test's event loop."""
    made = await create_pool(database, min_size=1, max_size=8)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    """An async Redis client on the test's event loop."""
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def store(artifacts_dir: Path) -> FsArtifactStore:
    """The module's artifact store, as the workers see it."""
    return FsArtifactStore(artifacts_dir)
