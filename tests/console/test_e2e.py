"""The console's user journey in headless Chromium, against the real API, workers and the Telegram stand-in.

An owner signs up, creates a project, adds a bot with a Telegram token (and sees its
webhook delivering), loads the FAQ example in the spec editor, breaks it and sees the
server's problem marked inline before saving, fixes it from the problems list and
saves; generates and deploys it (watching the live progress panel), chats with it in
the simulator, saves and deploys a second version, and rolls back, checking what the
console shows and what the bot answers a Telegram user at each step. A second account,
invited as a viewer, is offered none of the owner's controls.

Telegram users talk to the bot through the stand-in: their /start reaches the
webhook, and the deployed revision answers through the workers.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect

from botkiln.infra.telegram_standin import BotApiStandIn, StandInBot
from botkiln.infra.telegram_standin_updates import chat, user, user_command
from tests.console.conftest import Console
from tests.graphql.support import Api, sign_up

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
CHAT_ID = 4242
TASK_MS = 60_000
"""How long a generate, deploy or rollback may take on a loaded machine."""


def faq_example(bot_id: str | None = None, *, welcome: str | None = None) -> dict[str, Any]:
    """``examples/faq.json`` (its ``meta.botId`` is ``faq-coffee`` unless ``bot_id`` is given)."""
    spec: dict[str, Any] = json.loads((ROOT / "examples" / "faq.json").read_text())
    if bot_id is not None:
        spec["meta"]["botId"] = bot_id
    if welcome is not None:
        spec["localization"]["strings"]["welcome"]["en"] = welcome
    return spec


def greeting(spec: dict[str, Any], first_name: str = user(CHAT_ID)["first_name"]) -> str:
    """What the FAQ bot says to /start (by default to the stand-in's user in chat ``CHAT_ID``)."""
    template: str = spec["localization"]["strings"]["welcome"]["en"]
    return template.replace("{{context.firstName}}", first_name)


def eventually(check: Callable[[], bool], what: str, within: float = 20.0) -> None:
    """Wait (bounded) for something outside the page, such as a message the bot sent on Telegram."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        time.sleep(0.05)


def replace_editor_text(page: Page, text: str) -> None:
    """Select everything in the spec editor and put ``text`` there, as a paste does."""
    editor = page.locator(".cm-content")
    expect(editor).to_have_attribute("contenteditable", "true")
    editor.click()
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.insert_text(text)


def save_spec(page: Page, message: str, outcome: str) -> None:
    """Fill "What changed", press Save and wait for ``outcome`` (a regex of the notice)."""
    page.get_by_label("What changed").fill(message)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text(re.compile(outcome))).to_be_visible()


def chat_replies(standin: BotApiStandIn, bot: StandInBot, chat_id: int = CHAT_ID) -> list[str]:
    return [str(c.params.get("text")) for c in standin.calls(bot, "sendMessage") if int(c.params["chat_id"]) == chat_id]


def say_start(standin: BotApiStandIn, bot: StandInBot, expected: str) -> None:
    """A Telegram user sends /start; the deployed bot answers ``expected``."""
    before = len(chat_replies(standin, bot))
    delivery = standin.send_update(bot, user_command("/start", chat_id=CHAT_ID))
    assert delivery.delivered, delivery
    eventually(lambda: len(chat_replies(standin, bot)) > before, "the bot's answer to /start")
    assert chat_replies(standin, bot)[before:] == [expected]


def task_card(progress: Locator, verb: str) -> Locator:
    """The newest card of the progress panel for a ``verb`` task (Generate, Deploy, Rollback)."""
    return progress.get_by_role("listitem").filter(has=progress.page.get_by_text(verb, exact=True)).first


def revision_of(card: Locator) -> str:
    """The revision a progress card names (its full hash is the short one's title)."""
    rev_hash = card.locator(".mono[title]").first.get_attribute("title")
    assert rev_hash and re.fullmatch(r"[0-9a-f]{64}", rev_hash), rev_hash
    return rev_hash


def sign_in(console: Console, email: str, password: str = PASSWORD) -> None:
    console.goto("/signin")
    page = console.page
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()


# --- the owner's journey ---------------------------------------------------------------------------------------------


def test_owner_signs_up_builds_deploys_and_rolls_back_a_bot(
    open_console: Callable[[], Console], standin: BotApiStandIn, base_url: str
) -> None:
    console = open_console()
    page = console.page
    email = f"owner-{secrets.token_hex(4)}@example.com"
    bot_id = f"faq-{secrets.token_hex(4)}"
    tg = standin.register(username=f"faq_{secrets.token_hex(3)}_bot")

    # Given a visitor who is not signed in: the console sends them to sign in
    console.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    # When they sign up
    page.get_by_role("link", name="Sign up").first.click()
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Name").fill("Ada Owner")
    page.get_by_label("Password").fill(PASSWORD)
    console.shot("01-sign-up")
    page.get_by_role("button", name="Sign up").click()
    # Then they are signed in, with no projects yet
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    expect(page.get_by_role("banner")).to_contain_text("Ada Owner")
    expect(page.get_by_text("No projects yet")).to_be_visible()

    # When they create a project
    page.get_by_label("Project name").fill("Coffee shop")
    page.get_by_role("button", name="Create").click()
    # Then its page shows them as its owner, with no bots and them as the only member
    expect(page).to_have_url(re.compile(r"/projects/[^/]+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Coffee shop")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Owner")
    expect(page.get_by_text("No bots yet.")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=email)).to_be_visible()
    console.shot("02-project")

    # When they add a bot with its Telegram token
    page.get_by_text("Add a bot").click()
    page.get_by_label("Bot id").fill(bot_id)
    page.get_by_label("Name", exact=True).fill("Bean There FAQ")
    page.get_by_label("Telegram token").fill(tg.token)
    page.get_by_role("button", name="Add bot").click()
    # Then the bot's page opens: Telegram knows the webhook, which points at this platform
    expect(page).to_have_url(f"{base_url}/bots/{bot_id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bean There FAQ")
    expect(page.get_by_role("link", name=f"@{tg.username}")).to_be_visible()
    webhook = page.locator(".chart").filter(has=page.get_by_role("heading", name="Webhook"))
    expect(webhook).to_contain_text(f"{base_url}/wh/{bot_id}")
    expect(webhook).to_contain_text("ok")
    expect(webhook).not_to_contain_text("not delivering here")
    assert tg.webhook.url == f"{base_url}/wh/{bot_id}"
    expect(page.get_by_text("Nothing serves yet.")).to_be_visible()
    assert tg.token not in page.content()
    console.shot("03-bot-overview")

    # When they open the spec editor (a starter spec for this bot) and load the FAQ example
    page.get_by_role("link", name="Spec", exact=True).click()
    expect(page.get_by_text("No saved version yet")).to_be_visible()
    editor = page.locator(".cm-content")
    expect(editor).to_contain_text(f'"botId": "{bot_id}"')
    examples = page.get_by_label("Load an example")
    examples.focus()  # the list loads on first use
    examples.select_option("faq")
    # Then the editor holds the example, made this bot's
    expect(editor).to_contain_text('"name": "Bean There FAQ"')
    expect(editor).to_contain_text(f'"botId": "{bot_id}"')
    expect(page.get_by_text("unsaved changes")).to_be_visible()

    # When they point /start at a flow that does not exist, typing over the line in the editor
    page.locator(".cm-line").filter(has_text='"flow": "welcome"').first.click()
    page.keyboard.press("End")
    page.keyboard.press("Shift+Home")
    page.keyboard.insert_text('"flow": "nowhere",')
    # Then, before any save, the server's validation lists the problem by its pointer
    problems = page.get_by_role("list", name="Problems")
    expect(problems).to_contain_text("/commands/0/flow")
    expect(problems).to_contain_text("unresolved-flow")
    expect(problems).to_contain_text('no flow "nowhere"')
    # And the editor marks it inline, in the gutter and in its diagnostics panel
    expect(page.locator(".cm-lintRange-error").filter(has_text='"nowhere"')).to_be_visible()
    expect(page.locator(".cm-lint-marker-error").first).to_be_visible()
    page.keyboard.press("ControlOrMeta+Shift+M")
    diagnostics = page.get_by_role("listbox", name="Diagnostics")
    expect(diagnostics.get_by_role("option").filter(has_text='no flow "nowhere"')).to_be_visible()
    # And saving it is refused
    save_spec(page, "the FAQ example", r"Not saved: 1 problem")
    expect(page.get_by_text("unsaved changes")).to_be_visible()
    console.shot("04-spec-problem-inline")

    # When they jump to the problem from the list and fix the value there (the jump puts the cursor on it)
    problems.get_by_role("button", name="/commands/0/flow").click()
    page.keyboard.press("Shift+End")
    page.keyboard.insert_text('"welcome",')
    # Then the problem goes away as they type, and the save makes version 1
    expect(problems).to_have_count(0)
    expect(page.locator(".cm-lint-marker-error")).to_have_count(0)
    save_spec(page, "the FAQ example", r"Saved as v1\.")
    expect(page.get_by_text("Based on v1")).to_be_visible()
    expect(page.get_by_text("unsaved changes")).to_have_count(0)
    console.shot("05-spec-saved")
    v1 = faq_example(bot_id)

    # When they generate v1 from the Generate & deploy tab, once its progress panel is live
    page.get_by_role("link", name="Generate & deploy").click()
    expect(page.get_by_role("heading", name="Generate & deploy")).to_be_visible()
    expect(page.get_by_text("live", exact=True)).to_be_visible()
    page.get_by_role("button", name="Generate", exact=True).click()
    # Then the panel shows the build succeed, with the revision it made
    progress = page.get_by_role("list", name="Progress")
    built = task_card(progress, "Generate")
    expect(built).to_contain_text("succeeded", timeout=TASK_MS)
    rev1 = revision_of(built)
    # When they deploy it from there
    built.get_by_role("button", name=re.compile(r"^Deploy ")).click()
    # Then the deploy goes through its stages and flips: v1 serves
    deployed = task_card(progress, "Deploy")
    expect(deployed).to_contain_text("succeeded", timeout=TASK_MS)
    for stage in ("preflight", "compat", "stage", "prewarm", "health", "flip"):
        expect(deployed.get_by_text(stage, exact=True)).to_be_visible()
    assert revision_of(deployed) == rev1
    serving_line = page.locator("p").filter(has_text="Serving:")
    expect(serving_line).to_contain_text(f"{rev1[:12]} (spec v1)")
    console.shot("06-deployed-v1")
    # And a Telegram user who says /start gets the example's welcome
    standin.open_chat(tg, chat(CHAT_ID))
    say_start(standin, tg, greeting(v1))

    # When they chat with the serving revision in the simulator, as Grace
    page.get_by_role("link", name="Simulator").click()
    page.get_by_label("What to run").select_option(rev1)
    page.get_by_label("The user's first name").fill("Grace")
    page.get_by_label("Message", exact=True).fill("/start")
    page.get_by_role("button", name="Send").click()
    # Then the bot welcomes her with its reply keyboard, and answers a press on it
    chat_log = page.get_by_role("log")
    expect(chat_log).to_contain_text(greeting(v1, "Grace"))
    page.get_by_label("Reply keyboard").get_by_role("button", name="Wifi").click()
    expect(chat_log).to_contain_text("Network: BeanThere-Guest, password: espresso2026")
    console.shot("07-simulator")
    # And the overview shows v1 serving, its deployment flipped, its revision active
    page.get_by_role("link", name="Overview").click()
    serving = page.locator(".chart").filter(has=page.get_by_role("heading", name="Serving"))
    expect(serving).to_contain_text(rev1)
    deployments = page.locator("table").filter(has=page.get_by_role("columnheader", name="Stages")).locator("tbody")
    expect(deployments.get_by_role("row")).to_have_count(1)
    expect(deployments.get_by_role("row").first).to_contain_text("succeeded")
    expect(deployments.get_by_role("row").first.get_by_text("flip", exact=True)).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=rev1[:12]).first).to_contain_text("active")

    # When they edit the welcome, save v2, and see what changed on the Versions tab
    v2 = faq_example(bot_id, welcome="Hi {{context.firstName}}! This is version two of Bean There.")
    page.get_by_role("link", name="Spec", exact=True).click()
    expect(page.get_by_text("Based on v1")).to_be_visible()
    replace_editor_text(page, json.dumps(v2, indent=2, ensure_ascii=False))
    save_spec(page, "a new welcome", r"Saved as v2\.")
    page.get_by_role("link", name="Versions", exact=True).click()
    diff = page.get_by_role("table", name="Differences between v1 and v2")
    expect(diff).to_contain_text("This is version two of Bean There.")
    expect(page.get_by_role("row").filter(has_text="a new welcome")).to_contain_text("latest")
    console.shot("08-versions-diff")

    # And generate v2, then deploy it with the Deploy card, saying why
    page.get_by_role("link", name="Generate & deploy").click()
    expect(page.get_by_text("live", exact=True)).to_be_visible()
    page.get_by_role("button", name="Generate", exact=True).click()
    built = task_card(progress, "Generate")
    expect(built).to_contain_text("succeeded", timeout=TASK_MS)
    rev2 = revision_of(built)
    assert rev2 != rev1
    page.get_by_role("combobox", name=re.compile(r"^Revision")).select_option(rev2)
    page.get_by_label("Why").fill("a new welcome")
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(task_card(progress, "Deploy")).to_contain_text("succeeded", timeout=TASK_MS)
    expect(serving_line).to_contain_text(f"{rev2[:12]} (spec v2)")
    # Then the bot answers with the new welcome
    say_start(standin, tg, greeting(v2))

    # When they roll back
    page.get_by_role("button", name="Roll back").click()
    # Then v1 serves again, without a rebuild, and the bot greets with v1's welcome
    rolled = task_card(progress, "Rollback")
    expect(rolled).to_contain_text("succeeded", timeout=TASK_MS)
    assert revision_of(rolled) == rev1
    expect(serving_line).to_contain_text(f"{rev1[:12]} (spec v1)")
    console.shot("09-rolled-back")
    say_start(standin, tg, greeting(v1))
    # And the overview lists the three deployments, the rollback on top, with their reasons
    page.get_by_role("link", name="Overview").click()
    expect(serving).to_contain_text(rev1)
    expect(serving).to_contain_text("newer than what serves")
    rows = deployments.get_by_role("row")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("rollback")
    expect(rows.nth(0)).to_contain_text("succeeded")
    expect(rows.nth(0)).to_contain_text("“rollback from the console”")
    expect(rows.nth(1)).to_contain_text("“a new welcome”")
    expect(rows.nth(2)).to_contain_text("deploy")
    console.shot("10-overview-after-rollback")


