"""``build_broker(settings)``: Dramatiq's Redis broker, its middleware and the control-plane actors.

No broker exists at import time and Dramatiq's global broker is never used:
``build_broker`` makes a ``RedisBroker`` and ``register_actors`` declares every
actor on *that* broker (``dramatiq.actor(fn, broker=broker, ...)``), so importing
an actor module has no side effect. The API process and every worker process
call ``build_broker`` once; the API only sends (``workers/enqueue.py``), workers
also consume (``workers/process.py``). For Dramatiq's own CLI,
``botkiln.workers.process:install_broker`` sets the global broker when called.

Middleware, in order: TracePropagation (the enqueuing trace continues in control-plane
tasks, ``infra/tracing.py``), AgeLimit, TimeLimit (per actor: ``time_limit``),
ShutdownNotifications, Callbacks, Pipelines, Retries (per actor: ``max_retries``,
``min_backoff``, ``max_backoff``, ``retry_when``), AsyncIO (the actors are
``async def``) and ``WorkerResources``, last: Dramatiq runs ``before_*`` hooks in
list order and ``after_*`` hooks in reverse, so AsyncIO's loop is running when
``WorkerResources`` opens the process's ``Runtime`` on it as the worker boots
(before any worker thread takes a message; it also starts the recovery monitor
there), and still running when it closes both at shutdown. Actors reach the
runtime through it, never through a global. While the runtime is open its sandbox pool
is counted in ``botkiln_sandbox_pool_*`` (``infra/metrics.py``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass

import dramatiq
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    AsyncIO,
    Callbacks,
    Middleware,
    MiddlewareError,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from botkiln.infra.metrics import SANDBOX_POOLS
from botkiln.infra.redis_keys import DRAMATIQ_NAMESPACE
from botkiln.infra.settings import Settings
from botkiln.infra.tracing import TracePropagation
from botkiln.workers import deploy, execute, generate, rollback, rollout_controller
from botkiln.workers.attempt import CONTROL_QUEUE, MAX_RETRIES
from botkiln.workers.recovery import monitor
from botkiln.workers.runtime import Runtime, WorkerOptions, open_runtime


class WorkerBootFailed(MiddlewareError):
    """The worker's runtime could not be opened (settings, PostgreSQL); the worker does not start."""


class WorkerResources(Middleware):
    """Owns the worker process's ``Runtime`` and recovery monitor (see the module docstring)."""

    def __init__(self, settings: Settings, options: WorkerOptions) -> None:
        self.settings = settings
        self.options = options
        self._runtime: Runtime | None = None
        self._monitor: concurrent.futures.Future[None] | None = None
        self._background: list[concurrent.futures.Future[None]] = []

    @property
    def runtime(self) -> Runtime:
        """The open runtime.

        Raises:
            RuntimeError: the worker has not booted (actors run only inside a worker).
        """
        if self._runtime is None:
            raise RuntimeError("the worker runtime is not open: actors run only in a booted Dramatiq worker")
        return self._runtime

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        loop_thread = get_event_loop_thread()
        if loop_thread is None:
            raise RuntimeError("WorkerResources needs the AsyncIO middleware")
        try:
            self._runtime = loop_thread.run_coroutine(open_runtime(self.settings, self.options))
        except Exception as exc:  # Dramatiq swallows other errors of hooks; a worker without a runtime must not boot
            raise WorkerBootFailed(f"the worker cannot start: {exc}") from exc
        if self.options.recovery_interval_s > 0:
            self._monitor = asyncio.run_coroutine_threadsafe(monitor(self._runtime, broker), loop_thread.loop)
        rt = self._runtime
        SANDBOX_POOLS.watch(rt.sandboxes)
        if rt.executor is not None:
            self._background.append(asyncio.run_coroutine_threadsafe(rt.executor.bots.listen(), loop_thread.loop))
            if self.options.pump_interval_s > 0:
                pumping = execute.pump(
                    rt.redis, broker, prefix=self.options.redis_prefix, interval_s=self.options.pump_interval_s
                )
                self._background.append(asyncio.run_coroutine_threadsafe(pumping, loop_thread.loop))
            if self.options.rollout_interval_s > 0:
                controlling = rollout_controller.run(
                    rt.db, rt.redis, prefix=self.options.redis_prefix, interval_s=self.options.rollout_interval_s
                )
                self._background.append(asyncio.run_coroutine_threadsafe(controlling, loop_thread.loop))

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        loop_thread = get_event_loop_thread()
        if self._monitor is not None:
            self._monitor.cancel()
            self._monitor = None
        for task in self._background:
            task.cancel()
        # Let them unwind before the runtime's clients close under them (a Redis call cut short leaks its socket)
        concurrent.futures.wait(self._background, timeout=_UNWIND_S)
        self._background.clear()
        if self._runtime is not None:
            SANDBOX_POOLS.unwatch(self._runtime.sandboxes)
        if self._runtime is not None and loop_thread is not None:
            runtime, self._runtime = self._runtime, None
            loop_thread.run_coroutine(runtime.aclose())


_UNWIND_S = 5.0
"""How long shutdown waits for the background loops (pump, flip listener, rollout controller) to end."""


@dataclass(frozen=True)
class ControlActors:
    """Handles of the control-plane actors declared on one broker."""

    generate: dramatiq.Actor[[str], None]
    deploy: dramatiq.Actor[[str], None]
    rollback: dramatiq.Actor[[str], None]
    execute: dramatiq.Actor[[], None]


def register_actors(broker: dramatiq.Broker, resources: WorkerResources) -> ControlActors:
    """Declare generate, deploy and rollback (they take a task id) and the runtime's execute on ``broker``."""

    def runtime() -> Runtime:
        return resources.runtime

    return ControlActors(
        generate=generate.declare(broker, runtime),
        deploy=deploy.declare(broker, runtime),
        rollback=rollback.declare(broker, runtime),
        execute=execute.declare(broker, lambda: resources.runtime.require_executor()),
    )


class ClosingRedisBroker(RedisBroker):
    """Dramatiq's ``RedisBroker`` whose ``close`` also closes its Redis connections (Dramatiq's leaves them open)."""

    def close(self) -> None:
        """Close the broker, then disconnect its connection pool (a closed broker sends nothing more)."""
        super().close()
        self.client.close()


def build_broker(
    settings: Settings, *, options: WorkerOptions | None = None, namespace: str = DRAMATIQ_NAMESPACE
) -> RedisBroker:
    """A Redis broker for ``BOTKILN_REDIS_URL`` with Botkiln's middleware and actors.

    ``namespace`` prefixes Dramatiq's keys (tests use their own).
    """
    resources = WorkerResources(settings, options or WorkerOptions())
    middleware: list[Middleware] = [
        TracePropagation(queues={CONTROL_QUEUE}),
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(max_retries=MAX_RETRIES, min_backoff=1_000, max_backoff=60_000),
        AsyncIO(),
        resources,
    ]
    broker = ClosingRedisBroker(url=settings.redis_url, namespace=namespace, middleware=middleware)  # type: ignore[no-untyped-call]
    register_actors(broker, resources)
    return broker


def worker_resources(broker: dramatiq.Broker) -> WorkerResources:
    """The ``WorkerResources`` middleware of a broker made by ``build_broker``."""
    for middleware in broker.middleware:
        if isinstance(middleware, WorkerResources):
            return middleware
    raise LookupError("this broker was not made by build_broker")
