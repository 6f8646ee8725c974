"""The whole control plane through the API: sign up -> bot -> spec -> generate -> deploy -> rollback.

Real server, real workers, real Redis pub/sub: every step is a gql call over
HTTP, every outcome is watched on the ``progress`` subscription over
graphql-transport-ws, exactly as the console does it.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import pytest

from botkiln.infra.telegram_standin import BotApiStandIn
from tests.conftest import minimal_spec
from tests.graphql.support import Api, cookie_header, sign_up, watching

pytestmark = pytest.mark.usefixtures("worker")

CREATE_PROJECT = "mutation($n: String!) { createProject(name: $n) { ... on ProjectCreated { project { id } } } }"
CREATE_BOT = """
mutation($p: ID!, $b: String!, $t: String!) {
  createBot(projectId: $p, botId: $b, name: "Flow bot", token: $t) {
    __typename
    ... on BotCreated { bot { id telegramUsername activeRevHash } }
    ... on InvalidInput { field }
    ... on Problem { message }
  }
}
"""
SAVE = """
mutation($b: ID!, $s: JSON!, $v: Int!) {
  saveSpecVersion(botId: $b, spec: $s, expectedVersion: $v) {
    __typename
    ... on SpecSaved { specVersion { version specHash } created }
    ... on SpecInvalid { errors { pointer code message hint } }
    ... on VersionConflict { expectedVersion currentVersion }
  }
}
"""
GENERATE = """
mutation($b: ID!, $k: String!) {
  generate(botId: $b, idempotencyKey: $k) {
    __typename ... on TaskStarted { task { id status kind } } ... on Problem { message }
  }
}
"""
DEPLOY = """
mutation($b: ID!, $r: String!, $k: String!) {
  deploy(botId: $b, revHash: $r, idempotencyKey: $k) { __typename ... on TaskStarted { task { id } } }
}
"""
ROLLBACK = """
mutation($b: ID!, $k: String!) {
  rollback(botId: $b, idempotencyKey: $k) { __typename ... on TaskStarted { task { id } } }
}
"""
BOT = """
query($b: ID!) {
  bot(botId: $b) {
    activeRevHash latestSpecVersion
    activeRevision { revHash specVersion artifacts { name size } }
    webhook { __typename ... on WebhookState { url expectedUrl registered pendingUpdateCount } }
  }
}
"""


def spec_for(bot_id: str, greeting: str) -> dict[str, Any]:
    spec = minimal_spec()
    spec["meta"]["botId"] = bot_id
    spec["localization"]["strings"]["hello"]["en"] = greeting
    return spec


def test_sign_up_to_rollback_through_the_api(
    api: Api, base_url: str, redis_url: str, standin: BotApiStandIn, transcript: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    # Given a new account with a project
    sign_up(api)
    project_id = api.run(CREATE_PROJECT, {"n": "Flow"}).ok()["createProject"]["project"]["id"]
    bot_id = f"flow-{secrets.token_hex(4)}"

    # A token Telegram does not know is refused as a typed result, and so is a malformed one
    unknown = f"{secrets.randbelow(10**9)}:{secrets.token_urlsafe(27)[:35]}"
    refused = api.run(CREATE_BOT, {"p": project_id, "b": bot_id, "t": unknown}).ok()["createBot"]
    assert refused["__typename"] == "TokenRejected"
    malformed = api.run(CREATE_BOT, {"p": project_id, "b": bot_id, "t": "nope"}).ok()["createBot"]
    assert malformed == {"__typename": "InvalidInput", "field": "token", "message": malformed["message"]}

    # When the bot is created with a real token
    tg = standin.register(username="flow_test_bot")
    created = api.run(CREATE_BOT, {"p": project_id, "b": bot_id, "t": tg.token}).ok()["createBot"]
    assert created == {
        "__typename": "BotCreated",
        "bot": {"id": bot_id, "telegramUsername": "flow_test_bot", "activeRevHash": None},
    }
    # Then Telegram delivers to our ingress with a generated secret, and the API says so
    assert tg.webhook.url == f"{base_url}/wh/{bot_id}"
    assert tg.webhook.secret_token is not None and len(tg.webhook.secret_token) >= 32
    state = api.run(BOT, {"b": bot_id}).ok()["bot"]
    assert state["webhook"] == {
        "__typename": "WebhookState",
        "url": tg.webhook.url,
        "expectedUrl": tg.webhook.url,
        "registered": True,
        "pendingUpdateCount": 0,
    }

    # An invalid spec comes back as data with JSON pointers
    broken = spec_for(bot_id, "Hello")
    broken["commands"][0]["flow"] = "nowhere"
    del broken["meta"]["name"]
    invalid = api.run(SAVE, {"b": bot_id, "s": broken, "v": 0}).ok()["saveSpecVersion"]
    assert invalid["__typename"] == "SpecInvalid"
    pointers = {e["pointer"] for e in invalid["errors"]}
    assert "/commands/0/flow" in pointers and "/meta" in pointers
    assert all(e["code"] and e["message"] for e in invalid["errors"])
    # A spec for another bot is refused with a pointer too
    other = api.run(SAVE, {"b": bot_id, "s": spec_for("someone-else", "Hi"), "v": 0}).ok()["saveSpecVersion"]
    assert [e["code"] for e in other["errors"]] == ["bot-id-mismatch"]

    # A valid spec is saved as version 1; a stale expectedVersion is a typed conflict
    v1 = api.run(SAVE, {"b": bot_id, "s": spec_for(bot_id, "Hello"), "v": 0}).ok()["saveSpecVersion"]
    assert v1["__typename"] == "SpecSaved" and v1["specVersion"]["version"] == 1 and v1["created"]
    stale = api.run(SAVE, {"b": bot_id, "s": spec_for(bot_id, "Howdy"), "v": 0}).ok()["saveSpecVersion"]
    assert stale == {"__typename": "VersionConflict", "expectedVersion": 0, "currentVersion": 1}
    replay = api.run(SAVE, {"b": bot_id, "s": spec_for(bot_id, "Hello"), "v": 0}).ok()["saveSpecVersion"]
    assert replay["__typename"] == "SpecSaved" and replay["created"] is False

    with watching(base_url, cookies=cookie_header(api), redis_url=redis_url, bot_id=bot_id,
                  transcript=transcript) as watch:  # fmt: skip
        # When generate starts (the subscription is already active)
        started = api.run(GENERATE, {"b": bot_id, "k": "gen-v1"}).ok()["generate"]
        assert started["__typename"] == "TaskStarted" and started["task"]["kind"] == "generate"
        task_id = started["task"]["id"]
        events = watch.until("GenerateSucceeded", task_id=task_id)
        # Then the subscriber saw it start and succeed with the revision
        assert events[0]["__typename"] == "GenerateStarted" and events[0]["botId"] == bot_id
        rev1 = events[-1]["revHash"]
        # And replaying the request with the same key returns the same task and starts nothing
        again = api.run(GENERATE, {"b": bot_id, "k": "gen-v1"}).ok()["generate"]
        assert again["task"]["id"] == task_id
        tasks = api.run("query($b: ID!) { tasks(botId: $b) { edges { node { id } } } }", {"b": bot_id}).ok()
        assert [e["node"]["id"] for e in tasks["tasks"]["edges"]] == [task_id]

        # When that revision is deployed
        deploy = api.run(DEPLOY, {"b": bot_id, "r": rev1, "k": "deploy-1"}).ok()["deploy"]
        flipped = watch.until("DeployFlipped", task_id=deploy["task"]["id"])[-1]
        assert flipped["revHash"] == rev1
        bot = api.run(BOT, {"b": bot_id}).ok()["bot"]
        assert bot["activeRevHash"] == rev1 and bot["activeRevision"]["revHash"] == rev1
        assert {a["name"] for a in bot["activeRevision"]["artifacts"]} == {"bot.js", "spec.json", "rev.json"}

        # And a second version is generated and deployed
        v2 = api.run(SAVE, {"b": bot_id, "s": spec_for(bot_id, "Howdy"), "v": 1}).ok()["saveSpecVersion"]
        assert v2["specVersion"]["version"] == 2
        gen2 = api.run(GENERATE, {"b": bot_id, "k": "gen-v2"}).ok()["generate"]
        rev2 = watch.until("GenerateSucceeded", task_id=gen2["task"]["id"])[-1]["revHash"]
        assert rev2 != rev1
        deploy2 = api.run(DEPLOY, {"b": bot_id, "r": rev2, "k": "deploy-2"}).ok()["deploy"]
        watch.until("DeployFlipped", task_id=deploy2["task"]["id"])
        assert api.run(BOT, {"b": bot_id}).ok()["bot"]["activeRevHash"] == rev2

        # Then a rollback flips back to the first revision, without a rebuild
        rollback = api.run(ROLLBACK, {"b": bot_id, "k": "rollback-1"}).ok()["rollback"]
        back = watch.until("RollbackFlipped", task_id=rollback["task"]["id"])[-1]
        assert back["revHash"] == rev1
    assert api.run(BOT, {"b": bot_id}).ok()["bot"]["activeRevHash"] == rev1

    # And the history is three deployments, newest first, each with its stages
    history = api.run(
        "query($b: ID!) { deployments(botId: $b, first: 2) { edges { node { kind revHash status stages { stage } } }"
        " pageInfo { hasNextPage endCursor } } }",
        {"b": bot_id},
    ).ok()["deployments"]
    nodes = [e["node"] for e in history["edges"]]
    assert [(n["kind"], n["revHash"], n["status"]) for n in nodes] == [
        ("ROLLBACK", rev1, "SUCCEEDED"),
        ("DEPLOY", rev2, "SUCCEEDED"),
    ]
    assert "flip" in {s["stage"] for s in nodes[0]["stages"]}
    assert history["pageInfo"]["hasNextPage"] is True
    rest = api.run(
        "query($b: ID!, $a: String) { deployments(botId: $b, after: $a) { edges { node { kind revHash } } } }",
        {"b": bot_id, "a": history["pageInfo"]["endCursor"]},
    ).ok()["deployments"]["edges"]
    assert [e["node"] for e in rest] == [{"kind": "DEPLOY", "revHash": rev1}]

    # Nothing the server said — bodies, headers, subscription messages, logs — holds the token or the secret
    secret = tg.webhook.secret_token
    said = "\n".join(transcript)
    assert tg.token not in said and secret not in said
    # (the test's own gql client logs what it sends, token included: that log is the browser's, not the server's)
    server_logs = [r.getMessage() for r in caplog.records if not r.name.startswith("gql")]
    assert not [m for m in server_logs if tg.token.split(":")[1] in m or secret in m]
    assert any("/bot<redacted>/setWebhook" in m for m in server_logs)


def test_the_all_bots_subscription_shows_only_bots_the_viewer_can_see(
    base_url: str, redis_url: str, standin: BotApiStandIn, transcript: list[str]
) -> None:
    import asyncio

    from redis.asyncio import Redis

    from botkiln.infra.progress import progress_event, publish

    # Given two users, each owning one bot
    alice, bob = Api(base_url, transcript), Api(base_url, transcript)
    ids = []
    for user in (alice, bob):
        sign_up(user)
        project = user.run(CREATE_PROJECT, {"n": "mine"}).ok()["createProject"]["project"]["id"]
        bot_id = f"all-{secrets.token_hex(4)}"
        reply = user.run(CREATE_BOT, {"p": project, "b": bot_id, "t": standin.register().token}).ok()
        assert reply["createBot"]["__typename"] == "BotCreated"
        ids.append(bot_id)

    async def publish_both() -> None:
        client = Redis.from_url(redis_url)
        try:
            for bot_id in (ids[1], ids[0]):
                await publish(client, progress_event("GenerateStarted", bot_id=bot_id, task_id="t-" + bot_id))
        finally:
            await client.aclose()

    # When Alice watches every bot she can see and events of both bots are published (Bob's first)
    with watching(base_url, cookies=cookie_header(alice), redis_url=redis_url, transcript=transcript) as watch:
        asyncio.run(publish_both())
        # Then she gets only her bot's event
        first = watch.next(timeout=10)
        assert first["botId"] == ids[0] and first["__typename"] == "GenerateStarted"
        assert watch.events.empty()
    alice.close()
    bob.close()
