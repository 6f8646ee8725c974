"""Real services for the API tests: PostgreSQL, Redis, the Telegram stand-in, the app served by uvicorn.

Each module gets a fresh migrated database, its own artifact directory, its own
Dramatiq namespace and Redis key prefix (deleted afterwards), a Bot API stand-in
and the app itself on loopback ports, reached through real clients (gql over
HTTP and graphql-transport-ws). A module that needs workers asks for ``worker``:
an in-process ``dramatiq.Worker`` on the module's broker. A service that cannot
be reached fails the test; ``BOTKILN_ALLOW_SKIP=1`` turns that into a skip.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest

from botkiln.graphql.app import WS_MAX_MESSAGE_BYTES, build_app
from botkiln.infra.crypto import generate_secret_key
from botkiln.infra.settings import Settings
from botkiln.infra.telegram_standin import BotApiStandIn
from botkiln.workers import WorkerOptions, build_broker, start_worker
from tests.graphql.support import Api, ServerThread
from tests.services import delete_keys

CONSOLE_ORIGIN = "http://127.0.0.1:5173"


@pytest.fixture(scope="module")
def standin() -> Iterator[BotApiStandIn]:
    """The Bot API stand-in, served on a loopback port (``standin.url``)."""
    made = BotApiStandIn(allow_local_webhooks=True)
    server = ServerThread()
    server.start(made.app)
    made.url = server.url
    yield made
    server.stop()


@pytest.fixture(scope="module")
def api_server() -> Iterator[ServerThread]:
    """The API's socket, bound early so the settings can name its URL."""
    server = ServerThread()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def settings(
    database: str, tmp_path_factory: pytest.TempPathFactory, redis_url: str, standin: BotApiStandIn,
    api_server: ServerThread,
) -> Settings:  # fmt: skip
    """Settings for the module: its database, artifacts, the stand-in, a console origin."""
    artifacts: Path = tmp_path_factory.mktemp("artifacts")
    return Settings(
        database_url=database,
        artifacts_url=f"file://{artifacts}",
        redis_url=redis_url,
        secret_key=generate_secret_key(),
        console_origin=CONSOLE_ORIGIN,
        public_url=api_server.url,
        telegram_api_url=standin.url,
    )


@pytest.fixture(scope="module")
def broker(settings: Settings, redis_url: str) -> Iterator[dramatiq.Broker]:
    """The module's broker on its own Dramatiq namespace."""
    namespace = f"botkiln-test-{secrets.token_hex(4)}"
    options = WorkerOptions(lease_s=2.0, lock_wait_s=30.0, recovery_interval_s=0.25, stale_queued_s=3.0)
    made = build_broker(settings, options=options, namespace=namespace)
    yield made
    made.close()
    delete_keys(redis_url, f"{namespace}:*")


@pytest.fixture(scope="module")
def base_url(settings: Settings, broker: dramatiq.Broker, api_server: ServerThread, redis_url: str) -> Iterator[str]:
    """The running API's base URL."""
    prefix = f"botkiln-test-{secrets.token_hex(4)}:"
    api_server.start(build_app(settings, broker=broker, redis_prefix=prefix), ws_max_size=WS_MAX_MESSAGE_BYTES)
    yield api_server.url
    delete_keys(redis_url, f"{prefix}*")


@pytest.fixture(scope="module")
def worker(broker: dramatiq.Broker, base_url: str) -> Iterator[dramatiq.Worker]:
    """An in-process worker consuming the module's broker."""
    running = start_worker(broker, threads=4, timeout_ms=100)
    yield running
    running.stop(timeout=10_000)


@pytest.fixture(scope="module")
def transcript() -> list[str]:
    """Every response body and header set the module's clients received."""
    return []


@pytest.fixture
def api(base_url: str, transcript: list[str]) -> Iterator[Api]:
    """A fresh browser (no cookies yet)."""
    made = Api(base_url, transcript)
    yield made
    made.close()
