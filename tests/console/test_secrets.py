"""The Secrets tab and the deploy page's missing-secrets warning in headless Chromium, against the real platform.

An owner's bot has a revision whose apiCall headers use ``{{secret.CRM_TOKEN}}``, which the
bot has no value for (the spec and the revision made through the API, as test_rollout.py
makes them). The deploy page warns about it and a deploy is refused at preflight; the
owner follows the warning's link to the Secrets tab, saves a value (which the page never
holds again), sees the warning gone and deploys; then deletes the secret after confirming,
and the tab warns that the serving revision lacks it. An editor sees the names but no
controls; a viewer not even the names.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Locator, Page, expect

from botkiln.infra.telegram_standin import BotApiStandIn
from tests.console.conftest import Console
from tests.console.test_e2e import PASSWORD, TASK_MS, revision_of, sign_in, task_card
from tests.console.test_rollout import finished
from tests.graphql.support import Api, sign_up
from tests.graphql.test_flow import CREATE_BOT, CREATE_PROJECT, GENERATE, SAVE
from tests.graphql.test_secrets import SET, crm_spec

INVITE = "mutation($p: ID!, $e: String!, $r: Role!) { inviteMember(projectId: $p, email: $e, role: $r) { __typename } }"


def crm_token_spec(bot_id: str) -> dict[str, Any]:
    """``crm_spec`` with only ``{{secret.CRM_TOKEN}}`` in its apiCall's headers."""
    spec = crm_spec(bot_id)
    call = next(step for flow in spec["flows"] for step in flow["steps"] if step["type"] == "apiCall")
    call["headers"] = {"Authorization": "Bearer {{secret.CRM_TOKEN}}"}
    return spec


def bot_needing_a_secret(
    api: Api, standin: BotApiStandIn, *, generate: bool = True
) -> tuple[str, str, str, str | None]:
    """A new owner's bot whose saved spec's headers use CRM_TOKEN: (owner's email, project id, bot id, revision)."""
    owner = sign_up(api, password=PASSWORD)
    project_id = api.run(CREATE_PROJECT, {"n": "CRM integration"}).ok()["createProject"]["project"]["id"]
    bot_id = f"sec-{secrets.token_hex(4)}"
    created = api.run(CREATE_BOT, {"p": project_id, "b": bot_id, "t": standin.register().token}).ok()
    assert created["createBot"]["__typename"] == "BotCreated", created
    saved = api.run(SAVE, {"b": bot_id, "s": crm_token_spec(bot_id), "v": 0}).ok()["saveSpecVersion"]
    assert saved["__typename"] == "SpecSaved", saved
    if not generate:
        return str(owner["email"]), project_id, bot_id, None
    generated = api.run(GENERATE, {"b": bot_id, "k": "gen-1"}).ok()["generate"]
    return str(owner["email"]), project_id, bot_id, str(finished(api, generated)["revHash"])


def deploy_card(page: Page) -> Locator:
    return page.locator(".chart").filter(has=page.get_by_role("heading", name="Deploy a revision"))


def missing_warning(where: Page | Locator) -> Locator:
    return where.get_by_role("status").filter(has_text=re.compile(r"Missing secrets?:"))


# --- the owner -------------------------------------------------------------------------------------------------------


