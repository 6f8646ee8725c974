"""Bot secrets through the API: write-only, encrypted at rest, checked before a deploy, never echoed."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

from botkiln.infra.db import bot_secrets, create_pool
from botkiln.infra.settings import Settings
from botkiln.infra.telegram_standin import BotApiStandIn
from tests.graphql.support import Api, cookie_header, sign_up, watching
from tests.graphql.test_flow import CREATE_BOT, CREATE_PROJECT, DEPLOY, GENERATE, SAVE, spec_for

pytestmark = pytest.mark.usefixtures("worker")

SET = """
mutation($b: ID!, $n: String!, $v: String!) {
  setBotSecret(botId: $b, name: $n, value: $v) {
    __typename
    ... on BotSecretSet { secret { name updatedAt } }
    ... on InvalidInput { field message }
    ... on Problem { message }
  }
}
"""
DELETE = "mutation($b: ID!, $n: String!) { deleteBotSecret(botId: $b, name: $n) { __typename } }"
SECRETS = "query($b: ID!, $r: String) { bot(botId: $b) { secrets { name } missingSecrets(revHash: $r) } }"


def crm_spec(bot_id: str) -> dict[str, Any]:
    """The flow test's bot with a /crm command whose apiCall sends ``{{secret.CRM_TOKEN}}``."""
    spec = spec_for(bot_id, "Hello")
    spec["commands"].append({"command": "crm", "flow": "crm"})
    spec["flows"].append({"id": "crm", "steps": [
        {"id": "call", "type": "apiCall", "method": "GET", "url": "https://crm.example.com/ping",
         "headers": {"Authorization": "Bearer {{secret.CRM_TOKEN}}", "X-Org": "{{secret.CRM_ORG}}"},
         "timeoutMs": 1000, "onError": "failed"},
        {"id": "ok", "type": "reply", "text": "hello", "next": "#end"},
        {"id": "failed", "type": "reply", "text": "bye"},
    ]})  # fmt: skip
    spec["security"] = {"allowedDomains": ["crm.example.com"]}
    return spec


def stored(settings: Settings, bot_id: str) -> tuple[list[str], dict[str, str]]:
    """The bot's secret ciphertexts as PostgreSQL holds them, and their values decrypted."""

    async def read() -> tuple[list[str], dict[str, str]]:
        assert settings.database_url is not None
        pool = await create_pool(settings.database_url, min_size=1, max_size=1)
        try:
            rows = await pool.fetch("SELECT ciphertext FROM bot_secrets WHERE bot_id = $1 ORDER BY name", bot_id)
            return [r["ciphertext"] for r in rows], await bot_secrets.decrypt_secrets(
                pool, settings.secret_box(), bot_id
            )
        finally:
            await pool.close()

    return asyncio.run(read())


