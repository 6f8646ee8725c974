"""PostgreSQL storage of the control plane (DESIGN §7).

Connections come from ``connect``/``create_pool``; the schema from ``migrate``.
One module per aggregate holds plain async functions taking a ``Db`` (a pool or a
connection): ``users``, ``projects``, ``bots``, ``specs``, ``revisions``,
``deployments``, ``tasks``, ``audit``, ``rollouts``, ``bot_secrets``. Expected outcomes (a conflict, a taken
name) are returned as values; exceptions are for bugs and for an unreachable
database.
"""

from botkiln.infra.db.migrate import MigrationError, migrate
from botkiln.infra.db.pool import Connection, DatabaseUnavailable, Db, Pool, connect, create_pool, transaction

__all__ = [
    "Connection",
    "DatabaseUnavailable",
    "Db",
    "MigrationError",
    "Pool",
    "connect",
    "create_pool",
    "migrate",
    "transaction",
]