def test_an_owner_sets_a_missing_secret_deploys_and_deletes_it(
    open_console: Callable[[], Console], standin: BotApiStandIn, base_url: str
) -> None:
    # Given an owner's bot with a revision built whose apiCall headers use {{secret.CRM_TOKEN}}, not set
    api = Api(base_url)
    try:
        email, _, bot_id, rev = bot_needing_a_secret(api, standin)
    finally:
        api.close()
    assert rev is not None
    console = open_console()
    page = console.page
    sign_in(console, email)

    # When they open Generate & deploy
    console.goto(f"/bots/{bot_id}/deploy")
    expect(page.get_by_text("live", exact=True)).to_be_visible()
    card = deploy_card(page)
    card.get_by_role("combobox", name=re.compile(r"^Revision")).select_option(rev)
    # Then the Deploy card warns that the revision needs CRM_TOKEN, with a link to the Secrets tab
    warning = missing_warning(card)
    expect(warning).to_contain_text("CRM_TOKEN")
    expect(warning).to_contain_text(rev[:12])
    expect(warning).to_contain_text("refused at preflight")
    link = warning.get_by_role("link", name="Set it on the Secrets tab")
    expect(link).to_have_attribute("href", f"/bots/{bot_id}/secrets?name=CRM_TOKEN")
    console.shot("30-deploy-missing-secret")

    # And deploying it anyway is refused at preflight, naming the secret
    card.get_by_role("button", name="Deploy", exact=True).click()
    progress = page.get_by_role("list", name="Progress")
    refused = task_card(progress, "Deploy")
    expect(refused).to_contain_text("failed", timeout=TASK_MS)
    expect(refused).to_contain_text("Failed at preflight")
    expect(refused.locator("pre.reason")).to_contain_text("CRM_TOKEN")
    expect(page.locator("p").filter(has_text="Serving:")).to_contain_text("nothing")

    # When they follow the warning's link
    link.click()
    # Then the Secrets tab opens with the name filled in, and no secrets stored yet
    expect(page).to_have_url(f"{base_url}/bots/{bot_id}/secrets?name=CRM_TOKEN")
    panel = page.get_by_role("region", name="Secrets")
    expect(panel.get_by_text("No secrets yet. Add one below.")).to_be_visible()
    name_input = panel.get_by_label(re.compile(r"^Name"))
    value_input = panel.get_by_label(re.compile(r"^Value"))
    expect(name_input).to_have_value("CRM_TOKEN")
    expect(value_input).to_have_value("")
    expect(value_input).to_have_attribute("type", "password")

    # When they enter a value and save it
    value = f"crm-{secrets.token_urlsafe(24)}"
    value_input.fill(value)
    panel.get_by_role("button", name="Save secret").click()
    # Then the name is listed, both inputs are empty, and the value is nowhere in the page or its storage
    expect(panel.get_by_text(re.compile(r"^Saved CRM_TOKEN\. "))).to_be_visible()
    table = panel.get_by_role("table", name="Bot secrets")
    expect(table.get_by_role("row").filter(has_text="CRM_TOKEN")).to_have_count(1)
    expect(value_input).to_have_value("")
    expect(name_input).to_have_value("")
    assert value not in page.content()
    assert value not in page.evaluate("JSON.stringify([{...localStorage}, {...sessionStorage}, document.cookie])")
    assert not [line for line in console.log if value in line]
    console.shot("31-secret-saved")

    # When they go back to Generate & deploy (the warning's query is asked again, not read from a cache)
    with page.expect_response(
        lambda r: r.url.endswith("/graphql") and "MissingSecrets" in (r.request.post_data or "")
    ) as asked:
        page.get_by_role("link", name="Generate & deploy").click()
    assert asked.value.json()["data"]["bot"]["missingSecrets"] == []
    # Then the warning is gone
    expect(card.get_by_role("combobox", name=re.compile(r"^Revision"))).to_have_value(rev)
    expect(missing_warning(page)).to_have_count(0)

    # When they deploy the revision from the Deploy card
    card.get_by_role("combobox", name=re.compile(r"^Revision")).select_option(rev)
    card.get_by_label("Why").fill("CRM token set")
    card.get_by_role("button", name="Deploy", exact=True).click()
    # Then it passes preflight and every stage, and the revision serves
    deployed = task_card(progress, "Deploy")
    expect(deployed).to_contain_text("succeeded", timeout=TASK_MS)
    for stage in ("preflight", "compat", "stage", "prewarm", "health", "flip"):
        expect(deployed.get_by_text(stage, exact=True)).to_be_visible()
    assert revision_of(deployed) == rev
    expect(page.locator("p").filter(has_text="Serving:")).to_contain_text(f"{rev[:12]} (spec v1)")
    console.shot("32-deployed-with-secret")

    # When they delete the secret on the Secrets tab, changing their mind once
    page.get_by_role("link", name="Secrets", exact=True).click()
    row = table.get_by_role("row").filter(has_text="CRM_TOKEN")
    expect(panel.get_by_role("status").filter(has_text="this bot does not have")).to_have_count(0)
    row.get_by_role("button", name="Delete CRM_TOKEN").click()
    expect(row).to_contain_text("Delete CRM_TOKEN? A revision whose headers use it cannot be deployed")
    row.get_by_role("button", name="Cancel").click()
    expect(row.get_by_role("button", name="Yes, delete")).to_have_count(0)
    row.get_by_role("button", name="Delete CRM_TOKEN").click()
    console.shot("33-secret-delete-confirm")
    row.get_by_role("button", name="Yes, delete").click()
    # Then it is no longer listed, and the tab warns that the serving revision uses it
    expect(panel.get_by_text("Deleted CRM_TOKEN.")).to_be_visible()
    expect(table).to_have_count(0)
    expect(panel.get_by_text("No secrets yet. Add one below.")).to_be_visible()
    serving_lacks = panel.get_by_role("status").filter(has_text="The serving revision's apiCall headers use a secret")
    expect(serving_lacks).to_contain_text("CRM_TOKEN")
    # And its name there fills the form in, ready for a value
    serving_lacks.get_by_role("button", name="CRM_TOKEN").click()
    expect(name_input).to_have_value("CRM_TOKEN")
    expect(value_input).to_be_focused()
    console.shot("34-secret-deleted")


