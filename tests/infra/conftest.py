"""Real services for the storage tests: a fresh PostgreSQL database per module, moto's S3.

A service that cannot be reached fails the test (CI must not go green by skipping).
Locally, ``BOTKILN_ALLOW_SKIP=1`` turns that into a skip naming the service (never
when ``CI`` is set).
``BOTKILN_TEST_DATABASE_URL`` points at the server (default: the local one, as
postgres); each module gets its own ``botkiln_test_<random>`` database, dropped
afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import boto3
import pytest

from botkiln.infra.db import Pool, create_pool, migrate

POSTGRES_URL = os.environ.get("BOTKILN_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def service_unavailable(service: str, where: str, exc: BaseException) -> NoReturn:
    """Fail (or, with BOTKILN_ALLOW_SKIP=1, skip) naming the service that is down."""
    message = f"{service} at {where} is not reachable ({type(exc).__name__}: {exc}); start it as .ci/run does"
    if os.environ.get("BOTKILN_ALLOW_SKIP") == "1" and not os.environ.get("CI"):
        pytest.skip(message)
    pytest.fail(message)


def with_database(dsn: str, name: str) -> str:
    """``dsn`` pointing at database ``name``."""
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database() -> str:
    """A new empty database; returns its DSN."""
    name = f"botkiln_test_{secrets.token_hex(6)}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        service_unavailable("PostgreSQL", POSTGRES_URL, exc)
    return with_database(POSTGRES_URL, name)


def drop_database(dsn: str) -> None:
    """Drop the database ``dsn`` names, closing any connection left to it."""
    name = urlsplit(dsn).path.lstrip("/")
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Async tests run on asyncio (asyncpg's loop)."""
    return "asyncio"


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A fresh database with no tables; dropped afterwards."""
    dsn = create_database()
    yield dsn
    drop_database(dsn)


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A migrated database shared by one test module."""
    dsn = create_database()
    asyncio.run(migrate(dsn))
    yield dsn
    drop_database(dsn)


@pytest.fixture
async def pool(database: str) -> AsyncIterator[Pool]:
    """A small pool on the module's database."""
    made = await create_pool(database, min_size=1, max_size=8)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@dataclass(frozen=True)
class S3Bucket:
    """A boto3 client and a bucket that exists."""

    client: Any
    name: str


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> S3Bucket:
    """A fresh bucket on moto's server."""
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    bucket = f"botkiln-test-{secrets.token_hex(4)}"
    client.create_bucket(Bucket=bucket)
    return S3Bucket(client, bucket)
