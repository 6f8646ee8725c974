import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { MemoryRouter, Outlet, Route, Routes } from "react-router";
import { AuthProvider } from "../lib/auth";
import type { Role } from "../lib/roles";
import { botFixture, scriptedClient } from "../test/scripted";
import type { BotContext } from "./BotLayout";
import { DeployPage } from "./DeployPage";

const ACTIVE = "a".repeat(64);
const NEEDS_SECRET = "c".repeat(64);
const FINE = "d".repeat(64);

const page = <T,>(typename: string, nodes: T[]) => ({
  __typename: typename,
  edges: nodes.map((node) => ({ __typename: "Edge", node })),
  pageInfo: { __typename: "PageInfo", hasNextPage: false, endCursor: null },
});
const revision = (revHash: string, specVersion: number) => ({
  __typename: "Revision",
  botId: "b",
  revHash,
  specVersion,
  specHash: "h",
  artifactsUri: "file:///x",
  artifacts: [],
  build: {},
  createdAt: "2026-01-01T00:00:00Z",
});

const ANSWERS: Record<string, (v: Record<string, unknown>) => unknown> = {
  Viewer: () => ({ viewer: { __typename: "User", id: "u1", email: "me@example.com", displayName: "Me" } }),
  SpecVersions: () => ({ specVersions: page("SpecVersionConnection", []) }),
  Revisions: () => ({ revisions: page("RevisionConnection", [revision(NEEDS_SECRET, 3), revision(FINE, 2), revision(ACTIVE, 1)]) }),
  Deployments: () => ({ deployments: page("DeploymentConnection", []) }),
  Tasks: () => ({ tasks: page("TaskConnection", []) }),
  Rollout: () => ({ rollout: null }),
  MissingSecrets: (v) => ({ bot: { __typename: "Bot", id: "b", missingSecrets: v.revHash === NEEDS_SECRET ? ["CRM_TOKEN"] : [] } }),
};

/** The deploy page as `role` sees it; returns the names of the operations asked (subscriptions stay silent). */
function renderAs(role: Role) {
  const { clients, sent } = scriptedClient(ANSWERS);
  const context: BotContext = {
    bot: botFixture({
      activeRevHash: ACTIVE,
      activeSince: "2026-01-01T00:00:00Z",
      latestSpecVersion: 3,
      activeRevision: { __typename: "Revision", revHash: ACTIVE, specVersion: 1, specHash: "h", createdAt: "2026-01-01T00:00:00Z", build: {} },
    }),
    role,
    refetchBot: () => undefined,
  };
  render(
    <AuthProvider clients={() => clients}>
      <MemoryRouter initialEntries={["/bots/b/deploy"]}>
        <Routes>
          <Route path="/bots/:botId" element={<Outlet context={context} />}>
            <Route path="deploy" element={<DeployPage />} />
          </Route>
        </Routes>
      </MemoryRouter>
    </AuthProvider>,
  );
  return { asked: () => sent.map((s) => s.name) };
}

afterEach(cleanup);

describe("deploy page: missing secrets", () => {
  it("warns an owner, before deploying, about the secrets the chosen revision lacks", async () => {
    renderAs("OWNER");
    const card = screen.getByRole("heading", { name: "Deploy a revision" }).closest(".chart") as HTMLElement;
    await waitFor(() => expect((within(card).getByRole("combobox", { name: /^Revision/ }) as HTMLSelectElement).value).toBe(NEEDS_SECRET));
    const warning = await within(card).findByRole("status");
    expect(warning.textContent).toContain("Missing secret:");
    expect(warning.textContent).toContain("CRM_TOKEN");
    expect(within(warning).getByRole("link", { name: "Set it on the Secrets tab" }).getAttribute("href")).toBe("/bots/b/secrets?name=CRM_TOKEN");
    // the rollout form's candidate is the same revision: warned there too
    const rollout = screen.getByRole("heading", { name: "Start a rollout" }).closest(".chart") as HTMLElement;
    expect((await within(rollout).findByRole("status")).textContent).toContain("CRM_TOKEN");
    // another revision needs nothing: no warning
    fireEvent.change(within(card).getByRole("combobox", { name: /^Revision/ }), { target: { value: FINE } });
    await waitFor(() => expect(within(card).queryByRole("status")).toBeNull());
  });

  it("asks nothing about secrets for an editor or a viewer (no deploy for them)", async () => {
    for (const role of ["EDITOR", "VIEWER"] as const) {
      const { asked } = renderAs(role);
      await waitFor(() => expect(asked()).toContain("Revisions"));
      expect(screen.queryByRole("heading", { name: "Deploy a revision" })).toBeNull();
      expect(asked()).not.toContain("MissingSecrets");
      expect(screen.queryByText(/Missing secret/)).toBeNull();
      cleanup();
    }
  });
});
