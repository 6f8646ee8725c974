"""``botkiln analytics drain``: move analytics rows from Redis into ClickHouse or chdb until stopped.

Executors publish rows to the stream ``botkiln:analytics:rows``
(``infra/analytics_relay.py``); this command drains it into the store
``BOTKILN_ANALYTICS_URL`` names, reading Redis at ``BOTKILN_REDIS_URL``. Run one or more
against a ClickHouse server; with ``chdb://DIR`` run exactly one, in the process that owns
the directory (the embedded platform embeds ``start_drainer_thread`` instead). A store or
Redis outage is logged and retried; SIGTERM or SIGINT stops it after the batch in hand,
which stays pending in the stream if it could not be written.

Exit codes: 0 stopped by a signal, 2 a malformed setting.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from botkiln.infra.analytics_relay import serve_drainer, start_drainer_thread
from botkiln.infra.logs import configure_logging
from botkiln.infra.redis_keys import PREFIX
from botkiln.infra.settings import Settings, SettingsError

__all__ = ["register", "serve_drainer", "start_drainer_thread"]


async def _serve(settings: Settings, prefix: str, consumer: str | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await serve_drainer(settings, stop, prefix=prefix, consumer=consumer)


def _drain(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings)
    asyncio.run(_serve(settings, args.prefix, args.consumer))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``analytics`` command group."""
    analytics = sub.add_parser("analytics", help="analytics pipeline commands")
    commands = analytics.add_subparsers(dest="analytics_command", metavar="SUBCOMMAND")
    commands.required = True
    drain = commands.add_parser(
        "drain",
        help="write analytics rows from Redis into ClickHouse/chdb until stopped",
        description="Exit codes: 0 stopped by a signal, 2 malformed setting.",
    )
    drain.add_argument("--consumer", help="consumer name; reuse it across restarts (default: host-pid-random)")
    drain.add_argument("--prefix", default=PREFIX, help=f"Redis key prefix (default {PREFIX})")
    drain.set_defaults(handler=_drain)