# --- a viewer --------------------------------------------------------------------------------------------------------


def test_a_viewer_is_offered_none_of_the_owners_controls(
    open_console: Callable[[], Console], standin: BotApiStandIn, base_url: str
) -> None:
    # Given an owner with a project, a bot and a saved spec (made through the API), and another account
    owner_api, viewer_api = Api(base_url), Api(base_url)
    try:
        owner = sign_up(owner_api, password=PASSWORD)
        viewer = sign_up(viewer_api, password=PASSWORD)
        project_id = owner_api.run(
            'mutation { createProject(name: "Shared") { ... on ProjectCreated { project { id } } } }'
        ).ok()["createProject"]["project"]["id"]
        bot_id = f"shared-{secrets.token_hex(4)}"
        created = owner_api.run(
            'mutation($p: ID!, $b: String!, $t: String!) { createBot(projectId: $p, botId: $b, name: "Shared bot",'
            " token: $t) { __typename } }",
            {"p": project_id, "b": bot_id, "t": standin.register().token},
        ).ok()["createBot"]
        assert created == {"__typename": "BotCreated"}
        saved = owner_api.run(
            "mutation($b: ID!, $s: JSON!) { saveSpecVersion(botId: $b, spec: $s, expectedVersion: 0) { __typename } }",
            {"b": bot_id, "s": faq_example(bot_id)},
        ).ok()["saveSpecVersion"]
        assert saved == {"__typename": "SpecSaved"}
    finally:
        owner_api.close()
        viewer_api.close()

    # When the owner invites the other account as a viewer from the project page
    owners = open_console()
    sign_in(owners, owner["email"])
    owners.page.get_by_role("link", name="Shared").click()
    owners.page.get_by_label("Email of an existing account").fill(viewer["email"])
    owners.page.get_by_label("Role", exact=True).select_option("VIEWER")
    owners.page.get_by_role("button", name="Invite").click()
    # Then the members list shows them with that role
    expect(owners.page.get_by_label(f"Role of {viewer['email']}")).to_have_value("VIEWER")

    # When the viewer signs in and opens the project
    viewers = open_console()
    page = viewers.page
    sign_in(viewers, viewer["email"])
    page.get_by_role("link", name="Shared").click()
    # Then they see the bot and the members, but cannot add bots, invite or change roles
    expect(page.get_by_role("heading", level=1)).to_contain_text("Viewer")
    expect(page.get_by_role("link", name="Shared bot")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=owner["email"])).to_contain_text("Owner")
    expect(page.get_by_text("Add a bot")).to_have_count(0)
    expect(page.get_by_role("button", name="Invite")).to_have_count(0)
    expect(page.get_by_role("combobox")).to_have_count(0)
    expect(page.get_by_role("button", name="Remove")).to_have_count(0)
    viewers.shot("11-viewer-project")

    # When they open the bot: no delete, no generate, deploy or rollback
    page.get_by_role("link", name="Shared bot").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Viewer")
    expect(page.get_by_role("heading", name="Webhook")).to_be_visible()
    expect(page.get_by_text("Delete this bot")).to_have_count(0)
    no_task_buttons = page.get_by_role("button", name=re.compile(r"generate|deploy|roll ?back", re.IGNORECASE))
    expect(no_task_buttons).to_have_count(0)
    page.get_by_role("link", name="Generate & deploy").click()
    expect(page.get_by_role("heading", name="Generate & deploy")).to_be_visible()
    expect(page.get_by_text("you can follow what they do here")).to_be_visible()
    expect(page.get_by_role("heading", name="Progress")).to_be_visible()
    expect(no_task_buttons).to_have_count(0)
    viewers.shot("12-viewer-deploy")

    # And the spec is shown read-only, with nothing to save
    page.get_by_role("link", name="Spec", exact=True).click()
    expect(page.get_by_text("read only (editors and owners can save)")).to_be_visible()
    expect(page.locator(".cm-content")).to_contain_text(f'"botId": "{bot_id}"')
    expect(page.locator(".cm-content")).to_have_attribute("contenteditable", "false")
    expect(page.get_by_role("button", name="Save", exact=True)).to_have_count(0)
    expect(page.get_by_label("What changed")).to_have_count(0)
    viewers.shot("13-viewer-spec-read-only")
