import { afterEach, describe, expect, it } from "vitest";
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import { MemoryRouter, Route, Routes } from "react-router";
import { AuthProvider } from "../lib/auth";
import type { Clients } from "../lib/client";
import { scriptedClient } from "../test/scripted";
import { ProjectPage } from "./ProjectPage";

/** A client that answers each operation by name, as the API would for a user with `role`. */
function clientsFor(role: "VIEWER" | "EDITOR" | "OWNER"): () => Clients {
  const answers: Record<string, unknown> = {
    Viewer: { viewer: { __typename: "User", id: "u1", email: "me@example.com", displayName: "Me" } },
    Project: {
      project: {
        __typename: "Project",
        id: "p1",
        name: "Shop",
        createdAt: "2026-01-01T00:00:00Z",
        viewerRole: role,
        members: [
          { __typename: "Member", role: "OWNER", addedAt: "2026-01-01T00:00:00Z", user: { __typename: "User", id: "u0", email: "boss@example.com", displayName: "" } },
          { __typename: "Member", role, addedAt: "2026-01-02T00:00:00Z", user: { __typename: "User", id: "u1", email: "me@example.com", displayName: "Me" } },
        ],
      },
    },
    Bots: { bots: { __typename: "BotConnection", edges: [], pageInfo: { __typename: "PageInfo", hasNextPage: false, endCursor: null } } },
  };
  const { clients } = scriptedClient(answers);
  return () => clients;
}

afterEach(cleanup);

function renderAs(role: "VIEWER" | "EDITOR" | "OWNER") {
  return render(
    <AuthProvider clients={clientsFor(role)}>
      <MemoryRouter initialEntries={["/projects/p1"]}>
        <Routes>
          <Route path="/projects/:projectId" element={<ProjectPage />} />
        </Routes>
      </MemoryRouter>
    </AuthProvider>,
  );
}

describe("project page role gating", () => {
  it("offers an owner bots, invitations, roles and removal", async () => {
    renderAs("OWNER");
    await waitFor(() => expect(screen.getByRole("heading", { level: 1 }).textContent).toContain("Shop"));
    expect(screen.getByText("Add a bot")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Invite" })).toBeTruthy();
    expect(screen.getAllByRole("combobox", { name: /^Role of / })).toHaveLength(2);
    expect(screen.getAllByRole("button", { name: "Remove" })).toHaveLength(2);
  });

  it("shows a viewer (and an editor) the members without any control", async () => {
    for (const role of ["VIEWER", "EDITOR"] as const) {
      const { unmount } = renderAs(role);
      await waitFor(() => expect(screen.getByRole("heading", { level: 1 }).textContent).toContain(role === "VIEWER" ? "Viewer" : "Editor"));
      expect(screen.queryByText("Add a bot")).toBeNull();
      expect(screen.queryByRole("button", { name: "Invite" })).toBeNull();
      expect(screen.queryAllByRole("combobox")).toHaveLength(0);
      expect(screen.queryAllByRole("button", { name: "Remove" })).toHaveLength(0);
      expect(screen.getByText("boss@example.com")).toBeTruthy();
      unmount();
    }
  });
});
