"""Fixtures of the runtime tests: a cluster of real processes on the module's services, and the stand-in.

The module gets a fresh database (``database``), an empty Redis database of its own (the
processes use the production key prefix and Dramatiq namespace, so a dedicated database
number is what isolates them; it is flushed afterwards), an artifact directory, the Telegram
stand-in served from this process, and the ``Cluster``: 2 ``botkiln serve`` and 3
``botkiln worker`` processes, checked end to end by one update through each server before
any test runs. A failing test's report carries the tail of every process's stderr.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import pytest
import redis
from redis.asyncio import Redis

from botkiln.infra.artifacts_fs import FsArtifactStore
from botkiln.infra.db import create_pool
from botkiln.infra.telegram_standin import BotApiStandIn, RateLimits
from tests.runtime.cluster import Cluster
from tests.runtime.echo import COMMAND, EchoBot, create_echo_bot, plan, replies, update_body
from tests.runtime.traffic import Telegram
from tests.workers.conftest import pool, store  # noqa: F401 -- the same fixtures as the worker tests
from tests.workers.runtime_support import served_standin
from tests.workers.support import SECRET_KEY, make_owner

SERVERS = 2
WORKERS = 3
WORKER_THREADS = 4
LEASE_MS = 2000
OUTBOUND_RATES = "bot_per_s=2000,bot_burst=200,chat_per_s=500,chat_burst=50"
STANDIN_LIMITS = RateLimits(
    per_bot_per_s=4000, per_bot_burst=400, per_chat_per_s=1000, per_chat_burst=100, per_group_per_min=6000,
    per_group_burst=100,
)  # fmt: skip
"""Twice the senders' rates: a 429 the tests did not ask for means the shared limiter let too much through."""


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Async tests run on asyncio (asyncpg's loop)."""
    return "asyncio"


@pytest.fixture(scope="module")
def redis_db(redis_url: str) -> Iterator[str]:
    """The URL of an empty Redis database (1-15) for the module's processes; flushed afterwards."""
    numbers = list(range(1, 16))
    secrets.SystemRandom().shuffle(numbers)
    for number in numbers:
        url = urlunsplit(urlsplit(redis_url)._replace(path=f"/{number}"))
        client = redis.Redis.from_url(url)
        try:
            if client.dbsize() == 0:
                break
        finally:
            client.close()
    else:
        pytest.fail("no empty Redis database among 1-15 for the runtime tests' processes")
    yield url
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


@pytest.fixture(scope="module")
def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's artifact store directory (the workers read revisions from it)."""
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def standin() -> Iterator[BotApiStandIn]:
    """The Telegram stand-in, served from this process, with flood limits above the senders' rates."""
    made, server = served_standin(STANDIN_LIMITS)
    yield made
    server.stop()


@pytest.fixture(scope="module")
def owner(database: str) -> tuple[UUID, UUID]:
    """A user and their project, for the module's bots."""

    async def make() -> tuple[UUID, UUID]:
        db = await create_pool(database, min_size=1, max_size=2)
        try:
            return await make_owner(db)
        finally:
            await db.close()

    return asyncio.run(make())


@pytest.fixture(scope="module")
def processes(
    database: str,
    redis_db: str,
    artifacts_dir: Path,
    standin: BotApiStandIn,
    owner: tuple[UUID, UUID],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    """2 servers and 3 workers, ready; every one of them is terminated afterwards, whatever happened."""
    logs = tmp_path_factory.mktemp("processes")
    env = {
        "BOTKILN_DATABASE_URL": database,
        "BOTKILN_REDIS_URL": redis_db,
        "BOTKILN_SECRET_KEY": SECRET_KEY,
        "BOTKILN_ARTIFACTS": f"file://{artifacts_dir}",
        "BOTKILN_ANALYTICS_URL": f"chdb://{logs / 'analytics'}",
        "BOTKILN_TELEGRAM_API_URL": standin.url,
        "BOTKILN_OUTBOUND_RATES": OUTBOUND_RATES,
        "BOTKILN_EXECUTOR_LEASE_MS": str(LEASE_MS),
    }
    cluster = Cluster(env, logs, threads=WORKER_THREADS)
    try:
        started = time.monotonic()
        cluster.start(servers=SERVERS, workers=WORKERS)
        booted = time.monotonic() - started
        pii_marker = asyncio.run(_first_updates(cluster, database, artifacts_dir, standin, owner))
        print(f"\ncluster: {SERVERS} servers + {WORKERS} workers ready in {booted:.1f}s, "
              f"first updates answered {time.monotonic() - started - booted:.2f}s later")  # fmt: skip
        yield cluster
    except BaseException:
        print(cluster.report())
        raise
    finally:
        cluster.stop()
    # Every line the processes wrote during the module's tests: no bot token, webhook secret, secret key
    # or PII-flagged state value
    secrets_used = [SECRET_KEY, pii_marker, *standin.bots]
    secrets_used += [b.webhook.secret_token for b in standin.bots.values() if b.webhook and b.webhook.secret_token]
    assert cluster.leaks(secrets_used) == [], "a secret reached a process's output"


async def _first_updates(
    cluster: Cluster, database: str, artifacts_dir: Path, standin: BotApiStandIn, owner: tuple[UUID, UUID]
) -> str:
    """One update through each server, answered: the whole pipeline works before any test starts.

    Then a message whose text the bot keeps in a PII-flagged variable; returns that text (the
    module's log scan looks for it).
    """
    db = await create_pool(database, min_size=1, max_size=2)
    try:
        bot = await create_echo_bot(db, FsArtifactStore(artifacts_dir), owner, standin, [1])
        pii_bot = await create_echo_bot(db, FsArtifactStore(artifacts_dir), owner, standin, [2])
    finally:
        await db.close()
    planned = plan([1], SERVERS)
    async with Telegram(cluster.urls, bot, in_flight=1) as telegram:
        await telegram.send(planned)
    marker = f"pii-{secrets.token_hex(12)}"
    async with Telegram(cluster.urls, pii_bot, in_flight=1) as telegram:
        response = await telegram.post(update_body(secrets.randbelow(10**9), 2, f"/{COMMAND} {marker}"))
        assert response.status_code == 200, response.text
    deadline = time.monotonic() + 30
    while len(replies(bot)) < SERVERS or not _said(pii_bot, marker):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the first updates were not answered within 30s:\n{cluster.report()}")
        await asyncio.sleep(0.05)
    return marker


def _said(bot: EchoBot, text: str) -> bool:
    """Whether the bot sent a message containing ``text``."""
    return any(text in str(c.params.get("text")) for c in bot.standin.calls(bot.api, "sendMessage") if c.ok)


@pytest.fixture
def cluster(processes: Cluster) -> Iterator[Cluster]:
    """The module's processes, with a replacement for any worker a test killed; none may die unasked."""
    while len(processes.workers) < WORKERS:
        processes.wait_worker(processes.launch_worker())
    assert not processes.dead(), f"processes died before the test:\n{processes.report()}"
    yield processes
    assert not processes.dead(), f"processes died during the test:\n{processes.report()}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test's report shows what the processes wrote to stderr."""
    report = yield
    funcargs = getattr(item, "funcargs", {})
    running = funcargs.get("cluster") or funcargs.get("processes")
    if report.failed and isinstance(running, Cluster):
        report.sections.append(("botkiln processes (stderr, last lines)", running.report()))
    return report


@pytest.fixture
async def redis_client(redis_db: str) -> AsyncIterator[Redis]:
    """An async client of the processes' Redis database."""
    client = Redis.from_url(redis_db)
    try:
        yield client
    finally:
        await client.aclose()
