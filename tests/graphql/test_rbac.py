"""Every role against every mutation and the role-bound queries (docs/api.md#roles), over real HTTP.

Roles: anonymous (no session), outsider (signed in, not a member), viewer,
editor, owner. An allowed call returns its success type; a refused one returns
a FORBIDDEN (or UNAUTHENTICATED) error, no data, and changes nothing: the audit
log, tasks, bots and memberships are exactly as before.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import pytest

from botkiln.infra.db import bot_secrets, bots, create_pool, projects, revisions, specs
from botkiln.infra.settings import Settings
from botkiln.infra.telegram_standin import BotApiStandIn
from tests.conftest import minimal_spec
from tests.graphql.support import Api, Reply, sign_up

ROLES = ("anonymous", "outsider", "viewer", "editor", "owner")
RANK = {"viewer": 1, "editor": 2, "owner": 3}


@dataclass
class Team:
    """A project with one bot, a member of each role, and a way to make fresh targets."""

    dsn: str
    settings: Settings
    standin: BotApiStandIn
    project_id: str
    bot_id: str
    rev_hash: str
    spec: dict[str, Any]
    apis: dict[str, Api]
    spare_member: str
    owner_id: UUID
    made: list[str] = field(default_factory=list)

    def db(self, work: Callable[[Any], Any]) -> Any:
        async def run() -> Any:
            pool = await create_pool(self.dsn, min_size=1, max_size=2)
            try:
                return await work(pool)
            finally:
                await pool.close()

        return asyncio.run(run())

    def new_user(self) -> tuple[UUID, str]:
        email = f"spare-{secrets.token_hex(5)}@example.com"
        user_id = self.db(
            lambda pool: pool.fetchval("INSERT INTO users (email, password_hash) VALUES ($1, 'x') RETURNING id", email)
        )
        return user_id, email

    def new_member(self) -> UUID:
        user_id, _ = self.new_user()
        self.db(lambda pool: projects.set_member_role(
            pool, project_id=UUID(self.project_id), user_id=user_id, role="viewer", added_by=None))  # fmt: skip
        return user_id

    def new_bot(self) -> str:
        bot_id = f"t-{secrets.token_hex(5)}"
        box = self.settings.secret_box()
        self.db(lambda pool: bots.create_bot(
            pool, box, bot_id=bot_id, project_id=UUID(self.project_id), name="target", token="1:x",
            webhook_secret="s", created_by=None))  # fmt: skip
        return bot_id

    def new_secret(self) -> str:
        name = f"S_{secrets.token_hex(4).upper()}"
        box = self.settings.secret_box()
        self.db(lambda pool: bot_secrets.set_secret(pool, box, self.bot_id, name, "value", updated_by=None))
        return name

    def snapshot(self) -> tuple[int, ...]:
        async def counts(pool: Any) -> tuple[int, ...]:
            return tuple([
                await pool.fetchval(f"SELECT count(*) FROM {table}")
                for table in ("audit_log", "tasks", "project_members", "projects", "spec_versions", "bot_secrets")
            ] + [await pool.fetchval("SELECT count(*) FROM bots WHERE deleted_at IS NULL")])  # fmt: skip

        return tuple(self.db(counts))


def _fake_revision(bot_id: str, version: int, spec_hash: str) -> tuple[dict[str, Any], bytes]:
    digest = hashlib.sha256(secrets.token_bytes(8)).hexdigest()
    rev = {
        "botId": bot_id, "revHash": digest, "specVersion": version, "specHash": spec_hash,
        "artifacts": {"bot.js": {"sha256": digest, "size": 1}, "spec.json": {"sha256": digest, "size": 1}},
        "build": {"generator": "test"},
    }  # fmt: skip
    return rev, b"{}"


@pytest.fixture(scope="module")
def team(base_url: str, database: str, settings: Settings, standin: BotApiStandIn) -> Iterator[Team]:
    apis = {role: Api(base_url) for role in ROLES}
    viewers = {role: sign_up(apis[role]) for role in ROLES if role != "anonymous"}
    owner = apis["owner"]
    project_id = owner.run(
        'mutation { createProject(name: "team") { ... on ProjectCreated { project { id } } } }'
    ).ok()["createProject"]["project"]["id"]
    for role in ("viewer", "editor"):
        invited = owner.run(
            "mutation($p: ID!, $e: String!, $r: Role!) { inviteMember(projectId: $p, email: $e, role: $r) {"
            " __typename } }",
            {"p": project_id, "e": viewers[role]["email"], "r": role.upper()},
        ).ok()
        assert invited == {"inviteMember": {"__typename": "MemberSet"}}
    bot_id = f"team-{secrets.token_hex(4)}"
    created = owner.run(
        'mutation($p: ID!, $b: String!, $t: String!) { createBot(projectId: $p, botId: $b, name: "T", token: $t)'
        " { __typename } }",
        {"p": project_id, "b": bot_id, "t": standin.register().token},
    ).ok()
    assert created == {"createBot": {"__typename": "BotCreated"}}
    spec = minimal_spec()
    spec["meta"]["botId"] = bot_id
    made = Team(database, settings, standin, project_id, bot_id, "", spec, apis, "", UUID(viewers["owner"]["id"]))

    async def seed(pool: Any) -> str:
        saved = await specs.save_spec_version(pool, bot_id, spec, 0, author_id=made.owner_id)
        assert isinstance(saved, specs.SpecSaved)
        rev, raw = _fake_revision(bot_id, 1, saved.version.spec_hash)
        await revisions.record_revision(pool, rev=rev, rev_json=raw, artifacts_uri="test://", created_by=None)
        return str(rev["revHash"])

    made.rev_hash = made.db(seed)
    made.spare_member = str(made.new_member())
    yield made
    for api in apis.values():
        api.close()


Case = Callable[[Team], Callable[[Api], Reply]]
"""Prepares the call's targets (fresh users, bots), then returns the call."""


