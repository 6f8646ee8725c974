"""Versioned schema migrations: ``infra/migrations/NNNN_name.sql``, applied in order.

Invariants:

- each file runs in its own transaction together with its row in
  ``schema_migrations`` (version, name, sha256, applied_at): a migration is
  applied entirely or not at all;
- the whole run holds a session advisory lock, so concurrent starters (several API
  replicas and workers booting at once) apply each migration exactly once; the
  others wait, then find nothing to do;
- an applied migration is never edited: a file whose sha256 differs from the
  recorded one, or a recorded version with no file, stops the run
  (``MigrationError``) before anything else is applied;
- ``migrate(dsn)`` is idempotent: on an up-to-date database it changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable

from botkiln.infra.db.pool import Connection, connect
from botkiln.interpreter.errors import BotkilnError

# pg_advisory_lock key: the first 8 bytes of sha256("botkiln.migrate"), as a signed bigint.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"botkiln.migrate").digest()[:8], "big", signed=True)
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(BotkilnError):
    """The migration files and the database's record of them disagree, or a file is misnamed."""


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str = field(repr=False)

    @property
    def sha256(self) -> str:
        """Hash of the SQL text, recorded when applied."""
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def migrations_dir() -> Traversable:
    """The packaged ``infra/migrations`` folder."""
    return files("botkiln.infra").joinpath("migrations")


def load_migrations(directory: Traversable | None = None) -> list[Migration]:
    """Every ``NNNN_name.sql`` in ``directory``, by version.

    Raises:
        MigrationError: a ``.sql`` file is misnamed or two share a version.
    """
    found: dict[int, Migration] = {}
    for entry in (directory or migrations_dir()).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE.match(entry.name)
        if match is None:
            raise MigrationError(f"{entry.name}: migration files are named NNNN_lowercase_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{entry.name}: version {version} is also {found[version].name}")
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


async def migrate(dsn: str, *, directory: Traversable | None = None) -> list[Migration]:
    """Bring the database at ``dsn`` up to date; return the migrations applied now.

    Raises:
        DatabaseUnavailable: PostgreSQL cannot be reached.
        MigrationError: applied migrations were edited or removed.
    """
    wanted = load_migrations(directory)
    conn = await connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            return await _apply(conn, wanted)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    finally:
        await conn.close()


async def _apply(conn: Connection, wanted: list[Migration]) -> list[Migration]:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    recorded = {r["version"]: r for r in await conn.fetch("SELECT version, name, sha256 FROM schema_migrations")}
    by_version = {m.version: m for m in wanted}
    for version, row in sorted(recorded.items()):
        migration = by_version.get(version)
        if migration is None:
            raise MigrationError(f"the database has migration {version:04d}_{row['name']} but no such file exists")
        if migration.sha256 != row["sha256"]:
            raise MigrationError(
                f"{version:04d}_{migration.name}.sql changed after it was applied; add a new migration instead"
            )
    applied: list[Migration] = []
    for migration in wanted:
        if migration.version in recorded:
            continue
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.sha256,
            )
        applied.append(migration)
    return applied


async def applied_versions(conn: Connection) -> list[int]:
    """Versions recorded in ``schema_migrations`` (empty before the first run)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return []
    return [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")]
