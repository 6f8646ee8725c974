"""The real services the tests talk to (PostgreSQL, Redis) and the shared helpers.

A service that is down fails the test with a sentence naming it; locally,
``BOTKILN_ALLOW_SKIP=1`` turns that into a skip (never in CI: ``.ci/run`` starts
the services first).
"""

from __future__ import annotations

import os
from typing import NoReturn

import asyncpg
import pytest
import redis

POSTGRES_URL = os.environ.get("BOTKILN_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BOTKILN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def service_unavailable(service: str, where: str, exc: BaseException) -> NoReturn:
    """Fail (or, with BOTKILN_ALLOW_SKIP=1, skip) naming the service that is down."""
    message = f"{service} at {where} is not reachable ({type(exc).__name__}: {exc}); start it as .ci/run does"
    if os.environ.get("BOTKILN_ALLOW_SKIP") == "1":
        pytest.skip(message)
    pytest.fail(message)


async def admin_sql(sql: str) -> None:
    """Run one statement on the maintenance database (CREATE/DROP DATABASE)."""
    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def delete_keys(url: str, pattern: str) -> None:
    """Delete every Redis key matching ``pattern``."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=pattern))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
