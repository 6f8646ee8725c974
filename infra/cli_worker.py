"""``botkiln worker [--threads N]``: run the control-plane workers (generate, deploy, rollback).

Settings come from the environment (``BOTKILN_DATABASE_URL``, ``BOTKILN_REDIS_URL``,
``BOTKILN_ARTIFACTS``, …). The process runs until SIGTERM or SIGINT, then lets the
attempts it is running finish. Run as many as the load needs, on any machines.
For several processes under one supervisor, Dramatiq's own CLI works too:
``dramatiq botkiln.workers.process:install_broker --processes 2 --threads 8``.

Exit codes: 0 stopped by a signal, 1 the worker could not start (PostgreSQL
unreachable, BOTKILN_DATABASE_URL unset), 2 a malformed setting. No secret is printed.
"""

from __future__ import annotations

import argparse
import sys

from botkiln.infra.settings import Settings, SettingsError


def _worker(args: argparse.Namespace) -> int:
    return run_worker(args.threads)


def run_worker(threads: int) -> int:
    """Serve until stopped; the exit code of the module docstring."""
    from botkiln.infra.logs import configure_logging
    from botkiln.infra.tracing import configure_tracing
    from botkiln.interpreter.errors import BotkilnError
    from botkiln.workers.broker import WorkerBootFailed
    from botkiln.workers.process import serve

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings)
    configure_tracing(settings, service="botkiln-worker")
    try:
        serve(settings, threads=threads)
    except (BotkilnError, WorkerBootFailed) as exc:
        print(f"botkiln worker: {exc}", file=sys.stderr)
        return 1
    return 0


def _threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError("between 1 and 256")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``worker`` command."""
    worker = sub.add_parser(
        "worker",
        help="run the generate/deploy/rollback workers until stopped",
        description="Exit codes: 0 stopped by a signal, 1 could not start, 2 malformed setting.",
    )
    worker.add_argument("--threads", type=_threads, default=8, help="messages handled at once (default 8)")
    worker.set_defaults(handler=_worker)
