"""A worker process's shared resources, built from ``Settings``: the ``Runtime``.

``open_runtime`` makes the PostgreSQL pool, the artifact store, the async Redis
client and the warm ``SandboxPool``; ``Runtime.aclose`` releases them. Both run on
the event loop that will use the resources (asyncpg pools and redis clients are
bound to one loop): in a worker that is Dramatiq's event-loop thread
(``broker.WorkerResources`` opens the runtime after the worker boots); in tests
it may be the test's own loop. Nothing here exists at import time.

``WorkerOptions`` holds the knobs of the control-plane pipeline that are not
deployment configuration (they have sensible defaults and tests shorten them).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from redis.asyncio import Redis

from botkiln.infra.artifacts_fs import FsArtifactStore
from botkiln.infra.artifacts_s3 import S3ArtifactStore
from botkiln.infra.chat_queue import RedisChatQueue
from botkiln.infra.chat_state import RedisChatState
from botkiln.infra.db.pool import Pool, create_pool
from botkiln.infra.outbound import OutboundLimiter, OutboundRates, OutboundSender
from botkiln.infra.ports import ArtifactStore
from botkiln.infra.redis_keys import PREFIX
from botkiln.infra.settings import Settings, SettingsError
from botkiln.infra.telegram_api import BotApiClient, install_log_redaction
from botkiln.interpreter.quickjs import SandboxPool
from botkiln.workers.active import ActiveBots
from botkiln.workers.executor import ApiFactory, Executor, ExecutorOptions, RowPublisher

_log = logging.getLogger(__name__)

_CLOSE_S = 10.0

StageHook = Callable[[str, int], Awaitable[None]]
"""Awaited before each deploy stage with (stage, deployment id): an observation point (tests pause on it)."""


@dataclass(frozen=True)
class WorkerOptions:
    """Timing and capacity of the control-plane workers (defaults suit production)."""

    lease_s: float = 30.0
    """A task attempt's lease; renewed every third of it while the attempt runs."""
    lock_wait_s: float = 120.0
    """How long a deploy waits for another deploy of the same bot before retrying later."""
    recovery_interval_s: float = 10.0
    """Period of the recovery monitor in each worker process; 0 turns it off there."""
    stale_queued_s: float = 60.0
    """A task queued this long without news gets its message sent again (a lost send)."""
    sandbox_capacity: int = 64
    """Warm revisions kept by the worker's SandboxPool."""
    db_pool_size: int = 20
    """PostgreSQL connections of one worker process (a running deploy holds one for its bot's lock)."""
    stage_hook: StageHook | None = field(default=None, compare=False)
    redis_prefix: str = PREFIX
    """Prefix of the runtime plane's Redis keys (chat queues, states, outbound); tests use their own."""
    active_ttl_s: float = 2.0
    """How long a node trusts its cached active revision of a bot without re-reading it."""
    pump_interval_s: float = 1.0
    """Period of the runtime pump (lost wake-ups, expired leases); 0 turns it off in this process."""
    rollout_interval_s: float = 1.0
    """Period of the automatic rollout controller (one process per period); 0 turns it off in this process."""
    api_performer: ApiFactory | None = field(default=None, compare=False)
    """Who performs bots' apiCalls (default: real HTTP behind the allow-list)."""


def build_artifact_store(settings: Settings) -> ArtifactStore:
    """The artifact store ``BOTKILN_ARTIFACTS`` names (a directory or an S3 bucket)."""
    if settings.artifacts.scheme == "s3":
        return S3ArtifactStore.from_url(settings.artifacts_url, endpoint_url=settings.s3_endpoint_url)
    return FsArtifactStore.from_url(settings.artifacts_url)


def build_redis(settings: Settings) -> Redis:
    """An async Redis client for ``BOTKILN_REDIS_URL`` (bytes responses)."""
    return Redis.from_url(settings.redis_url, socket_connect_timeout=5, health_check_interval=30)