def _call(query: str, variables: Callable[[Team], dict[str, Any]] | None = None) -> Case:
    def prepare(team: Team) -> Callable[[Api], Reply]:
        values = None if variables is None else variables(team)
        return lambda api: api.run(query, values)

    return prepare


def _key() -> str:
    return f"k-{secrets.token_hex(6)}"


# mutation -> (least role needed, the call, the success type)
MUTATIONS: dict[str, tuple[str, Case, str]] = {
    "createProject": (
        "signed-in",
        _call('mutation { createProject(name: "x") { __typename } }'),
        "ProjectCreated",
    ),
    "inviteMember": (
        "owner",
        _call(
            "mutation($p: ID!, $e: String!) { inviteMember(projectId: $p, email: $e, role: EDITOR) { __typename } }",
            lambda t: {"p": t.project_id, "e": t.new_user()[1]},
        ),
        "MemberSet",
    ),
    "setMemberRole": (
        "owner",
        _call(
            "mutation($p: ID!, $u: ID!) { setMemberRole(projectId: $p, userId: $u, role: VIEWER) { __typename } }",
            lambda t: {"p": t.project_id, "u": t.spare_member},
        ),
        "MemberSet",
    ),
    "removeMember": (
        "owner",
        _call(
            "mutation($p: ID!, $u: ID!) { removeMember(projectId: $p, userId: $u) { __typename } }",
            lambda t: {"p": t.project_id, "u": str(t.new_member())},
        ),
        "MemberRemoved",
    ),
    "createBot": (
        "owner",
        _call(
            'mutation($p: ID!, $b: String!, $t: String!) { createBot(projectId: $p, botId: $b, name: "N", token: $t)'
            " { __typename } }",
            lambda t: {"p": t.project_id, "b": f"n-{secrets.token_hex(5)}", "t": t.standin.register().token},
        ),
        "BotCreated",
    ),
    "deleteBot": (
        "owner",
        _call("mutation($b: ID!) { deleteBot(botId: $b) { __typename } }", lambda t: {"b": t.new_bot()}),
        "BotDeleted",
    ),
    "saveSpecVersion": (
        "editor",
        _call(
            "mutation($b: ID!, $s: JSON!) { saveSpecVersion(botId: $b, spec: $s, expectedVersion: 0) { __typename } }",
            lambda t: {"b": t.bot_id, "s": t.spec},
        ),
        "SpecSaved",
    ),
    "generate": (
        "editor",
        _call(
            "mutation($b: ID!, $k: String!) { generate(botId: $b, idempotencyKey: $k) { __typename } }",
            lambda t: {"b": t.bot_id, "k": _key()},
        ),
        "TaskStarted",
    ),
    "deploy": (
        "owner",
        _call(
            "mutation($b: ID!, $r: String!, $k: String!) { deploy(botId: $b, revHash: $r, idempotencyKey: $k)"
            " { __typename } }",
            lambda t: {"b": t.bot_id, "r": t.rev_hash, "k": _key()},
        ),
        "TaskStarted",
    ),
    "rollback": (
        "owner",
        _call(
            "mutation($b: ID!, $k: String!) { rollback(botId: $b, idempotencyKey: $k) { __typename } }",
            lambda t: {"b": t.bot_id, "k": _key()},
        ),
        "TaskStarted",
    ),
    "simulate": (
        "viewer",
        _call(
            'mutation($b: ID!, $s: JSON!) { simulate(botId: $b, input: {spec: $s, event: {text: "/start"}})'
            " { __typename } }",
            lambda t: {"b": t.bot_id, "s": t.spec},
        ),
        "Simulated",
    ),
    "replayDeadLetters": (
        "editor",
        _call(
            "mutation($b: ID!) { replayDeadLetters(botId: $b, queue: INBOUND) { __typename } }",
            lambda t: {"b": t.bot_id},
        ),
        "DeadLettersReplayed",
    ),
    "setBotSecret": (
        "owner",
        _call(
            'mutation($b: ID!) { setBotSecret(botId: $b, name: "API_KEY", value: "v-1") { __typename } }',
            lambda t: {"b": t.bot_id},
        ),
        "BotSecretSet",
    ),
    "deleteBotSecret": (
        "owner",
        _call(
            "mutation($b: ID!, $n: String!) { deleteBotSecret(botId: $b, name: $n) { __typename } }",
            lambda t: {"b": t.bot_id, "n": t.new_secret()},
        ),
        "BotSecretDeleted",
    ),
    "dropDeadLetters": (
        "editor",
        _call(
            "mutation($b: ID!) { dropDeadLetters(botId: $b, queue: OUTBOUND) { __typename } }",
            lambda t: {"b": t.bot_id},
        ),
        "DeadLettersDropped",
    ),
}