def test_secrets_are_write_only_encrypted_and_required_by_the_deploy(
    api: Api, base_url: str, redis_url: str, standin: BotApiStandIn, settings: Settings, transcript: list[str]
) -> None:
    # Given a bot whose revision's apiCall headers name two secrets, neither set
    sign_up(api)
    project_id = api.run(CREATE_PROJECT, {"n": "Secrets"}).ok()["createProject"]["project"]["id"]
    bot_id = f"sec-{secrets.token_hex(4)}"
    tg = standin.register()
    assert api.run(CREATE_BOT, {"p": project_id, "b": bot_id, "t": tg.token}).ok()["createBot"]["__typename"] == (
        "BotCreated"
    )
    saved = api.run(SAVE, {"b": bot_id, "s": crm_spec(bot_id), "v": 0}).ok()["saveSpecVersion"]
    assert saved["__typename"] == "SpecSaved"
    with watching(base_url, cookies=cookie_header(api), redis_url=redis_url, bot_id=bot_id) as watch:
        gen = api.run(GENERATE, {"b": bot_id, "k": "gen-1"}).ok()["generate"]
        rev = watch.until("GenerateSucceeded", task_id=gen["task"]["id"])[-1]["revHash"]
        assert api.run(SECRETS, {"b": bot_id, "r": rev}).ok()["bot"] == {
            "secrets": [],
            "missingSecrets": ["CRM_ORG", "CRM_TOKEN"],
        }

        # When it is deployed, the preflight refuses it and names what is missing
        first = api.run(DEPLOY, {"b": bot_id, "r": rev, "k": "deploy-1"}).ok()["deploy"]
        failed = watch.until("DeployFailed", task_id=first["task"]["id"])[-1]
        assert failed["stage"] == "preflight" and "CRM_ORG, CRM_TOKEN" in failed["reason"]
        assert "setBotSecret" in failed["reason"]

        # Malformed names and values are refused with the argument named, and nothing is stored
        bad = [
            ({"n": "crm_token", "v": "x"}, "name"),
            ({"n": "1TOKEN", "v": "x"}, "name"),
            ({"n": "CRM_TOKEN", "v": ""}, "value"),
            ({"n": "CRM_TOKEN", "v": "line\nbreak"}, "value"),
            ({"n": "CRM_TOKEN", "v": "x" * (bot_secrets.MAX_VALUE_BYTES + 1)}, "value"),
        ]
        for variables, field in bad:
            reply = api.run(SET, {"b": bot_id, **variables}).ok()["setBotSecret"]
            assert (reply["__typename"], reply["field"]) == ("InvalidInput", field)
            assert len(variables["v"]) < 3 or variables["v"] not in reply["message"]  # the value is never echoed
        assert stored(settings, bot_id) == ([], {})

        # When both are set (one twice: the second value replaces the first)
        token, org = f"tok-{secrets.token_urlsafe(24)}", f"org-{secrets.token_hex(8)}"
        for name, value in (("CRM_TOKEN", "old-value-123456"), ("CRM_TOKEN", token), ("CRM_ORG", org)):
            reply = api.run(SET, {"b": bot_id, "n": name, "v": value}).ok()["setBotSecret"]
            assert reply["__typename"] == "BotSecretSet" and reply["secret"]["name"] == name
        # Then the API lists their names only, and nothing is missing
        assert api.run(SECRETS, {"b": bot_id, "r": rev}).ok()["bot"] == {
            "secrets": [{"name": "CRM_ORG"}, {"name": "CRM_TOKEN"}],
            "missingSecrets": [],
        }
        # And PostgreSQL holds ciphertexts that decrypt to the latest values, not the values
        ciphertexts, values = stored(settings, bot_id)
        assert values == {"CRM_ORG": org, "CRM_TOKEN": token}
        assert len(ciphertexts) == 2 and not any(token in c or org in c for c in ciphertexts)

        # And the deploy goes through
        second = api.run(DEPLOY, {"b": bot_id, "r": rev, "k": "deploy-2"}).ok()["deploy"]
        watch.until("DeployFlipped", task_id=second["task"]["id"])

    # Deleting a secret forgets it; deleting it again finds nothing
    assert api.run(DELETE, {"b": bot_id, "n": "CRM_ORG"}).ok()["deleteBotSecret"]["__typename"] == "BotSecretDeleted"
    assert api.run(DELETE, {"b": bot_id, "n": "CRM_ORG"}).ok()["deleteBotSecret"]["__typename"] == "NotFound"
    assert api.run(SECRETS, {"b": bot_id, "r": None}).ok()["bot"]["missingSecrets"] == ["CRM_ORG"]
    assert stored(settings, bot_id)[1] == {"CRM_TOKEN": token}

    # The audit log says who set what, by name only
    audit = asyncio.run(_audit(settings, bot_id))
    assert audit == [
        ("bot.secret.set", {"name": "CRM_TOKEN"}),
        ("bot.secret.set", {"name": "CRM_TOKEN"}),
        ("bot.secret.set", {"name": "CRM_ORG"}),
        ("bot.secret.delete", {"name": "CRM_ORG"}),
    ]
    # And no answer of the server (bodies, headers, subscription messages) ever held a value
    said = "\n".join(transcript)
    assert token not in said and org not in said and "old-value-123456" not in said


async def _audit(settings: Settings, bot_id: str) -> list[tuple[str, dict[str, Any]]]:
    assert settings.database_url is not None
    pool = await create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        rows = await pool.fetch(
            "SELECT action, detail FROM audit_log WHERE bot_id = $1 AND action LIKE 'bot.secret.%' ORDER BY id", bot_id
        )
        return [(r["action"], r["detail"]) for r in rows]
    finally:
        await pool.close()


def test_a_bot_holds_at_most_the_limit_of_secrets(api: Api, standin: BotApiStandIn) -> None:
    sign_up(api)
    project_id = api.run(CREATE_PROJECT, {"n": "Many"}).ok()["createProject"]["project"]["id"]
    bot_id = f"many-{secrets.token_hex(4)}"
    api.run(CREATE_BOT, {"p": project_id, "b": bot_id, "t": standin.register().token}).ok()
    for n in range(bot_secrets.MAX_SECRETS):
        assert api.run(SET, {"b": bot_id, "n": f"S{n}", "v": "v"}).ok()["setBotSecret"]["__typename"] == "BotSecretSet"
    over = api.run(SET, {"b": bot_id, "n": "ONE_MORE", "v": "v"}).ok()["setBotSecret"]
    assert over["__typename"] == "SecretLimitReached"
    # Replacing an existing one is still allowed at the limit
    assert api.run(SET, {"b": bot_id, "n": "S0", "v": "w"}).ok()["setBotSecret"]["__typename"] == "BotSecretSet"
    assert api.run(SET, {"b": "no-such-bot", "n": "S0", "v": "w"}).errors is not None
