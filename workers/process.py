"""Running workers: ``serve`` (one process, N threads) and Dramatiq's CLI hook.

- ``botkiln worker [--threads N]`` (``infra/cli_worker.py``) or
  ``python -m botkiln.workers [--threads N]`` runs ``serve``: build the broker from the
  environment, boot a ``dramatiq.Worker`` on the control queue, stop gracefully on
  SIGTERM or SIGINT (running attempts finish; the rest stays queued in Redis).
- with a ClickHouse server as ``BOTKILN_ANALYTICS_URL`` (not ``chdb://``), ``serve`` also
  runs an analytics drainer thread (docs/analytics.md);
- ``dramatiq botkiln.workers.process:install_broker --processes P --threads T``
  runs Dramatiq's own multi-process supervisor on the same broker.
- ``serve`` exposes the process's Prometheus metrics on ``BOTKILN_METRICS_HOST:BOTKILN_METRICS_PORT``
  (9100; 0 = none; several workers on one host need one port each; a port in use is logged
  and the worker runs without it), behind ``BOTKILN_METRICS_TOKEN`` when set (docs/observability.md);
- ``kill -USR1 <pid>`` makes a ``serve`` process log every asyncio task of its event loop
  with its stack (where an update is waiting, when one seems stuck).

``start_worker`` boots a worker on an existing broker (``serve`` and the tests use
it). The async actors all share one event loop per process (AsyncIO middleware);
``threads`` bounds how many messages one process handles at once.
"""

from __future__ import annotations

import asyncio
import io
import logging
import signal
import threading

import dramatiq

from botkiln.infra.metrics import MetricsServer, serve_metrics
from botkiln.infra.redis_keys import DRAMATIQ_NAMESPACE
from botkiln.infra.settings import Settings
from botkiln.workers.attempt import CONTROL_QUEUE
from botkiln.workers.broker import build_broker
from botkiln.workers.execute import RUNTIME_QUEUE
from botkiln.workers.runtime import WorkerOptions

_log = logging.getLogger(__name__)


def install_broker() -> None:
    """Set Dramatiq's global broker from the environment (for ``dramatiq botkiln.workers.process:install_broker``)."""
    dramatiq.set_broker(build_broker(Settings.from_env()))


def start_worker(broker: dramatiq.Broker, *, threads: int = 8, timeout_ms: int = 100) -> dramatiq.Worker:
    """Boot a worker consuming the control and runtime queues of ``broker`` (as Dramatiq's CLI would).

    ``timeout_ms`` bounds an idle consumer's poll interval (a message waits at most about that long).

    Raises:
        WorkerBootFailed: the runtime could not be opened; nothing is left running.
    """
    broker.emit_after("process_boot")
    queues = {CONTROL_QUEUE, RUNTIME_QUEUE}
    worker = dramatiq.Worker(broker, queues=queues, worker_threads=threads, worker_timeout=timeout_ms)
    try:
        worker.start()
    except BaseException:
        worker.stop()  # stops the event-loop thread AsyncIO already started
        raise
    return worker


def serve(
    settings: Settings,
    *,
    threads: int = 8,
    options: WorkerOptions | None = None,
    namespace: str = DRAMATIQ_NAMESPACE,
    stop: threading.Event | None = None,
) -> None:
    """Run a worker until ``stop`` is set or SIGTERM/SIGINT arrives (from the main thread).

    Raises:
        WorkerBootFailed: the runtime could not be opened (BOTKILN_DATABASE_URL unset, PostgreSQL unreachable).
    """
    broker = build_broker(settings, options=options, namespace=namespace)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        signal.signal(signal.SIGUSR1, lambda *_: _request_task_dump())
    try:
        worker = start_worker(broker, threads=threads)
    except BaseException:
        broker.close()
        raise
    metrics = _serve_metrics(settings)
    drainer = None
    if settings.secret_key is not None and not settings.analytics_url.startswith("chdb://"):
        # A ClickHouse server takes inserts from any process: each worker drains analytics rows too.
        # A chdb directory belongs to one process (``botkiln up`` or ``botkiln analytics drain``).
        from botkiln.infra.analytics_relay import start_drainer_thread

        drainer = start_drainer_thread(settings, stop, prefix=(options or WorkerOptions()).redis_prefix)
    _log.info("botkiln worker: %d thread(s) on queues %s, %s", threads, CONTROL_QUEUE, RUNTIME_QUEUE)
    try:
        stop.wait()
    finally:
        _log.info("botkiln worker: stopping (running attempts finish first)")
        worker.stop()
        broker.close()
        if drainer is not None:
            drainer.join(timeout=30)
        if metrics is not None:
            metrics.close()


def _serve_metrics(settings: Settings) -> MetricsServer | None:
    if settings.metrics_port == 0:
        return None
    try:
        server = serve_metrics(settings.metrics_port, host=settings.metrics_host, token=settings.metrics_token)
    except OSError as exc:
        _log.warning(
            "botkiln worker: metrics not served, %s:%d cannot be bound (%s); give each worker on a host its own "
            "BOTKILN_METRICS_PORT",
            settings.metrics_host, settings.metrics_port, exc.strerror or type(exc).__name__,
        )  # fmt: skip
        return None
    _log.info("botkiln worker: metrics on http://%s:%d/metrics", settings.metrics_host, server.port)
    return server


def _request_task_dump() -> None:
    """Ask the worker's event loop to log its tasks (from the SIGUSR1 handler, main thread)."""
    from dramatiq.asyncio import get_event_loop_thread

    thread = get_event_loop_thread()
    if thread is not None:
        thread.loop.call_soon_threadsafe(log_tasks)


def log_tasks() -> None:
    """Log every task of the running event loop with its stack (one log record)."""
    out = io.StringIO()
    tasks = asyncio.all_tasks()
    for task in tasks:
        out.write(f"--- {task.get_name()}: {task!r:.200}\n")
        task.print_stack(limit=30, file=out)
    _log.warning("botkiln worker: %d asyncio task(s)\n%s", len(tasks), out.getvalue())
