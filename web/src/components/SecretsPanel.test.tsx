import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { MemoryRouter } from "react-router";
import { Provider } from "urql";
import type { Role } from "../lib/roles";
import { scriptedClient, type Answer } from "../test/scripted";
import { MissingSecretsWarning, SecretsPanel } from "./SecretsPanel";

const SECRETS = [
  { __typename: "BotSecret", name: "CRM_TOKEN", updatedAt: "2026-01-01T00:00:00Z" },
  { __typename: "BotSecret", name: "SHOP_KEY", updatedAt: "2026-01-02T00:00:00Z" },
];
const botSecrets = (secrets: unknown[] = SECRETS, missingSecrets: string[] = []) => ({ bot: { __typename: "Bot", id: "b", secrets, missingSecrets } });

function renderPanel(role: Role | null, answers: Record<string, Answer> = { BotSecrets: botSecrets() }, initialName?: string) {
  const { client, sent } = scriptedClient(answers);
  render(
    <Provider value={client}>
      <MemoryRouter>
        <SecretsPanel botId="b" role={role} {...(initialName !== undefined ? { initialName } : {})} />
      </MemoryRouter>
    </Provider>,
  );
  return sent;
}

const mutations = (sent: { kind: string }[]) => sent.filter((s) => s.kind === "mutation");
const nameInput = () => screen.getByLabelText(/^Name/) as HTMLInputElement;
const valueInput = () => screen.getByLabelText(/^Value/) as HTMLInputElement;

afterEach(cleanup);

