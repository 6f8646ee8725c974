"""``botkiln serve [--host H] [--port P]``: run the control API (``graphql/app.py``) with uvicorn.

Configuration comes from the ``BOTKILN_*`` environment (``infra/settings.py``), logging
and tracing too (``BOTKILN_LOG_*``, ``BOTKILN_OTLP_ENDPOINT``: docs/observability.md);
the database schema is migrated first (``botkiln db migrate`` does the same on
demand). Exit codes: 0 after a clean shutdown, 1 when PostgreSQL cannot be
reached or its migrations disagree with the files, 2 for a missing or malformed
setting.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from botkiln.infra.db.migrate import MigrationError, migrate
from botkiln.infra.db.pool import DatabaseUnavailable
from botkiln.infra.settings import Settings, SettingsError


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from botkiln.graphql.app import WS_MAX_MESSAGE_BYTES, build_app
    from botkiln.infra.logs import configure_logging
    from botkiln.infra.tracing import configure_tracing

    try:
        settings = Settings.from_env()
        app = build_app(settings)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    assert settings.database_url is not None
    configure_logging(settings)
    configure_tracing(settings, service="botkiln-api")
    try:
        asyncio.run(migrate(settings.database_url))
    except (DatabaseUnavailable, MigrationError) as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        ws_max_size=WS_MAX_MESSAGE_BYTES,
        proxy_headers=True,
        server_header=False,
        log_config=None,  # uvicorn's loggers propagate to the root configured above
        log_level=settings.log_level.lower(),
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` command."""
    serve = sub.add_parser(
        "serve",
        help="run the control API (GraphQL over HTTP and WebSocket)",
        description="Exit codes: 0 clean shutdown, 1 database unreachable or inconsistent, 2 bad settings.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.set_defaults(handler=_serve)
