"""The control plane's aggregates against a real PostgreSQL (one fresh database for this module)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import pytest

import botkiln.infra.db
from botkiln.infra.crypto import SecretBox, new_webhook_secret
from botkiln.infra.db import (
    Pool,
    audit,
    bots,
    connect,
    deployments,
    projects,
    revisions,
    specs,
    tasks,
    transaction,
    users,
)
from botkiln.interpreter.canonical import canonical_json
from tests.conftest import minimal_spec

pytestmark = pytest.mark.anyio

BOX = SecretBox((bytes(range(32)),))
TOKEN = "987654321:AAF-not-a-real-token-but-shaped-like-one"


@dataclass(frozen=True)
class World:
    """Users and a project shared by the tests of this module."""

    alice: UUID
    bob: UUID
    carol: UUID
    project: UUID


async def _world(dsn: str) -> World:
    conn = await connect(dsn)
    try:
        made = []
        for name in ("alice", "bob", "carol"):
            user = await users.create_user(conn, email=f"{name}@example.com", password=f"{name}-pw", display_name=name)
            assert isinstance(user, users.User)
            made.append(user.id)
        project = await projects.create_project(conn, name="Shop", owner_id=made[0])
        return World(made[0], made[1], made[2], project.id)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def world(database: str) -> Iterator[World]:
    yield asyncio.run(_world(database))


def _bot_id() -> str:
    return f"bot-{secrets.token_hex(4)}"


async def _bot(pool: Pool, world: World, *, telegram_bot_id: int | None = None) -> bots.Bot:
    bot = await bots.create_bot(
        pool,
        BOX,
        bot_id=_bot_id(),
        project_id=world.project,
        name="Support",
        token=TOKEN,
        webhook_secret=new_webhook_secret(),
        created_by=world.alice,
        telegram_bot_id=telegram_bot_id,
    )
    assert isinstance(bot, bots.Bot)
    return bot


def _rev(bot_id: str, n: int, spec_version: int | None = None) -> tuple[dict[str, Any], bytes]:
    """A rev.json (parsed and raw) for a made-up revision number ``n`` of ``bot_id``."""
    digest = hashlib.sha256(f"{bot_id}/{n}".encode()).hexdigest()
    rev = {
        "revHash": digest,
        "botId": bot_id,
        "specHash": hashlib.sha256(f"spec {n}".encode()).hexdigest(),
        "specVersion": spec_version,
        "artifacts": {
            "bot.js": {"sha256": hashlib.sha256(b"js").hexdigest(), "size": 2},
            "spec.json": {"sha256": hashlib.sha256(b"spec").hexdigest(), "size": 4},
        },
        "build": {"generator": "compiler", "generatorVersion": "1.0.0", "model": None, "seed": None},
    }
    return rev, canonical_json(rev)


async def _revision(pool: Pool, bot_id: str, n: int) -> str:
    rev, raw = _rev(bot_id, n)
    record = await revisions.record_revision(pool, rev=rev, rev_json=raw, artifacts_uri="file:///x/", created_by=None)
    return record.rev_hash


def test_db_package_exports_are_pinned() -> None:
    assert botkiln.infra.db.__all__ == [
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


class TestUsers:
    async def test_emails_are_unique_regardless_of_case(self, pool: Pool, world: World) -> None:
        taken = await users.create_user(pool, email="  ALICE@Example.com ", password="x")
        assert taken == users.EmailTaken("alice@example.com")
        found = await users.find_user(pool, "Alice@example.COM")
        assert found is not None and found.id == world.alice
        assert await users.get_user(pool, world.alice) == found

    async def test_authenticate_checks_the_password_and_stores_only_a_hash(self, pool: Pool, world: World) -> None:
        assert await users.authenticate(pool, "bob@example.com", "wrong") is None
        assert await users.authenticate(pool, "nobody@example.com", "bob-pw") is None
        bob = await users.authenticate(pool, "BOB@example.com", "bob-pw")
        assert bob is not None and bob.id == world.bob
        stored = await pool.fetchval("SELECT password_hash FROM users WHERE id = $1", world.bob)
        assert stored.startswith("$argon2id$") and "bob-pw" not in stored
        assert not any(f.name == "password_hash" for f in dataclasses.fields(users.User))


class TestProjects:
    async def test_the_creator_owns_a_new_project(self, pool: Pool, world: World) -> None:
        assert await projects.role_of(pool, world.project, world.alice) == "owner"
        assert await projects.role_of(pool, world.project, world.carol) is None
        listed = await projects.list_projects(pool, world.alice)
        assert [(a.project.id, a.role) for a in listed] == [(world.project, "owner")]

    async def test_members_get_and_change_roles(self, pool: Pool, world: World) -> None:
        project = await projects.create_project(pool, name="Roles", owner_id=world.alice)
        member = await projects.set_member_role(
            pool, project_id=project.id, user_id=world.bob, role="viewer", added_by=world.alice
        )
        assert isinstance(member, projects.Member) and member.role == "viewer"
        await projects.set_member_role(pool, project_id=project.id, user_id=world.bob, role="editor", added_by=None)
        assert await projects.role_of(pool, project.id, world.bob) == "editor"
        assert [m.user_id for m in await projects.list_members(pool, project.id)] == [world.alice, world.bob]
        assert projects.at_least("editor", "viewer") and not projects.at_least("editor", "owner")
        assert not projects.at_least(None, "viewer")
        assert await projects.remove_member(pool, project_id=project.id, user_id=world.bob) is True
        assert await projects.remove_member(pool, project_id=project.id, user_id=world.bob) is False
        with pytest.raises(ValueError, match="admin"):
            await projects.set_member_role(
                pool,
                project_id=project.id,
                user_id=world.bob,
                role="admin",  # type: ignore[arg-type]
                added_by=None,
            )

    async def test_the_last_owner_cannot_leave_or_be_demoted(self, pool: Pool, world: World) -> None:
        project = await projects.create_project(pool, name="Solo", owner_id=world.alice)
        demote = await projects.set_member_role(
            pool, project_id=project.id, user_id=world.alice, role="editor", added_by=world.alice
        )
        assert demote == projects.LastOwner(project.id)
        assert await projects.remove_member(pool, project_id=project.id, user_id=world.alice) == projects.LastOwner(
            project.id
        )

    async def test_two_owners_demoting_themselves_at_once_leave_one_owner(self, pool: Pool, world: World) -> None:
        project = await projects.create_project(pool, name="Pair", owner_id=world.alice)
        await projects.set_member_role(pool, project_id=project.id, user_id=world.bob, role="owner", added_by=None)

        results = await asyncio.gather(
            *(
                projects.set_member_role(pool, project_id=project.id, user_id=u, role="viewer", added_by=u)
                for u in (world.alice, world.bob)
            )
        )

        assert sorted(type(r).__name__ for r in results) == ["LastOwner", "Member"]
        owners = [m for m in await projects.list_members(pool, project.id) if m.role == "owner"]
        assert len(owners) == 1

    async def test_role_for_bot_follows_the_bots_project(self, pool: Pool, world: World) -> None:
        bot = await _bot(pool, world)
        assert await projects.role_for_bot(pool, bot.id, world.alice) == "owner"
        assert await projects.role_for_bot(pool, bot.id, world.carol) is None


class TestBots:
    async def test_the_token_and_webhook_secret_are_not_readable_in_the_raw_table(
        self, pool: Pool, world: World
    ) -> None:
        secret = new_webhook_secret()
        bot = await bots.create_bot(
            pool,
            BOX,
            bot_id=_bot_id(),
            project_id=world.project,
            name="Raw",
            token=TOKEN,
            webhook_secret=secret,
            created_by=world.alice,
        )
        assert isinstance(bot, bots.Bot)

        row = await pool.fetchrow("SELECT * FROM bots WHERE id = $1", bot.id)
        assert row is not None
        raw = " ".join(str(v) for v in row.values())
        assert TOKEN not in raw and TOKEN.split(":")[1] not in raw and secret not in raw
        assert row["token_ciphertext"].startswith("v1:")
        assert TOKEN not in repr(bot) and secret not in repr(bot)
        assert {f.name for f in dataclasses.fields(bots.Bot)}.isdisjoint({"token", "token_ciphertext"})

        assert await bots.decrypt_token(pool, BOX, bot.id) == TOKEN
        assert await bots.decrypt_webhook_secret(pool, BOX, bot.id) == secret
        assert await bots.check_webhook_secret(pool, BOX, bot.id, secret)
        assert not await bots.check_webhook_secret(pool, BOX, bot.id, secret[:-1] + "x")
        assert not await bots.check_webhook_secret(pool, BOX, "no-such-bot", secret)

    async def test_a_ciphertext_copied_to_another_bot_does_not_decrypt(self, pool: Pool, world: World) -> None:
        first, second = await _bot(pool, world), await _bot(pool, world)
        await pool.execute(
            "UPDATE bots SET token_ciphertext = (SELECT token_ciphertext FROM bots WHERE id = $1) WHERE id = $2",
            first.id,
            second.id,
        )
        from botkiln.infra.crypto import DecryptionFailed

        with pytest.raises(DecryptionFailed):
            await bots.decrypt_token(pool, BOX, second.id)

    async def test_tokens_can_be_rotated(self, pool: Pool, world: World) -> None:
        bot = await _bot(pool, world)
        assert await bots.set_token(pool, BOX, bot.id, "1:new-token", telegram_bot_id=None) is True
        assert await bots.decrypt_token(pool, BOX, bot.id) == "1:new-token"
        assert await bots.set_webhook_secret(pool, BOX, bot.id, "s" * 43)
        assert await bots.check_webhook_secret(pool, BOX, bot.id, "s" * 43)
        assert await bots.set_token(pool, BOX, "no-such-bot", "x") is False

    async def test_ids_and_telegram_bots_are_not_shared(self, pool: Pool, world: World) -> None:
        telegram_id = secrets.randbelow(10**9) + 1
        bot = await _bot(pool, world, telegram_bot_id=telegram_id)
        again = await bots.create_bot(
            pool,
            BOX,
            bot_id=bot.id,
            project_id=world.project,
            name="Dup",
            token=TOKEN,
            webhook_secret="s",
            created_by=None,
        )
        assert again == bots.BotIdTaken(bot.id)
        same_token = await bots.create_bot(
            pool,
            BOX,
            bot_id=_bot_id(),
            project_id=world.project,
            name="Dup",
            token=TOKEN,
            webhook_secret="s",
            created_by=None,
            telegram_bot_id=telegram_id,
        )
        assert same_token == bots.TokenInUse(telegram_id)
        other = await _bot(pool, world)
        assert await bots.set_token(pool, BOX, other.id, TOKEN, telegram_bot_id=telegram_id) == bots.TokenInUse(
            telegram_id
        )

    async def test_a_deleted_bot_keeps_its_id_and_history_but_leaves_listings(self, pool: Pool, world: World) -> None:
        bot = await _bot(pool, world)
        assert await bots.delete_bot(pool, bot.id)
        assert not await bots.delete_bot(pool, bot.id)
        assert await bots.get_bot(pool, bot.id) is None
        deleted = await bots.get_bot(pool, bot.id, include_deleted=True)
        assert deleted is not None and deleted.deleted_at is not None
        assert bot.id not in [b.id for b in await bots.list_bots(pool, world.project)]
        assert await bots.decrypt_token(pool, BOX, bot.id) is None
        recreated = await bots.create_bot(
            pool, BOX, bot_id=bot.id, project_id=world.project, name="X", token="t", webhook_secret="s", created_by=None
        )
        assert recreated == bots.BotIdTaken(bot.id)

    async def test_flip_compare_and_set_wins_exactly_once_under_concurrency(self, pool: Pool, world: World) -> None:
        # Given a bot serving r0 and eight candidate revisions
        bot = await _bot(pool, world)
        r0 = await _revision(pool, bot.id, 0)
        assert await bots.flip_active(pool, bot.id, None, r0) == bots.FlipResult(True, r0)
        candidates = [await _revision(pool, bot.id, n) for n in range(1, 9)]

        # When eight deployers flip from r0 at the same moment
        results = await asyncio.gather(*(bots.flip_active(pool, bot.id, r0, rev) for rev in candidates))

        # Then exactly one wins, and every loser is told what is active now
        winners = [r for r in results if r.flipped]
        assert len(winners) == 1
        assert all(r.active_rev == winners[0].active_rev for r in results)
        current = await bots.get_bot(pool, bot.id)
        assert current is not None and current.active_rev == winners[0].active_rev

    async def test_flip_refuses_a_revision_of_another_bot(self, pool: Pool, world: World) -> None:
        bot, other = await _bot(pool, world), await _bot(pool, world)
        foreign = await _revision(pool, other.id, 1)
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await bots.flip_active(pool, bot.id, None, foreign)


class TestSpecs:
    async def test_versions_are_numbered_canonical_and_immutable(self, pool: Pool, world: World) -> None:
        bot = await _bot(pool, world)
        spec = minimal_spec()
        saved = await specs.save_spec_version(pool, bot.id, spec, 0, author_id=world.alice, message="first")
        assert isinstance(saved, specs.SpecSaved) and saved.created
        assert saved.version.version == 1
        assert saved.version.canonical == canonical_json(spec).decode()
        assert saved.version.spec_hash == hashlib.sha256(canonical_json(spec)).hexdigest()
        assert saved.version.spec == spec

        spec["meta"]["name"] = "Second"
        second = await specs.save_spec_version(pool, bot.id, spec, 1, author_id=world.bob)
        assert isinstance(second, specs.SpecSaved) and second.version.version == 2
        assert await specs.latest_version(pool, bot.id) == 2
        latest = await specs.get_spec_version(pool, bot.id)
        assert latest is not None and latest.spec["meta"]["name"] == "Second"
        first = await specs.get_spec_version(pool, bot.id, 1)
        assert first is not None and first.message == "first" and first.author_id == world.alice
        listed = await specs.list_spec_versions(pool, bot.id)
        assert [v.version for v in listed] == [2, 1]
        assert [v.version for v in await specs.list_spec_versions(pool, bot.id, before=2)] == [1]
        with pytest.raises(ValueError, match="without its spec"):
            _ = listed[0].spec
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await pool.execute("UPDATE spec_versions SET message = 'edited' WHERE bot_id = $1", bot.id)

    async def test_two_saves_on_the_same_base_conflict(self, pool: Pool, world: World) -> None:
        # Given version 1
        bot = await _bot(pool, world)
        await specs.save_spec_version(pool, bot.id, minimal_spec(), 0, author_id=world.alice)
        edits = []
        for name in ("Alice's edit", "Bob's edit"):
            spec = minimal_spec()
            spec["meta"]["name"] = name
            edits.append(spec)

        # When two editors save their edits of version 1 at once
        results = await asyncio.gather(
            *(specs.save_spec_version(pool, bot.id, spec, 1, author_id=world.alice) for spec in edits)
        )

        # Then one is version 2 and the other is told the base moved
        saved = [r for r in results if isinstance(r, specs.SpecSaved)]
        conflicts = [r for r in results if isinstance(r, specs.SpecConflict)]
        assert len(saved) == 1 and saved[0].version.version == 2
        assert conflicts == [specs.SpecConflict(bot.id, expected_version=1, current_version=2)]
        assert await specs.latest_version(pool, bot.id) == 2

    async def test_a_stale_base_conflicts_and_a_replay_does_not(self, pool: Pool, world: World) -> None:
        bot = await _bot(pool, world)
        spec = minimal_spec()
        first = await specs.save_spec_version(pool, bot.id, spec, 0, author_id=world.alice)
        assert isinstance(first, specs.SpecSaved)

        replay = await specs.save_spec_version(pool, bot.id, spec, 0, author_id=world.alice)
        assert replay == specs.SpecSaved(first.version, created=False)

        spec["meta"]["name"] = "changed"
        stale = await specs.save_spec_version(pool, bot.id, spec, 0, author_id=world.alice)
        assert stale == specs.SpecConflict(bot.id, 0, 1)
        ahead = await specs.save_spec_version(pool, bot.id, spec, 5, author_id=world.alice)
        assert ahead == specs.SpecConflict(bot.id, 5, 1)


class TestRevisions:
    async def test_recording_is_idempotent_and_keeps_the_digests(self, pool: Pool, world: World) -> None:
        bot = await _bot(pool, world)
        await specs.save_spec_version(pool, bot.id, minimal_spec(), 0, author_id=world.alice)
        rev, raw = _rev(bot.id, 1, spec_version=1)

        first = await revisions.record_revision(pool, rev=rev, rev_json=raw, artifacts_uri="s3://b/x/", created_by=None)
        again = await revisions.record_revision(pool, rev=rev, rev_json=raw, artifacts_uri="s3://b/x/", created_by=None)

        assert first == again
        assert first.spec_version == 1
        assert first.artifacts["rev.json"] == revisions.Digest(hashlib.sha256(raw).hexdigest(), len(raw))
        assert first.artifacts["bot.js"].size == 2
        assert first.build["generator"] == "compiler" and first.rev == rev
        assert await revisions.get_revision(pool, bot.id, rev["revHash"]) == first
        assert [r.rev_hash for r in await revisions.list_revisions(pool, bot.id)] == [rev["revHash"]]
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await pool.execute("DELETE FROM revisions WHERE bot_id = $1", bot.id)

    async def test_a_revision_must_name_an_existing_spec_version(self, pool: Pool, world: World) -> None:
        bot = await _bot(pool, world)
        rev, raw = _rev(bot.id, 1, spec_version=7)
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await revisions.record_revision(pool, rev=rev, rev_json=raw, artifacts_uri="x", created_by=None)


class TestDeployments:
    async def test_a_deploy_records_stages_and_its_flip_atomically(self, pool: Pool, world: World) -> None:
        bot = await _bot(pool, world)
        r1 = await _revision(pool, bot.id, 1)

        deployment = await deployments.start_deployment(
            pool, bot_id=bot.id, rev_hash=r1, kind="deploy", actor_id=world.alice, why="launch"
        )
        assert (deployment.status, deployment.previous_rev, deployment.stages) == ("running", None, ())
        for stage in ("preflight", "stage", "prewarm", "health"):
            await deployments.record_stage(pool, deployment.id, stage, "started")
            await deployments.record_stage(pool, deployment.id, stage, "passed", "ok")
        flip = await bots.flip_active(pool, bot.id, None, r1, deployment_id=deployment.id)

        assert flip.flipped
        done = await deployments.get_deployment(pool, deployment.id)
        assert done is not None and done.status == "succeeded" and done.finished_at is not None
        assert [(s.stage, s.status) for s in done.stages][-3:] == [
            ("health", "started"),
            ("health", "passed"),
            ("flip", "passed"),
        ]
        assert all(a.at <= b.at for a, b in zip(done.stages, done.stages[1:], strict=False))
        assert await deployments.record_stage(pool, deployment.id, "late", "started") is None
        assert not await deployments.fail_deployment(pool, deployment.id, stage="x", reason="too late")

    async def test_a_finished_deployment_cannot_flip(self, pool: Pool, world: World) -> None:
        bot = await _bot(pool, world)
        r1 = await _revision(pool, bot.id, 1)
        deployment = await deployments.start_deployment(pool, bot_id=bot.id, rev_hash=r1, kind="deploy", actor_id=None)
        assert await deployments.fail_deployment(pool, deployment.id, stage="health", reason="reply differs")

        flip = await bots.flip_active(pool, bot.id, None, r1, deployment_id=deployment.id)

        assert flip == bots.FlipResult(False, None)
        failed = await deployments.get_deployment(pool, deployment.id)
        assert failed is not None
        assert (failed.status, failed.failed_stage, failed.reason) == ("failed", "health", "reply differs")
        assert failed.stages[-1].stage == "health" and failed.stages[-1].status == "failed"

    async def test_history_is_append_only_and_a_rollback_is_a_new_record(self, pool: Pool, world: World) -> None:
        bot = await _bot(pool, world)
        r1, r2 = await _revision(pool, bot.id, 1), await _revision(pool, bot.id, 2)
        d1 = await deployments.start_deployment(pool, bot_id=bot.id, rev_hash=r1, kind="deploy", actor_id=world.alice)
        await bots.flip_active(pool, bot.id, None, r1, deployment_id=d1.id)
        d2 = await deployments.start_deployment(pool, bot_id=bot.id, rev_hash=r2, kind="deploy", actor_id=world.alice)
        await bots.flip_active(pool, bot.id, r1, r2, deployment_id=d2.id)

        last = await deployments.last_succeeded(pool, bot.id)
        assert last is not None and last.id == d2.id and last.previous_rev == r1
        back = await deployments.start_deployment(
            pool, bot_id=bot.id, rev_hash=last.previous_rev, kind="rollback", actor_id=world.bob, why="errors"
        )
        assert (await bots.flip_active(pool, bot.id, r2, r1, deployment_id=back.id)).flipped

        history = await deployments.list_deployments(pool, bot.id)
        assert [(d.kind, d.rev_hash, d.previous_rev, d.status) for d in history] == [
            ("rollback", r1, r2, "succeeded"),
            ("deploy", r2, r1, "succeeded"),
            ("deploy", r1, None, "succeeded"),
        ]
        assert [d.id for d in await deployments.list_deployments(pool, bot.id, before=back.id, limit=1)] == [d2.id]
        for sql in (
            "UPDATE deployments SET why = 'rewritten' WHERE bot_id = $1",
            "DELETE FROM deployments WHERE bot_id = $1",
            "UPDATE deployment_stages SET status = 'passed' WHERE deployment_id IN"
            " (SELECT id FROM deployments WHERE bot_id = $1)",
            "DELETE FROM deployment_outcomes WHERE deployment_id IN (SELECT id FROM deployments WHERE bot_id = $1)",
        ):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await pool.execute(sql, bot.id)
        assert len(await deployments.list_deployments(pool, bot.id)) == 3


class TestTasks:
    async def test_an_idempotency_key_returns_the_same_task(self, pool: Pool, world: World) -> None:
        bot = await _bot(pool, world)
        request: dict[str, Any] = {
            "kind": "deploy",
            "payload": {"revHash": "a" * 64},
            "actor_id": world.alice,
            "bot_id": bot.id,
        }

        first = await tasks.enqueue_task(pool, **request, idempotency_key="k-1")
        again = await tasks.enqueue_task(pool, **request, idempotency_key="k-1")

        assert isinstance(first, tasks.Enqueued) and first.created
        assert isinstance(again, tasks.Enqueued) and not again.created
        assert again.task.id == first.task.id
        other = await tasks.enqueue_task(pool, **{**request, "payload": {"revHash": "b" * 64}}, idempotency_key="k-1")
        assert other == tasks.IdempotencyKeyReused("k-1", first.task.id)
        by_bob = await tasks.enqueue_task(pool, **{**request, "actor_id": world.bob}, idempotency_key="k-1")
        assert isinstance(by_bob, tasks.Enqueued) and by_bob.created
        no_key = [await tasks.enqueue_task(pool, **request) for _ in range(2)]
        assert all(isinstance(r, tasks.Enqueued) and r.created for r in no_key)

    async def test_concurrent_requests_with_one_key_make_one_task(self, pool: Pool, world: World) -> None:
        results = await asyncio.gather(
            *(
                tasks.enqueue_task(pool, kind="generate", payload={"v": 1}, actor_id=None, idempotency_key="sys-key")
                for _ in range(6)
            )
        )
        assert all(isinstance(r, tasks.Enqueued) for r in results)
        assert len({r.task.id for r in results if isinstance(r, tasks.Enqueued)}) == 1
        assert sum(r.created for r in results if isinstance(r, tasks.Enqueued)) == 1

    async def test_an_expired_lease_makes_a_task_claimable_again(self, pool: Pool, world: World) -> None:
        # Given a task claimed by a worker that then dies (never renews)
        made = await tasks.enqueue_task(pool, kind="deploy", payload={}, actor_id=world.alice)
        assert isinstance(made, tasks.Enqueued)
        task_id = made.task.id
        claimed = await tasks.claim_task(pool, task_id, owner="w1", lease_s=0.3)
        assert claimed is not None and (claimed.status, claimed.attempts, claimed.lease_owner) == ("running", 1, "w1")
        assert await tasks.claim_task(pool, task_id, owner="w2", lease_s=30) is None

        # When the lease runs out
        await asyncio.sleep(0.4)

        # Then another worker takes it over, and the dead one can no longer finish it
        taken = await tasks.claim_task(pool, task_id, owner="w2", lease_s=30)
        assert taken is not None and (taken.lease_owner, taken.attempts) == ("w2", 2)
        assert not await tasks.complete_task(pool, task_id, owner="w1", result={"late": True})
        assert not await tasks.renew_lease(pool, task_id, owner="w1", lease_s=30)
        assert await tasks.renew_lease(pool, task_id, owner="w2", lease_s=30)
        assert await tasks.complete_task(pool, task_id, owner="w2", result={"revHash": "r"})
        done = await tasks.get_task(pool, task_id)
        assert done is not None
        assert (done.status, done.result, done.lease_until) == ("succeeded", {"revHash": "r"}, None)
        assert done.finished_at is not None

    async def test_reaping_requeues_or_fails_tasks_whose_worker_died(self, pool: Pool, world: World) -> None:
        bot = await _bot(pool, world)
        retryable = await tasks.enqueue_task(pool, kind="deploy", payload={"n": 1}, actor_id=None, bot_id=bot.id)
        spent = await tasks.enqueue_task(
            pool, kind="deploy", payload={"n": 2}, actor_id=None, bot_id=bot.id, max_attempts=1
        )
        assert isinstance(retryable, tasks.Enqueued) and isinstance(spent, tasks.Enqueued)
        for made in (retryable, spent):
            assert await tasks.claim_task(pool, made.task.id, owner="dead", lease_s=0.05)
        await asyncio.sleep(0.1)

        reaped = {t.id: t for t in await tasks.reap_expired(pool)}

        assert reaped[retryable.task.id].status == "queued"
        assert reaped[retryable.task.id].lease_owner is None
        assert reaped[spent.task.id].status == "failed"
        assert reaped[spent.task.id].error == "the worker stopped (lease expired) on attempt 1 of 1"
        assert await tasks.claim_task(pool, spent.task.id, owner="w", lease_s=5) is None
        assert await tasks.claim_task(pool, retryable.task.id, owner="w", lease_s=5) is not None
        assert {t.id for t in await tasks.list_tasks(pool, bot.id)} == {retryable.task.id, spent.task.id}

    async def test_a_failed_attempt_is_retried_until_attempts_run_out(self, pool: Pool, world: World) -> None:
        made = await tasks.enqueue_task(pool, kind="generate", payload={}, actor_id=None, max_attempts=2)
        assert isinstance(made, tasks.Enqueued)
        assert await tasks.claim_task(pool, made.task.id, owner="a", lease_s=5)
        retried = await tasks.fail_task(pool, made.task.id, owner="a", error="S3 timeout")
        assert retried is not None and (retried.status, retried.error) == ("queued", "S3 timeout")
        assert await tasks.claim_task(pool, made.task.id, owner="b", lease_s=5)
        assert await tasks.fail_task(pool, made.task.id, owner="a", error="not mine") is None
        final = await tasks.fail_task(pool, made.task.id, owner="b", error="S3 timeout again")
        assert final is not None and final.status == "failed" and final.attempts == 2


class TestAudit:
    async def test_entries_are_recorded_filtered_and_never_edited(self, pool: Pool, world: World) -> None:
        bot = await _bot(pool, world)
        first = await audit.record(
            pool, action="bot.create", actor_id=world.alice, project_id=world.project, bot_id=bot.id
        )
        second = await audit.record(
            pool, action="member.set_role", actor_id=world.bob, project_id=world.project, detail={"role": "editor"}
        )

        assert [e.id for e in await audit.list_entries(pool, project_id=world.project)][:2] == [second.id, first.id]
        assert [e.action for e in await audit.list_entries(pool, bot_id=bot.id)] == ["bot.create"]
        by_bob = await audit.list_entries(pool, actor_id=world.bob, project_id=world.project)
        assert by_bob[0].detail == {"role": "editor"}
        assert await audit.list_entries(pool, project_id=world.project, before=second.id, limit=1) == [first]
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await pool.execute("DELETE FROM audit_log WHERE id = $1", first.id)

    async def test_secrets_are_refused_in_details(self, pool: Pool) -> None:
        with pytest.raises(ValueError, match=r"detail.bot.token: audit entries never carry secrets"):
            await audit.record(pool, action="bot.update", actor_id=None, detail={"bot": {"token": "x"}})
        with pytest.raises(ValueError, match=r"detail.items\[0\].password"):
            await audit.record(pool, action="user.update", actor_id=None, detail={"items": [{"password": "x"}]})


async def test_several_aggregates_commit_or_roll_back_together(pool: Pool, world: World) -> None:
    bot = await _bot(pool, world)
    with pytest.raises(RuntimeError):
        async with transaction(pool) as conn:
            await specs.save_spec_version(conn, bot.id, minimal_spec(), 0, author_id=None)
            await audit.record(conn, action="spec.save", actor_id=None, bot_id=bot.id)
            raise RuntimeError("abort")
    assert await specs.latest_version(pool, bot.id) == 0
    assert await audit.list_entries(pool, bot_id=bot.id) == []
