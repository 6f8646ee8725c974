"""Connections to PostgreSQL through asyncpg.

Every connection Botkiln uses comes from ``connect`` or ``create_pool``: they
install the ``json``/``jsonb`` codecs (Python values in, Python values out), which
the aggregate modules rely on. The aggregate functions take a ``Db`` — a pool or
one connection — so a caller can run several of them in one ``transaction``.

Failures to reach the server are translated in ``map_db_errors``; DSNs are shown
without their password (``redact_dsn``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from botkiln.interpreter.errors import BotkilnError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    T = TypeVar("T", bound=DataclassInstance)

Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
Db: TypeAlias = "Pool | Connection"

_CONNECT_TIMEOUT_S = 10.0


class DatabaseUnavailable(BotkilnError):
    """PostgreSQL could not be reached, refused the login, or the database does not exist."""


def redact_dsn(dsn: str) -> str:
    """``dsn`` with any password replaced by ``***``."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "<unparsable DSN>"
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@contextlib.contextmanager
def map_db_errors(dsn: str) -> Iterator[None]:
    """The one place connection failures become ``DatabaseUnavailable``."""
    try:
        yield
    except (
        OSError,
        TimeoutError,
        asyncpg.CannotConnectNowError,
        asyncpg.InvalidCatalogNameError,
        asyncpg.InvalidAuthorizationSpecificationError,
        asyncpg.InvalidPasswordError,
        asyncpg.TooManyConnectionsError,
        asyncpg.ConnectionDoesNotExistError,
    ) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise DatabaseUnavailable(f"cannot use PostgreSQL at {redact_dsn(dsn)}: {reason}") from exc


def from_row(cls: type[T], row: asyncpg.Record | dict[str, Any]) -> T:
    """An instance of the dataclass ``cls`` from the row's columns of the same names (others ignored)."""
    keys = set(row.keys())
    return cls(**{f.name: row[f.name] for f in dataclasses.fields(cls) if f.name in keys})


async def init_connection(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """Install the JSON codecs on a new connection."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def connect(dsn: str) -> asyncpg.Connection[asyncpg.Record]:
    """One connection with Botkiln's codecs.

    Raises:
        DatabaseUnavailable: the server cannot be reached or refuses the login.
    """
    with map_db_errors(dsn):
        conn: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(dsn, timeout=_CONNECT_TIMEOUT_S)
    await init_connection(conn)
    return conn


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool[asyncpg.Record]:
    """A connection pool with Botkiln's codecs; close it with ``await pool.close()``.

    Raises:
        DatabaseUnavailable: the server cannot be reached or refuses the login.
    """
    with map_db_errors(dsn):
        pool: asyncpg.Pool[asyncpg.Record] = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, init=init_connection, timeout=_CONNECT_TIMEOUT_S
        )
    return pool


@contextlib.asynccontextmanager
async def transaction(db: Db) -> AsyncIterator[Connection]:
    """A transaction on ``db``: a pooled connection, or a savepoint inside a caller's transaction."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn, conn.transaction():
            yield conn
    else:
        async with db.transaction():
            yield db
