"""Bots and projects through the API: ids, tokens, webhooks, deletion, paging."""

from __future__ import annotations

import secrets

from botkiln.infra.telegram_standin import BotApiStandIn
from tests.graphql.support import Api, sign_up

CREATE_BOT = """
mutation($p: ID!, $b: String!, $t: String!) {
  createBot(projectId: $p, botId: $b, name: "B", token: $t) { __typename ... on Problem { message } }
}
"""


def _project(api: Api, name: str = "p") -> str:
    reply = api.run("mutation($n: String!) { createProject(name: $n) { ... on ProjectCreated { project { id } } } }",
                    {"n": name}).ok()  # fmt: skip
    project_id: str = reply["createProject"]["project"]["id"]
    return project_id


def test_deleting_a_bot_removes_its_webhook_and_its_id_is_never_reused(api: Api, standin: BotApiStandIn) -> None:
    sign_up(api)
    project = _project(api)
    bot_id = f"del-{secrets.token_hex(4)}"
    tg = standin.register()
    assert (
        api.run(CREATE_BOT, {"p": project, "b": bot_id, "t": tg.token}).ok()["createBot"]["__typename"] == "BotCreated"
    )
    assert tg.webhook.url.endswith(f"/wh/{bot_id}")

    deleted = api.run("mutation($b: ID!) { deleteBot(botId: $b) { ... on BotDeleted { botId webhookRemoved } } }",
                      {"b": bot_id}).ok()  # fmt: skip
    assert deleted == {"deleteBot": {"botId": bot_id, "webhookRemoved": True}}
    assert tg.webhook.url == ""
    assert api.run("query($b: ID!) { bot(botId: $b) { id } }", {"b": bot_id}).ok() == {"bot": None}
    assert api.run("query($p: ID!) { bots(projectId: $p) { edges { node { id } } } }", {"p": project}).ok() == {
        "bots": {"edges": []}
    }
    again = api.run(CREATE_BOT, {"p": project, "b": bot_id, "t": standin.register().token}).ok()["createBot"]
    assert again["__typename"] == "BotIdTaken"


def test_one_telegram_bot_is_managed_by_one_live_bot_only(api: Api, standin: BotApiStandIn) -> None:
    sign_up(api)
    project = _project(api)
    tg = standin.register(username="only_once_bot")
    first = api.run(CREATE_BOT, {"p": project, "b": f"a-{secrets.token_hex(4)}", "t": tg.token}).ok()["createBot"]
    second_id = f"b-{secrets.token_hex(4)}"
    second = api.run(CREATE_BOT, {"p": project, "b": second_id, "t": tg.token}).ok()["createBot"]
    assert first["__typename"] == "BotCreated"
    assert second == {"__typename": "TokenInUse", "message": "@only_once_bot is already managed by another bot"}
    # The refused attempt left the first bot's webhook alone and did not burn its id
    assert not tg.webhook.url.endswith(second_id)
    fresh = api.run(CREATE_BOT, {"p": project, "b": second_id, "t": standin.register().token}).ok()["createBot"]
    assert fresh["__typename"] == "BotCreated"


def test_a_webhook_telegram_refuses_rolls_the_bot_back(api: Api, standin: BotApiStandIn) -> None:
    sign_up(api)
    project = _project(api)
    tg = standin.register()
    standin.allow_local_webhooks = False  # as real Telegram: our http://127.0.0.1 URL is not acceptable
    try:
        refused = api.run(CREATE_BOT, {"p": project, "b": "refused-bot", "t": tg.token}).ok()["createBot"]
    finally:
        standin.allow_local_webhooks = True
    assert refused["__typename"] == "WebhookRejected" and "HTTPS URL must be provided" in refused["message"]
    retried = api.run(CREATE_BOT, {"p": project, "b": "refused-bot", "t": tg.token}).ok()["createBot"]
    assert retried["__typename"] == "BotCreated"


def test_projects_page_as_a_relay_connection(api: Api) -> None:
    sign_up(api)
    names = [_project(api, f"p{n}") for n in range(3)]
    query = (
        "query($a: String) { projects(first: 2, after: $a) { edges { cursor node { id viewerRole } }"
        " pageInfo { hasNextPage endCursor } } }"
    )
    first = api.run(query, {"a": None}).ok()["projects"]
    assert [e["node"]["id"] for e in first["edges"]] == names[:2] and first["pageInfo"]["hasNextPage"]
    assert {e["node"]["viewerRole"] for e in first["edges"]} == {"OWNER"}
    rest = api.run(query, {"a": first["pageInfo"]["endCursor"]}).ok()["projects"]
    assert [e["node"]["id"] for e in rest["edges"]] == names[2:] and not rest["pageInfo"]["hasNextPage"]
    garbage = api.run(query, {"a": "not-a-cursor"})
    assert garbage.codes == ["BAD_USER_INPUT"]
    bad = api.run(query.replace("first: 2", "first: 1000"), {"a": None})
    assert bad.codes == ["BAD_USER_INPUT"]
