"""``botkiln db migrate [--dsn DSN]``: bring the database schema up to date.

Exit codes: 0 up to date (whether or not something was applied), 1 the database
cannot be reached or its migration record disagrees with the files, 2 no DSN (set
BOTKILN_DATABASE_URL or pass --dsn) or a malformed setting. The DSN's password is
never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from botkiln.infra.db.migrate import MigrationError, migrate
from botkiln.infra.db.pool import DatabaseUnavailable, redact_dsn
from botkiln.infra.settings import Settings, SettingsError


def _migrate(args: argparse.Namespace) -> int:
    dsn = args.dsn
    if dsn is None:
        try:
            dsn = Settings.from_env().database_url
        except SettingsError as exc:
            print(exc, file=sys.stderr)
            return 2
    if not dsn:
        print("no database: set BOTKILN_DATABASE_URL or pass --dsn postgresql://…", file=sys.stderr)
        return 2
    try:
        applied = asyncio.run(migrate(dsn))
    except (DatabaseUnavailable, MigrationError) as exc:
        print(f"migration failed: {exc}", file=sys.stderr)
        return 1
    for migration in applied:
        print(f"applied {migration.version:04d}_{migration.name}")
    print(f"{redact_dsn(dsn)} is up to date" + ("" if applied else " (nothing to apply)"))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``db`` command group."""
    db = sub.add_parser("db", help="manage the PostgreSQL schema")
    db_sub = db.add_subparsers(dest="db_command", metavar="SUBCOMMAND")
    db_sub.required = True
    migrate_ = db_sub.add_parser(
        "migrate",
        help="apply pending schema migrations (safe to run concurrently and repeatedly)",
        description="Exit codes: 0 up to date, 1 database unreachable or migrations inconsistent, 2 no DSN.",
    )
    migrate_.add_argument("--dsn", help="PostgreSQL DSN (default: BOTKILN_DATABASE_URL)")
    migrate_.set_defaults(handler=_migrate)
