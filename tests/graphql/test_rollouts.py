"""Progressive delivery through the API: start (a deploy task), advance, pin, refusals, abort, promote, history.

Real server and workers; outcomes are watched on the ``progress`` subscription as the console does.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from botkiln.infra.telegram_standin import BotApiStandIn
from tests.graphql.support import Api, cookie_header, sign_up, watching
from tests.graphql.test_flow import CREATE_BOT, CREATE_PROJECT, DEPLOY, GENERATE, ROLLBACK, SAVE, spec_for

pytestmark = pytest.mark.usefixtures("worker")

START = """
mutation($b: ID!, $r: String!, $k: String!, $p: Int!, $steps: [Int!]) {
  startRollout(botId: $b, revHash: $r, idempotencyKey: $k, percent: $p, steps: $steps) {
    __typename ... on TaskStarted { task { id } } ... on InvalidInput { field message }
  }
}
"""
RESULT = """
  __typename
  ... on RolloutUpdated { deploymentId rollout { percent status pinnedChats nextStep candidateRev stableRev
                                                  candidate { updates } } }
  ... on RolloutRefusedProblem { message }
  ... on InvalidInput { field message }
"""
ADVANCE = f"mutation($b: ID!, $p: Int) {{ advanceRollout(botId: $b, percent: $p) {{ {RESULT} }} }}"
PIN = f"mutation($b: ID!, $c: String!) {{ pinChat(botId: $b, chatId: $c) {{ {RESULT} }} }}"
ABORT = f'mutation($b: ID!) {{ abortRollout(botId: $b, why: "looks wrong") {{ {RESULT} }} }}'
PROMOTE = f"mutation($b: ID!) {{ promoteRollout(botId: $b) {{ {RESULT} }} }}"
ROLLOUT = "query($b: ID!) { rollout(botId: $b) { status percent reason steps pinnedChats } }"
ACTIVE = "query($b: ID!) { bot(botId: $b) { activeRevHash } }"


def _generated(api: Api, watch: Any, bot_id: str, greeting: str, version: int) -> str:
    saved = api.run(SAVE, {"b": bot_id, "s": spec_for(bot_id, greeting), "v": version - 1}).ok()["saveSpecVersion"]
    assert saved["__typename"] == "SpecSaved"
    gen = api.run(GENERATE, {"b": bot_id, "k": f"gen-{version}"}).ok()["generate"]
    rev: str = watch.until("GenerateSucceeded", task_id=gen["task"]["id"])[-1]["revHash"]
    return rev


def test_a_rollout_through_the_api_from_start_to_abort_then_to_promotion(
    api: Api, base_url: str, redis_url: str, standin: BotApiStandIn
) -> None:
    # Given a bot serving revision 1, with revisions 2 and 3 built
    sign_up(api)
    project_id = api.run(CREATE_PROJECT, {"n": "Rollouts"}).ok()["createProject"]["project"]["id"]
    bot_id = f"ro-{secrets.token_hex(4)}"
    tg = standin.register(username=f"ro_{secrets.token_hex(3)}_bot")
    assert api.run(CREATE_BOT, {"p": project_id, "b": bot_id, "t": tg.token}).ok()["createBot"]["__typename"] == (
        "BotCreated"
    )
    with watching(base_url, cookies=cookie_header(api), redis_url=redis_url, bot_id=bot_id) as watch:
        rev1 = _generated(api, watch, bot_id, "Hello", 1)
        deploy = api.run(DEPLOY, {"b": bot_id, "r": rev1, "k": "d1"}).ok()["deploy"]
        watch.until("DeployFlipped", task_id=deploy["task"]["id"])
        rev2 = _generated(api, watch, bot_id, "Howdy", 2)
        rev3 = _generated(api, watch, bot_id, "Hiya", 3)

        # A malformed plan is refused with the field that is wrong
        bad = api.run(START, {"b": bot_id, "r": rev2, "k": "s0", "p": 0, "steps": [10, 5]}).ok()["startRollout"]
        assert bad == {"__typename": "InvalidInput", "field": "steps", "message": "strictly increasing"}

        # When a rollout of revision 2 starts at 0 % (the deploy stages run, then the rollout opens)
        started = api.run(START, {"b": bot_id, "r": rev2, "k": "s1", "p": 0, "steps": [10, 50]}).ok()
        task_id = started["startRollout"]["task"]["id"]
        events = watch.until("DeployFlipped", task_id=task_id)
        assert {"DeployProgress"} <= {e["__typename"] for e in events}
        # Then it is running at 0 % beside revision 1, which stays active
        assert api.run(ROLLOUT, {"b": bot_id}).ok()["rollout"] == {
            "status": "RUNNING", "percent": 0, "reason": "", "steps": [10, 50], "pinnedChats": [],
        }  # fmt: skip
        assert api.run(ACTIVE, {"b": bot_id}).ok()["bot"]["activeRevHash"] == rev1

        # When a chat is pinned and the share advances to the next step, then to 50 %
        pinned = api.run(PIN, {"b": bot_id, "c": "-1001234567890"}).ok()["pinChat"]
        assert pinned["rollout"]["pinnedChats"] == ["-1001234567890"] and pinned["deploymentId"] is None
        assert api.run(PIN, {"b": bot_id, "c": "twelve"}).ok()["pinChat"]["field"] == "chatId"
        step = api.run(ADVANCE, {"b": bot_id, "p": None}).ok()["advanceRollout"]
        assert step["rollout"]["percent"] == 10 and step["rollout"]["nextStep"] == 50 and step["deploymentId"]
        assert api.run(ADVANCE, {"b": bot_id, "p": 50}).ok()["advanceRollout"]["rollout"]["percent"] == 50
        # ... each change reached the subscription
        changes = [watch.until("RolloutChanged")[-1] for _ in range(3)]
        assert {e["taskId"] for e in changes} == {changes[0]["taskId"]} and changes[0]["taskId"].startswith("rollout:")

        # Then the share cannot fall, another rollout cannot start, and a plain deploy is refused
        lower = api.run(ADVANCE, {"b": bot_id, "p": 20}).ok()["advanceRollout"]
        assert lower["__typename"] == "RolloutRefusedProblem" and "can only rise: it is 50%" in lower["message"]
        other = api.run(DEPLOY, {"b": bot_id, "r": rev3, "k": "d3"}).ok()["deploy"]
        failed = watch.until("DeployFailed", task_id=other["task"]["id"])[-1]
        assert failed["stage"] == "preflight" and "a rollout is live" in failed["reason"]

        # When it is aborted
        aborted = api.run(ABORT, {"b": bot_id}).ok()["abortRollout"]
        assert (aborted["rollout"]["status"], aborted["rollout"]["percent"]) == ("ABORTED", 0)
        assert api.run(ABORT, {"b": bot_id}).ok()["abortRollout"]["__typename"] == "RolloutRefusedProblem"
        assert api.run(ACTIVE, {"b": bot_id}).ok()["bot"]["activeRevHash"] == rev1

        # And a rollout of revision 3 is promoted
        again = api.run(START, {"b": bot_id, "r": rev3, "k": "s2", "p": 5, "steps": [5, 100]}).ok()
        watch.until("DeployFlipped", task_id=again["startRollout"]["task"]["id"])
        promoted = api.run(PROMOTE, {"b": bot_id}).ok()["promoteRollout"]
        assert (promoted["rollout"]["status"], promoted["rollout"]["percent"]) == ("COMPLETED", 100)
        assert api.run(ACTIVE, {"b": bot_id}).ok()["bot"]["activeRevHash"] == rev3
        # ... and "undo the last flip" undoes the promotion (rollout steps short of it flipped nothing)
        back = api.run(ROLLBACK, {"b": bot_id, "k": "back-1"}).ok()["rollback"]
        assert watch.until("RollbackFlipped", task_id=back["task"]["id"])[-1]["revHash"] == rev1

    # Then every traffic step is a deployment record, newest first (the refused deploy never got one: its task
    # failed at preflight, before a deployment was recorded)
    history = api.run(
        "query($b: ID!) { deployments(botId: $b, first: 12) { edges { node { kind revHash percent status } } } }",
        {"b": bot_id},
    ).ok()["deployments"]["edges"]
    steps = [(n["node"]["kind"], n["node"]["revHash"], n["node"]["percent"], n["node"]["status"]) for n in history]
    assert steps == [
        ("ROLLBACK", rev1, None, "SUCCEEDED"),
        ("ROLLOUT", rev3, 100, "SUCCEEDED"),
        ("ROLLOUT", rev3, 5, "SUCCEEDED"),
        ("ROLLOUT", rev2, 0, "SUCCEEDED"),
        ("ROLLOUT", rev2, 50, "SUCCEEDED"),
        ("ROLLOUT", rev2, 10, "SUCCEEDED"),
        ("ROLLOUT", rev2, 0, "SUCCEEDED"),
        ("DEPLOY", rev1, None, "SUCCEEDED"),
    ]