@dataclass
class Runtime:
    """What every control-plane task uses; one per worker process."""

    settings: Settings
    options: WorkerOptions
    db: Pool
    store: ArtifactStore
    redis: Redis
    sandboxes: SandboxPool
    executor: Executor | None = None
    """The runtime plane's executor; None when BOTKILN_SECRET_KEY is unset (tokens cannot be decrypted)."""
    http: httpx.AsyncClient | None = None

    def require_executor(self) -> Executor:
        """The executor.

        Raises:
            SettingsError: the runtime plane is off because BOTKILN_SECRET_KEY is unset.
        """
        if self.executor is None:
            raise SettingsError("BOTKILN_SECRET_KEY is missing: executors cannot decrypt bot tokens")
        return self.executor

    async def aclose(self) -> None:
        """Close the pool, the HTTP and Redis clients; drop warm sandboxes."""
        self.sandboxes.clear()
        if self.http is not None:
            await self.http.aclose()
        try:
            await asyncio.wait_for(self.db.close(), _CLOSE_S)
        except TimeoutError:
            self.db.terminate()
        finally:
            await self.redis.aclose()


async def open_runtime(settings: Settings, options: WorkerOptions | None = None) -> Runtime:
    """Build the runtime on the running event loop.

    Raises:
        SettingsError: BOTKILN_DATABASE_URL is unset.
        DatabaseUnavailable: PostgreSQL cannot be reached.
    """
    if not settings.database_url:
        raise SettingsError("BOTKILN_DATABASE_URL is missing and has no default; workers need PostgreSQL")
    options = options or WorkerOptions()
    store = await asyncio.to_thread(build_artifact_store, settings)
    db = await create_pool(settings.database_url, min_size=1, max_size=options.db_pool_size)
    runtime = Runtime(settings, options, db, store, build_redis(settings), SandboxPool(options.sandbox_capacity))
    if settings.secret_key is None:
        _log.warning("BOTKILN_SECRET_KEY is unset: this worker runs control-plane tasks only, no bot updates")
    else:
        runtime.http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))
        runtime.executor = build_executor(runtime, runtime.http)
    return runtime


def build_executor(
    rt: Runtime,
    http: httpx.AsyncClient,
    analytics: RowPublisher | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> Executor:
    """The runtime plane's executor over the runtime's clients (``Settings`` give limits and keys).

    ``clock`` gives the steps' ``now`` (seconds); tests replay scripted conversations with their own.
    """
    settings, prefix = rt.settings, rt.options.redis_prefix
    install_log_redaction()
    base_url = settings.telegram_api_url
    rates = OutboundRates.from_pairs(settings.outbound_rates)
    sender = OutboundSender(
        rt.redis,
        OutboundLimiter(rt.redis, prefix=prefix, rates=rates),
        lambda token: BotApiClient(http, token, base_url=base_url),
        prefix=prefix,
    )
    if analytics is None:
        from botkiln.infra.analytics_relay import AnalyticsRelay

        analytics = AnalyticsRelay(rt.redis, prefix=prefix)
    return Executor(
        redis=rt.redis,
        queue=RedisChatQueue(rt.redis, prefix=prefix),
        states=RedisChatState(rt.redis, prefix=prefix),
        bots=ActiveBots(rt.db, settings.secret_box(), rt.redis, rt.store, ttl_s=rt.options.active_ttl_s),
        sandboxes=rt.sandboxes,
        sender=sender,
        chat_key=settings.analytics_chat_key(),
        consumer_id=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        analytics=analytics,
        prefix=prefix,
        options=ExecutorOptions(lease_ms=settings.executor_lease_ms, private_api_ok=settings.apicall_private_ok),
        api=rt.options.api_performer,
        clock=clock,
    )


RuntimeSource = Callable[[], Runtime]
"""How an actor reaches its process's runtime (``broker.WorkerResources.runtime``)."""
