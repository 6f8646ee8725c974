"""The rollout panel in headless Chromium, against the real API and workers.

An owner whose bot serves revision 1 and has revision 2 built (both made through the API,
as the owner's journey in test_e2e.py makes them through the console) starts a rollout of
revision 2 at 0 % from the Generate & deploy tab, pins a chat to it, advances it to 50 %
and aborts it with a reason, checking what the panel shows at each step; the overview's
deployments then list the rollout's steps with their shares.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from botkiln.infra.telegram_standin import BotApiStandIn
from tests.console.conftest import Console
from tests.console.test_e2e import PASSWORD, TASK_MS, faq_example, sign_in, task_card
from tests.graphql.support import Api, sign_up
from tests.graphql.test_flow import CREATE_BOT, CREATE_PROJECT, DEPLOY, GENERATE, SAVE

TASK = "query($id: ID!) { task(id: $id) { status result error } }"
PINNED_CHAT = "4242"


def finished(api: Api, started: dict[str, Any], within: float = TASK_MS / 1000) -> dict[str, Any]:
    """Wait for the task a mutation started (``TaskStarted``) to succeed; its result."""
    assert started["__typename"] == "TaskStarted", started
    deadline = time.monotonic() + within
    while True:
        task = api.run(TASK, {"id": started["task"]["id"]}).ok()["task"]
        if task["status"] in ("SUCCEEDED", "FAILED"):
            assert task["status"] == "SUCCEEDED", task["error"]
            result: dict[str, Any] = task["result"]
            return result
        assert time.monotonic() < deadline, f"task {started['task']['id']} still {task['status']} after {within} s"
        time.sleep(0.2)


def bot_with_two_revisions(base_url: str, standin: BotApiStandIn) -> tuple[str, str, str, str]:
    """An owner's bot serving revision 1, with revision 2 built: (owner's email, bot id, rev 1, rev 2)."""
    api = Api(base_url)
    try:
        owner = sign_up(api, password=PASSWORD)
        project_id = api.run(CREATE_PROJECT, {"n": "Rollouts"}).ok()["createProject"]["project"]["id"]
        bot_id = f"ro-{secrets.token_hex(4)}"
        created = api.run(CREATE_BOT, {"p": project_id, "b": bot_id, "t": standin.register().token}).ok()
        assert created["createBot"]["__typename"] == "BotCreated", created
        revs = []
        for version, welcome in ((1, "Hello {{context.firstName}}!"), (2, "Hi {{context.firstName}}, version two.")):
            spec = faq_example(bot_id, welcome=welcome)
            saved = api.run(SAVE, {"b": bot_id, "s": spec, "v": version - 1}).ok()["saveSpecVersion"]
            assert saved["__typename"] == "SpecSaved", saved
            generated = api.run(GENERATE, {"b": bot_id, "k": f"gen-{version}"}).ok()["generate"]
            revs.append(str(finished(api, generated)["revHash"]))
            if version == 1:
                finished(api, api.run(DEPLOY, {"b": bot_id, "r": revs[0], "k": "deploy-1"}).ok()["deploy"])
        return str(owner["email"]), bot_id, revs[0], revs[1]
    finally:
        api.close()


def test_an_owner_starts_pins_advances_and_aborts_a_rollout(
    open_console: Callable[[], Console], standin: BotApiStandIn, base_url: str
) -> None:
    # Given an owner's bot serving revision 1, with revision 2 built
    email, bot_id, rev1, rev2 = bot_with_two_revisions(base_url, standin)
    console = open_console()
    page = console.page
    sign_in(console, email)

    # When they open Generate & deploy: no rollout yet, the start form is offered
    console.goto(f"/bots/{bot_id}/deploy")
    expect(page.get_by_text("live", exact=True)).to_be_visible()
    panel = page.get_by_role("region", name="Rollout")
    expect(panel.get_by_role("heading", name="Start a rollout")).to_be_visible()
    expect(panel).to_contain_text(rev1[:12])  # what stays on for the other chats

    # And start a rollout of revision 2 at 0 %, steps 10 and 50, after a plan the form refuses
    panel.get_by_label("Candidate revision").select_option(rev2)
    panel.get_by_label("Starting share (%)").fill("0")
    steps = panel.get_by_label("Steps (%)")
    steps.fill("50, 10")
    panel.get_by_role("button", name="Start rollout").click()
    expect(panel.get_by_text("steps must be strictly increasing (10 after 50)")).to_be_visible()
    expect(steps).to_have_attribute("aria-invalid", "true")
    steps.fill("10, 50")
    expect(steps).not_to_have_attribute("aria-invalid", "true")
    panel.get_by_label("Note (kept with the rollout's deployments)").fill("the new welcome, carefully")
    panel.get_by_role("button", name="Start rollout").click()

    # Then the deploy stages run as a rollout task, and the panel shows it running at 0 % beside revision 1
    progress = page.get_by_role("list", name="Progress")
    expect(task_card(progress, "Rollout")).to_contain_text("succeeded", timeout=TASK_MS)
    share = panel.get_by_label("Share of chats on the candidate")
    expect(share).to_have_text("0%")
    expect(panel.get_by_role("heading", name=re.compile(r"^Rollout"))).to_contain_text("running")
    expect(panel.get_by_role("progressbar", name="Candidate share")).to_have_attribute("aria-valuenow", "0")
    facts = panel.locator("dl.facts")
    expect(facts).to_contain_text(rev2[:12])
    expect(facts).to_contain_text(rev1[:12])
    expect(panel.get_by_role("button", name="Advance to 10%")).to_be_visible()
    expect(panel.get_by_role("table", name="Stable and candidate")).to_be_visible()
    expect(page.get_by_text("A rollout is live")).to_be_visible()
    console.shot("20-rollout-running")

    # When they pin a chat to the candidate
    panel.get_by_label("Chat id to pin").fill(PINNED_CHAT)
    panel.get_by_role("button", name="Pin", exact=True).click()
    # Then it is listed, and the share is unchanged
    expect(panel.get_by_role("list", name="Pinned chats")).to_contain_text(PINNED_CHAT)
    expect(share).to_have_text("0%")

    # When they advance to 50 % (past the 10 % step)
    panel.get_by_label("Advance to a share (%)").fill("50")
    panel.get_by_role("button", name="Advance", exact=True).click()
    # Then half the chats are on the candidate, the pin stays, and the next step is the promotion
    expect(share).to_have_text("50%")
    expect(panel.get_by_role("progressbar", name="Candidate share")).to_have_attribute("aria-valuenow", "50")
    expect(panel.get_by_role("list", name="Pinned chats")).to_contain_text(PINNED_CHAT)
    expect(facts).to_contain_text("100% (promotion)")
    console.shot("21-rollout-at-50")

    # When they abort it, saying why (the panel asks first)
    panel.get_by_role("button", name="Abort…").click()
    confirm = panel.get_by_role("form", name="Confirm abort")
    expect(confirm.get_by_role("button", name="Yes, abort")).to_be_disabled()
    confirm.get_by_label("Reason for aborting").fill("the new welcome confuses people")
    confirm.get_by_role("button", name="Yes, abort").click()
    # Then the rollout shows as aborted, with the reason, and the start form is offered again
    last = panel.get_by_label("Last rollout")
    expect(last).to_contain_text(re.compile("aborted", re.IGNORECASE))
    expect(last).to_contain_text("the new welcome confuses people")
    expect(last).to_contain_text(rev2[:12])
    expect(panel.get_by_role("heading", name="Start a rollout")).to_be_visible()
    expect(page.get_by_text("A rollout is live")).to_have_count(0)
    serving_line = page.locator("p").filter(has_text="Serving:")
    expect(serving_line).to_contain_text(rev1[:12])
    console.shot("22-rollout-aborted")

    # And the overview's deployments list each traffic step with its share, newest first
    page.get_by_role("link", name="Overview").click()
    deployments = page.locator("table").filter(has=page.get_by_role("columnheader", name="Stages")).locator("tbody")
    rows = deployments.get_by_role("row")
    expect(rows).to_have_count(4)
    expect(rows.nth(0)).to_contain_text("rollout 0%")  # the abort: every chat back on revision 1
    expect(rows.nth(1)).to_contain_text("rollout 50%")
    expect(rows.nth(2)).to_contain_text("rollout 0%")
    expect(rows.nth(2)).to_contain_text("“the new welcome, carefully”")
    expect(rows.nth(3)).to_contain_text("deploy")