# query -> (least role needed, the call); an allowed call answers without errors
QUERIES: dict[str, tuple[str, Case]] = {
    "validateSpec": (
        "signed-in",
        _call("query($s: JSON!) { validateSpec(spec: $s) { code } }", lambda t: {"s": t.spec}),
    ),
    "examples": ("signed-in", _call("{ examples { name } }")),
    "deadLetters": (
        "editor",
        _call("query($b: ID!) { deadLetters(botId: $b, queue: INBOUND) { index } }", lambda t: {"b": t.bot_id}),
    ),
}


def allowed(role: str, needed: str) -> bool:
    if needed == "signed-in":
        return role != "anonymous"
    return RANK.get(role, 0) >= RANK[needed]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_role_against_mutation(team: Team, role: str, mutation: str) -> None:
    needed, prepare, success = MUTATIONS[mutation]
    call = prepare(team)
    before = team.snapshot()
    reply = call(team.apis[role])
    if allowed(role, needed):
        assert reply.errors is None, reply.errors
        assert reply.data[mutation]["__typename"] == success
    else:
        assert reply.data is None
        assert reply.codes == ["UNAUTHENTICATED" if role == "anonymous" and needed == "signed-in" else "FORBIDDEN"]
        assert team.snapshot() == before


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("query", list(QUERIES))
def test_role_against_query(team: Team, role: str, query: str) -> None:
    needed, prepare = QUERIES[query]
    reply = prepare(team)(team.apis[role])
    if allowed(role, needed):
        assert reply.errors is None, reply.errors
        assert isinstance(reply.data[query], list)
    else:
        assert reply.data is None
        assert reply.codes == ["UNAUTHENTICATED" if role == "anonymous" and needed == "signed-in" else "FORBIDDEN"]