# --- editors and viewers ---------------------------------------------------------------------------------------------


def test_an_editor_sees_the_names_only_and_a_viewer_not_even_those(
    open_console: Callable[[], Console], standin: BotApiStandIn, base_url: str
) -> None:
    # Given an owner's bot holding CRM_TOKEN, an editor and a viewer of its project (all through the API)
    owner_api, editor_api, viewer_api = Api(base_url), Api(base_url), Api(base_url)
    value = f"crm-{secrets.token_urlsafe(24)}"
    try:
        editor = sign_up(editor_api, password=PASSWORD)
        viewer = sign_up(viewer_api, password=PASSWORD)
        _, project_id, bot_id, _ = bot_needing_a_secret(owner_api, standin, generate=False)
        for who, role in ((editor, "EDITOR"), (viewer, "VIEWER")):
            invited = owner_api.run(INVITE, {"p": project_id, "e": who["email"], "r": role}).ok()
            assert invited == {"inviteMember": {"__typename": "MemberSet"}}
        set_ = owner_api.run(SET, {"b": bot_id, "n": "CRM_TOKEN", "v": value}).ok()["setBotSecret"]
        assert set_["__typename"] == "BotSecretSet", set_
    finally:
        for api in (owner_api, editor_api, viewer_api):
            api.close()

    # When the editor opens the Secrets tab
    editors = open_console()
    page = editors.page
    sign_in(editors, editor["email"])
    editors.goto(f"/bots/{bot_id}/secrets")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Editor")
    panel = page.get_by_role("region", name="Secrets")
    # Then they see the name, but nothing to add, replace or delete with, and never the value
    expect(
        panel.get_by_role("table", name="Bot secrets").get_by_role("row").filter(has_text="CRM_TOKEN")
    ).to_be_visible()
    expect(panel.get_by_text("Owners add, replace and delete secrets")).to_be_visible()
    expect(panel.get_by_role("button")).to_have_count(0)
    expect(panel.get_by_role("textbox")).to_have_count(0)
    expect(panel.locator("input")).to_have_count(0)
    assert value not in page.content()
    editors.shot("35-editor-secrets")

    # When the viewer opens it
    viewers = open_console()
    page = viewers.page
    sign_in(viewers, viewer["email"])
    viewers.goto(f"/bots/{bot_id}/secrets")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Viewer")
    panel = page.get_by_role("region", name="Secrets")
    # Then they are told names are for editors, and see none
    expect(panel.get_by_text("Only editors and owners can see the names of this bot's secrets.")).to_be_visible()
    expect(panel.get_by_role("table")).to_have_count(0)
    expect(panel.get_by_role("button")).to_have_count(0)
    expect(panel.locator("input")).to_have_count(0)
    viewers.shot("36-viewer-secrets")
