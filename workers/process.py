"""Running workers: ``serve`` (one process, N threads) and Dramatiq's CLI hook.

- ``botkiln worker [--threads N]`` (``infra/cli_worker.py``) or
  ``python -m botkiln.workers [--threads N]`` runs ``serve``: build the broker from the
  environment, boot a ``dramatiq.Worker`` on the control queue, stop gracefully on
  SIGTERM or SIGINT (running attempts finish; the rest stays queued in Redis).
- with a ClickHouse server as ``BOTKILN_ANALYTICS_URL`` (not ``chdb://``), ``serve`` also
  runs an analytics drainer thread (docs/analytics.md);
- ``dramatiq botkiln.workers.process:install_broker --processes P --threads T``
  runs Dramatiq's own multi-process supervisor on the same broker.

``start_worker`` boots a worker on an existing broker (``serve`` and the tests use
it). The async actors all share one event loop per process (AsyncIO middleware);
``threads`` bounds how many messages one process handles at once.
"""

from __future__ import annotations

import logging
import signal
import threading

import dramatiq

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
    try:
        worker = start_worker(broker, threads=threads)
    except BaseException:
        broker.close()
        raise
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