def test_the_webhook_state_needs_the_editor_role(team: Team) -> None:
    query = "query($b: ID!) { bot(botId: $b) { id webhook { __typename } } }"
    for role in ROLES:
        reply = team.apis[role].run(query, {"b": team.bot_id})
        if role in ("anonymous", "outsider"):
            assert reply.data == {"bot": None} and reply.codes == ["FORBIDDEN"]
        elif role == "viewer":
            assert reply.data == {"bot": {"id": team.bot_id, "webhook": None}} and reply.codes == ["FORBIDDEN"]
        else:
            assert reply.ok() == {"bot": {"id": team.bot_id, "webhook": {"__typename": "WebhookState"}}}


def test_secret_names_need_the_editor_role(team: Team) -> None:
    name = team.new_secret()
    query = "query($b: ID!) { bot(botId: $b) { id secrets { name } missingSecrets } }"
    for role in ROLES:
        reply = team.apis[role].run(query, {"b": team.bot_id})
        if role in ("anonymous", "outsider"):
            assert reply.data == {"bot": None} and reply.codes == ["FORBIDDEN"]
        elif role == "viewer":
            assert reply.data == {"bot": {"id": team.bot_id, "secrets": None, "missingSecrets": None}}
            assert reply.codes == ["FORBIDDEN", "FORBIDDEN"]
        else:
            got = reply.ok()["bot"]
            assert name in {s["name"] for s in got["secrets"]} and got["missingSecrets"] == []


def test_reads_need_the_viewer_role(team: Team) -> None:
    query = "query($b: ID!) { bot(botId: $b) { id } specVersions(botId: $b) { edges { node { version } } } }"
    for role in ROLES:
        reply = team.apis[role].run(query, {"b": team.bot_id})
        if role in ("anonymous", "outsider"):
            assert reply.data is None and set(reply.codes) == {"FORBIDDEN"}
        else:
            assert reply.ok()["bot"] == {"id": team.bot_id}


def test_a_missing_bot_and_a_foreign_bot_are_refused_alike(team: Team) -> None:
    outsider = team.apis["outsider"]
    missing = outsider.run("query($b: ID!) { bot(botId: $b) { id } }", {"b": "no-such-bot"})
    foreign = outsider.run("query($b: ID!) { bot(botId: $b) { id } }", {"b": team.bot_id})
    assert missing.errors is not None and foreign.errors is not None
    assert missing.errors[0]["message"] == foreign.errors[0]["message"]


def test_the_last_owner_cannot_demote_themselves(team: Team) -> None:
    reply = (
        team.apis["owner"]
        .run(
            "mutation($p: ID!, $u: ID!) { setMemberRole(projectId: $p, userId: $u, role: EDITOR) { __typename } }",
            {"p": team.project_id, "u": str(team.owner_id)},
        )
        .ok()
    )
    assert reply == {"setMemberRole": {"__typename": "LastOwner"}}


def test_idempotency_keys_are_per_request(team: Team) -> None:
    owner = team.apis["owner"]
    query = (
        "mutation($b: ID!, $r: String!, $k: String!) { deploy(botId: $b, revHash: $r, idempotencyKey: $k)"
        " { __typename ... on TaskStarted { task { id } } ... on IdempotencyKeyReused { taskId } } }"
    )
    first = owner.run(query, {"b": team.bot_id, "r": team.rev_hash, "k": "same"}).ok()["deploy"]
    again = owner.run(query, {"b": team.bot_id, "r": team.rev_hash, "k": "same"}).ok()["deploy"]
    assert again == first
    other = owner.run(
        'mutation($b: ID!) { generate(botId: $b, idempotencyKey: "same") { __typename'
        " ... on IdempotencyKeyReused { taskId } } }",
        {"b": team.bot_id},
    ).ok()["generate"]
    assert other == {"__typename": "IdempotencyKeyReused", "taskId": first["task"]["id"]}