describe("SecretsPanel", () => {
  it("tells a viewer that names are for editors, and does not ask for them", () => {
    const sent = renderPanel("VIEWER");
    expect(screen.getByText("Only editors and owners can see the names of this bot's secrets.")).toBeTruthy();
    expect(screen.queryByText("CRM_TOKEN")).toBeNull();
    expect(screen.queryAllByRole("textbox")).toHaveLength(0);
    expect(screen.queryAllByRole("button")).toHaveLength(0);
    expect(sent).toHaveLength(0);
  });

  it("shows an editor the names and times, read-only", async () => {
    renderPanel("EDITOR");
    const table = await screen.findByRole("table", { name: "Bot secrets" });
    expect(table.textContent).toContain("CRM_TOKEN");
    expect(table.textContent).toContain("SHOP_KEY");
    expect(screen.getByRole("columnheader", { name: "Updated" })).toBeTruthy();
    expect(screen.queryAllByRole("button")).toHaveLength(0);
    expect(screen.queryByLabelText(/^Value/)).toBeNull();
    expect(screen.getByText(/Owners add, replace and delete secrets/)).toBeTruthy();
  });

  it("offers an owner the form and a delete per secret", async () => {
    renderPanel("OWNER");
    await screen.findByRole("table", { name: "Bot secrets" });
    expect(valueInput().type).toBe("password");
    expect(screen.getByRole("button", { name: "Delete CRM_TOKEN" })).toBeTruthy();
    expect(screen.getByRole("button", { name: "Delete SHOP_KEY" })).toBeTruthy();
    expect(screen.getByRole("button", { name: "Save secret" })).toBeTruthy();
  });

  it("checks the name before sending anything", async () => {
    const sent = renderPanel("OWNER");
    await screen.findByRole("table", { name: "Bot secrets" });
    fireEvent.change(nameInput(), { target: { value: "crm_token" } });
    fireEvent.change(valueInput(), { target: { value: "s3cr3t" } });
    fireEvent.click(screen.getByRole("button", { name: "Save secret" }));
    expect(screen.getByText("a name starts with a capital letter A-Z")).toBeTruthy();
    expect(nameInput().getAttribute("aria-invalid")).toBe("true");
    expect(valueInput().getAttribute("aria-invalid")).toBeNull();
    fireEvent.change(nameInput(), { target: { value: "CRM-TOKEN" } });
    expect(nameInput().getAttribute("aria-invalid")).toBeNull();
    fireEvent.click(screen.getByRole("button", { name: "Save secret" }));
    expect(screen.getByText(/only capital letters A-Z, digits and _ \(“-”\)/)).toBeTruthy();
    fireEvent.change(nameInput(), { target: { value: "NEW_KEY" } });
    fireEvent.change(valueInput(), { target: { value: "" } });
    fireEvent.click(screen.getByRole("button", { name: "Save secret" }));
    expect(screen.getByText("give the value")).toBeTruthy();
    expect(valueInput().getAttribute("aria-invalid")).toBe("true");
    expect(mutations(sent)).toHaveLength(0);
  });

  it("saves, then clears the value (never shown or kept in the markup) and reloads the list", async () => {
    let saved = false;
    const sent = renderPanel("OWNER", {
      BotSecrets: () => botSecrets(saved ? [...SECRETS, { __typename: "BotSecret", name: "NEW_KEY", updatedAt: "2026-01-03T00:00:00Z" }] : SECRETS),
      SetBotSecret: () => {
        saved = true;
        return { setBotSecret: { __typename: "BotSecretSet", botId: "b", secret: { __typename: "BotSecret", name: "NEW_KEY", updatedAt: "2026-01-03T00:00:00Z" } } };
      },
    });
    await screen.findByRole("table", { name: "Bot secrets" });
    fireEvent.change(nameInput(), { target: { value: " NEW_KEY " } });
    fireEvent.change(valueInput(), { target: { value: "hunter2-très-secret" } });
    expect(document.body.innerHTML).not.toContain("hunter2");
    fireEvent.click(screen.getByRole("button", { name: "Save secret" }));
    await waitFor(() => expect(screen.getByText(/^Saved NEW_KEY\./)).toBeTruthy());
    expect(mutations(sent)).toEqual([{ name: "SetBotSecret", kind: "mutation", variables: { botId: "b", name: "NEW_KEY", value: "hunter2-très-secret" } }]);
    expect(valueInput().value).toBe("");
    expect(nameInput().value).toBe("");
    expect(document.body.innerHTML).not.toContain("hunter2");
    await waitFor(() => expect(screen.getByRole("table", { name: "Bot secrets" }).textContent).toContain("NEW_KEY"));
    expect(sent.filter((s) => s.name === "BotSecrets").length).toBeGreaterThanOrEqual(2);
    expect(localStorage.length).toBe(0);
    expect(sessionStorage.length).toBe(0);
  });

  it("puts the server's InvalidInput on the right input, and keeps the value for a retry", async () => {
    const sent = renderPanel("OWNER", {
      BotSecrets: botSecrets(),
      SetBotSecret: (v: Record<string, unknown>) => ({
        setBotSecret:
          v.name === "RESERVED"
            ? { __typename: "InvalidInput", field: "name", message: "that name is taken by the platform" }
            : { __typename: "InvalidInput", field: "value", message: "the value holds a control character" },
      }),
    });
    await screen.findByRole("table", { name: "Bot secrets" });
    fireEvent.change(nameInput(), { target: { value: "RESERVED" } });
    fireEvent.change(valueInput(), { target: { value: "abc" } });
    fireEvent.click(screen.getByRole("button", { name: "Save secret" }));
    await waitFor(() => expect(screen.getByText("that name is taken by the platform")).toBeTruthy());
    expect(nameInput().getAttribute("aria-invalid")).toBe("true");
    expect(valueInput().getAttribute("aria-invalid")).toBeNull();
    expect(valueInput().value).toBe("abc");
    fireEvent.change(nameInput(), { target: { value: "OTHER" } });
    fireEvent.click(screen.getByRole("button", { name: "Save secret" }));
    await waitFor(() => expect(screen.getByText("the value holds a control character")).toBeTruthy());
    expect(valueInput().getAttribute("aria-invalid")).toBe("true");
    expect(nameInput().getAttribute("aria-invalid")).toBeNull();
    expect(mutations(sent)).toHaveLength(2);
  });

  it("shows SecretLimitReached", async () => {
    renderPanel("OWNER", {
      BotSecrets: botSecrets(),
      SetBotSecret: { setBotSecret: { __typename: "SecretLimitReached", limit: 50, message: "a bot holds at most 50 secrets" } },
    });
    await screen.findByRole("table", { name: "Bot secrets" });
    fireEvent.change(nameInput(), { target: { value: "ONE_MORE" } });
    fireEvent.change(valueInput(), { target: { value: "x" } });
    fireEvent.click(screen.getByRole("button", { name: "Save secret" }));
    await waitFor(() => expect(screen.getByRole("alert").textContent).toBe("a bot holds at most 50 secrets: delete one to add another (replacing one is allowed)."));
  });

  it("an existing name is a replacement; replace fills it in", async () => {
    renderPanel("OWNER");
    await screen.findByRole("table", { name: "Bot secrets" });
    fireEvent.click(screen.getByRole("button", { name: "Replace SHOP_KEY" }));
    expect(nameInput().value).toBe("SHOP_KEY");
    expect(document.activeElement).toBe(valueInput());
    expect(screen.getByText("SHOP_KEY exists: saving replaces its value")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Replace secret" })).toBeTruthy();
  });

  it("deletes only after a confirmation", async () => {
    let deleted = false;
    const sent = renderPanel("OWNER", {
      BotSecrets: () => botSecrets(deleted ? SECRETS.slice(1) : SECRETS),
      DeleteBotSecret: () => {
        deleted = true;
        return { deleteBotSecret: { __typename: "BotSecretDeleted", botId: "b", name: "CRM_TOKEN" } };
      },
    });
    await screen.findByRole("table", { name: "Bot secrets" });
    fireEvent.click(screen.getByRole("button", { name: "Delete CRM_TOKEN" }));
    expect(mutations(sent)).toHaveLength(0);
    expect(screen.getByText(/Delete CRM_TOKEN\?/)).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Cancel" }));
    expect(screen.queryByText(/Delete CRM_TOKEN\?/)).toBeNull();
    fireEvent.click(screen.getByRole("button", { name: "Delete CRM_TOKEN" }));
    fireEvent.click(screen.getByRole("button", { name: "Yes, delete" }));
    await waitFor(() => expect(screen.getByText("Deleted CRM_TOKEN.")).toBeTruthy());
    expect(mutations(sent)).toEqual([{ name: "DeleteBotSecret", kind: "mutation", variables: { botId: "b", name: "CRM_TOKEN" } }]);
    await waitFor(() => expect(screen.getByRole("table", { name: "Bot secrets" }).textContent).not.toContain("CRM_TOKEN"));
  });

  it("warns about names the serving revision lacks; an owner's click fills one in", async () => {
    renderPanel("OWNER", { BotSecrets: botSecrets([], ["CRM_TOKEN", "MAIL_KEY"]) });
    await waitFor(() => expect(screen.getByText(/The serving revision's apiCall headers use secrets this bot does not have/)).toBeTruthy());
    expect(screen.getByText("No secrets yet. Add one below.")).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "MAIL_KEY" }));
    expect(nameInput().value).toBe("MAIL_KEY");
  });

  it("starts with a name from the link (?name=), if it is one", async () => {
    renderPanel("OWNER", undefined, "CRM_TOKEN");
    await screen.findByRole("table", { name: "Bot secrets" });
    expect(nameInput().value).toBe("CRM_TOKEN");
    cleanup();
    renderPanel("OWNER", undefined, "<script>");
    await screen.findByRole("table", { name: "Bot secrets" });
    expect(nameInput().value).toBe("");
  });
});

describe("MissingSecretsWarning", () => {
  function renderWarning(role: Role | null, missing: string[] | null, revHash: string | null = "c".repeat(64)) {
    const { client, sent } = scriptedClient({ MissingSecrets: { bot: { __typename: "Bot", id: "b", missingSecrets: missing } } });
    render(
      <Provider value={client}>
        <MemoryRouter>
          <MissingSecretsWarning botId="b" revHash={revHash} role={role} />
        </MemoryRouter>
      </Provider>,
    );
    return sent;
  }

  it("lists what the chosen revision lacks, with a link to the Secrets tab", async () => {
    const sent = renderWarning("OWNER", ["CRM_TOKEN", "MAIL_KEY"]);
    const warning = await screen.findByRole("status");
    expect(warning.textContent).toContain("Missing secrets:");
    expect(warning.textContent).toContain("cccccccccccc");
    expect(warning.textContent).toContain("CRM_TOKEN, MAIL_KEY");
    expect(warning.textContent).toContain("refused at preflight until they are set");
    const link = screen.getByRole("link", { name: "Set them on the Secrets tab" });
    expect(link.getAttribute("href")).toBe("/bots/b/secrets?name=CRM_TOKEN");
    // network-only (a stale warning would outlive a secret just set): the scripted client answers synchronously, so urql may ask twice
    expect(sent.length).toBeGreaterThan(0);
    for (const s of sent) expect(s).toEqual({ name: "MissingSecrets", kind: "query", variables: { botId: "b", revHash: "c".repeat(64) } });
  });

  it("says nothing when nothing is missing, no revision is chosen, or the role may not ask", async () => {
    const sent = renderWarning("OWNER", []);
    await waitFor(() => expect(sent.length).toBeGreaterThan(0));
    expect(screen.queryByRole("status")).toBeNull();
    cleanup();
    expect(renderWarning("OWNER", ["X"], null)).toHaveLength(0);
    expect(screen.queryByRole("status")).toBeNull();
    cleanup();
    expect(renderWarning("VIEWER", ["X"])).toHaveLength(0);
    expect(screen.queryByRole("status")).toBeNull();
  });
});
