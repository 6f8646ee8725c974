"""Migrations from an empty database: in order, once, safely under concurrency."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from botkiln.infra.cli import main
from botkiln.infra.db import DatabaseUnavailable, MigrationError, connect, migrate
from botkiln.infra.db.migrate import applied_versions, load_migrations, migrations_dir

pytestmark = pytest.mark.anyio

TABLES = {
    "audit_log",
    "bot_secrets",
    "bots",
    "deployment_outcomes",
    "deployment_stages",
    "deployments",
    "project_members",
    "projects",
    "revisions",
    "rollout_pins",
    "rollouts",
    "schema_migrations",
    "spec_versions",
    "tasks",
    "users",
}


async def _tables(dsn: str) -> set[str]:
    conn = await connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def test_an_empty_database_is_migrated_then_migrating_again_changes_nothing(empty_database: str) -> None:
    assert await _tables(empty_database) == set()

    applied = await migrate(empty_database)

    assert [m.version for m in applied] == [m.version for m in load_migrations()]
    assert await _tables(empty_database) == TABLES
    assert await migrate(empty_database) == []
    conn = await connect(empty_database)
    try:
        assert await applied_versions(conn) == [m.version for m in load_migrations()]
    finally:
        await conn.close()


async def test_concurrent_starters_apply_each_migration_exactly_once(empty_database: str) -> None:
    results = await asyncio.gather(*(migrate(empty_database) for _ in range(4)))

    assert sorted(len(r) for r in results) == [0, 0, 0, len(load_migrations())]
    conn = await connect(empty_database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(load_migrations())
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_behind(empty_database: str, tmp_path: Path) -> None:
    (tmp_path / "0001_good.sql").write_text("CREATE TABLE one (x int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE two (x int); SELECT no_such_function();")

    with pytest.raises(asyncpg.UndefinedFunctionError):
        await migrate(empty_database, directory=tmp_path)

    assert await _tables(empty_database) == {"one", "schema_migrations"}
    conn = await connect(empty_database)
    try:
        assert await applied_versions(conn) == [1]
    finally:
        await conn.close()


async def test_an_applied_migration_that_was_edited_stops_the_run(empty_database: str, tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE one (x int);")
    await migrate(empty_database, directory=tmp_path)
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE one (x bigint);")
    (tmp_path / "0002_second.sql").write_text("CREATE TABLE two (x int);")

    with pytest.raises(MigrationError, match=r"0001_first\.sql changed after it was applied"):
        await migrate(empty_database, directory=tmp_path)
    assert "two" not in await _tables(empty_database)

    (tmp_path / "0001_first.sql").unlink()
    with pytest.raises(MigrationError, match="has migration 0001_first but no such file"):
        await migrate(empty_database, directory=tmp_path)


def test_misnamed_or_duplicate_migration_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "1_short.sql").write_text("")
    with pytest.raises(MigrationError, match=r"NNNN_lowercase_name\.sql"):
        load_migrations(tmp_path)
    (tmp_path / "1_short.sql").unlink()
    (tmp_path / "0001_a.sql").write_text("")
    (tmp_path / "0001_b.sql").write_text("")
    with pytest.raises(MigrationError, match="version 1 is also"):
        load_migrations(tmp_path)


def test_the_packaged_migrations_are_found() -> None:
    names = [m.name for m in load_migrations(migrations_dir())]
    assert names[0] == "initial"


async def test_an_unreachable_server_is_reported_without_the_password() -> None:
    with pytest.raises(DatabaseUnavailable, match=r"postgresql://botkiln:\*\*\*@127.0.0.1:1/x") as caught:
        await migrate("postgresql://botkiln:hunter2@127.0.0.1:1/x")
    assert "hunter2" not in str(caught.value)


def test_cli_migrates_and_reports(empty_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "migrate", "--dsn", empty_database]) == 0
    out = capsys.readouterr().out
    assert "applied 0001_initial" in out
    assert main(["db", "migrate", "--dsn", empty_database]) == 0
    assert "nothing to apply" in capsys.readouterr().out


def test_cli_exit_codes_for_an_unreachable_server_and_no_dsn(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["db", "migrate", "--dsn", "postgresql://u:secret@127.0.0.1:1/x"]) == 1
    err = capsys.readouterr().err
    assert "migration failed: cannot use PostgreSQL at postgresql://u:***@127.0.0.1:1/x" in err
    assert "secret" not in err
    monkeypatch.delenv("BOTKILN_DATABASE_URL", raising=False)
    assert main(["db", "migrate"]) == 2
    assert "set BOTKILN_DATABASE_URL or pass --dsn" in capsys.readouterr().err
    monkeypatch.setenv("BOTKILN_DATABASE_URL", "mysql://x")
    assert main(["db", "migrate"]) == 2
    assert "BOTKILN_DATABASE_URL must be a postgresql:// DSN" in capsys.readouterr().err
