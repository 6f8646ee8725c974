import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { act, cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { createMemoryRouter, RouterProvider } from "react-router";
import { Provider } from "urql";
import type { SpecEditorHandle } from "../components/SpecEditor";
import { formatSpec, starterSpec } from "../lib/specFormat";
import { botFixture, scriptedClient } from "../test/scripted";
import { BotLayout } from "./BotLayout";
import { SpecPage } from "./SpecPage";

// CodeMirror and React Flow need a real layout engine: a textarea with the editor's handle stands in,
// and the graph is left out. What is under test is the page: its idea of "unsaved" and the guard.
vi.mock("../components/SpecEditor", async () => {
  const React = await import("react");
  const SpecEditor = React.forwardRef<SpecEditorHandle, { initialText: string; readOnly: boolean; onChange(text: string): void }>(function SpecEditor(props, ref) {
    const [text, setText] = React.useState(props.initialText);
    const change = (t: string) => {
      setText(t);
      props.onChange(t);
    };
    React.useImperativeHandle(ref, () => ({ goTo: () => undefined, setText: change, getText: () => text }));
    return <textarea aria-label="Spec text" value={text} readOnly={props.readOnly} onChange={(e) => change(e.target.value)} />;
  });
  return { SpecEditor };
});
vi.mock("../components/FlowGraph", () => ({ FlowGraph: () => null }));

const V2 = { ...(starterSpec("b", "Shop") as object), meta: { botId: "b", name: "Shop v2", locales: ["en"], defaultLocale: "en" } };
const V1 = starterSpec("b", "Shop");
const V2_TEXT = formatSpec(V2);
const EDITED = V2_TEXT.replace("Shop v2", "Shop, edited");
const QUESTION = "You have unsaved changes to the spec. Leave anyway? Your draft stays in this browser and can be restored.";

type Answer = (variables: Record<string, unknown>) => unknown;
const specVersion = (version: number, spec: unknown) => ({
  specVersion: { __typename: "SpecVersion", botId: "b", version, specHash: `h${version}`, message: "", authorId: "u1", createdAt: "2026-01-01T00:00:00Z", spec },
});
const BASE_ANSWERS: Record<string, Answer> = {
  Bot: () => ({ bot: botFixture({ latestSpecVersion: 2 }) }),
  BotProject: () => ({ project: { __typename: "Project", id: "p", name: "Shop project", viewerRole: "OWNER" } }),
  SpecVersion: (v) => (v.version === 1 ? specVersion(1, V1) : specVersion(2, V2)),
  ValidateSpec: () => ({ validateSpec: [] }),
  SaveSpec: () => ({
    saveSpecVersion: {
      __typename: "SpecSaved",
      created: true,
      specVersion: { __typename: "SpecVersion", botId: "b", version: 3, specHash: "h3", message: "", createdAt: "2026-01-02T00:00:00Z" },
    },
  }),
};

/** The bot layout (its tabs are real links) with the spec page and stand-ins for two other tabs. */
function renderAt(entries: string[], answers: Record<string, Answer> = {}) {
  const { client } = scriptedClient({ ...BASE_ANSWERS, ...answers });
  const router = createMemoryRouter(
    [
      {
        path: "/bots/:botId",
        element: <BotLayout />,
        children: [
          { index: true, element: <h2>Overview page</h2> },
          { path: "spec", element: <SpecPage /> },
          { path: "versions", element: <h2>Versions page</h2> },
        ],
      },
    ],
    { initialEntries: entries, initialIndex: entries.length - 1 },
  );
  render(
    <Provider value={client}>
      <RouterProvider router={router} />
    </Provider>,
  );
  return router;
}

const editor = () => screen.findByRole<HTMLTextAreaElement>("textbox", { name: "Spec text" });
const question = () => screen.queryByRole("alertdialog", { name: "Unsaved changes" });
const versionsTab = () => screen.getByRole("link", { name: "Versions" });
const beforeUnload = () => {
  const e = new Event("beforeunload", { cancelable: true });
  window.dispatchEvent(e);
  return e.defaultPrevented;
};

beforeEach(() => {
  localStorage.clear();
  sessionStorage.clear();
});
afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

describe("spec page: leaving with unsaved edits", () => {
  it("lets a clean editor go without asking", async () => {
    const router = renderAt(["/bots/b/spec"]);
    expect((await editor()).value).toBe(V2_TEXT);
    expect(beforeUnload()).toBe(false);
    fireEvent.click(versionsTab());
    expect(await screen.findByRole("heading", { name: "Versions page" })).toBeTruthy();
    expect(question()).toBeNull();
    expect(router.state.location.pathname).toBe("/bots/b/versions");
  });

  it("holds a tab click while edited; Stay keeps the page and the text", async () => {
    const router = renderAt(["/bots/b/spec"]);
    fireEvent.change(await editor(), { target: { value: EDITED } });
    fireEvent.click(versionsTab());
    const dialog = await screen.findByRole("alertdialog", { name: "Unsaved changes" });
    expect(dialog.textContent).toContain(QUESTION);
    expect(router.state.location.pathname).toBe("/bots/b/spec");
    expect(screen.queryByRole("heading", { name: "Versions page" })).toBeNull();
    expect(document.activeElement).toBe(screen.getByRole("button", { name: "Stay" }));
    fireEvent.click(screen.getByRole("button", { name: "Stay" }));
    await waitFor(() => expect(question()).toBeNull());
    expect(router.state.location.pathname).toBe("/bots/b/spec");
    expect((await editor()).value).toBe(EDITED);
    expect(screen.getByText(/unsaved changes/)).toBeTruthy();
    // Escape is Stay too; and the editor's own link to the versions is held the same way
    fireEvent.click(screen.getByRole("link", { name: "Versions & diff" }));
    fireEvent.keyDown(await screen.findByRole("alertdialog", { name: "Unsaved changes" }), { key: "Escape" });
    await waitFor(() => expect(question()).toBeNull());
    expect(router.state.location.pathname).toBe("/bots/b/spec");
    expect((await editor()).value).toBe(EDITED);
  });

  it("Leave goes on, and the text is kept as the draft the editor offers next time", async () => {
    const router = renderAt(["/bots/b/spec"]);
    fireEvent.change(await editor(), { target: { value: EDITED } });
    fireEvent.click(versionsTab());
    fireEvent.click(await screen.findByRole("button", { name: "Leave" }));
    expect(await screen.findByRole("heading", { name: "Versions page" })).toBeTruthy();
    expect(router.state.location.pathname).toBe("/bots/b/versions");
    expect(question()).toBeNull();
    // stored at once, not only by the debounced copy
    expect(JSON.parse(localStorage.getItem("botkiln:spec-draft:b") ?? "null")).toMatchObject({ base: 2, text: EDITED });
    fireEvent.click(screen.getByRole("link", { name: "Spec" }));
    expect(await screen.findByText(/You have an unsaved draft from/)).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Restore the draft" }));
    expect((await editor()).value).toBe(EDITED);
  });

  it("holds the browser's back button the same way", async () => {
    const router = renderAt(["/bots/b", "/bots/b/spec"]);
    fireEvent.change(await editor(), { target: { value: EDITED } });
    await act(() => router.navigate(-1));
    expect(await screen.findByRole("alertdialog", { name: "Unsaved changes" })).toBeTruthy();
    expect(router.state.location.pathname).toBe("/bots/b/spec");
    fireEvent.click(screen.getByRole("button", { name: "Leave" }));
    expect(await screen.findByRole("heading", { name: "Overview page" })).toBeTruthy();
    expect(router.state.location.pathname).toBe("/bots/b");
  });

  it("registers beforeunload only while there are unsaved edits", async () => {
    const add = vi.spyOn(window, "addEventListener");
    const remove = vi.spyOn(window, "removeEventListener");
    const unloads = (spy: typeof add) => spy.mock.calls.filter(([type]) => type === "beforeunload").length;
    renderAt(["/bots/b/spec"]);
    const text = await editor();
    expect(unloads(add)).toBe(0);
    expect(beforeUnload()).toBe(false);

    fireEvent.change(text, { target: { value: EDITED } });
    expect(unloads(add)).toBe(1);
    expect(beforeUnload()).toBe(true);
    // the page may be unloading: the text as it is now is the draft
    expect(JSON.parse(localStorage.getItem("botkiln:spec-draft:b") ?? "null")).toMatchObject({ text: EDITED });

    // typed back to the saved text: nothing to lose
    fireEvent.change(text, { target: { value: V2_TEXT } });
    expect(unloads(remove)).toBe(1);
    expect(beforeUnload()).toBe(false);
  });

  it("saving makes the editor clean: no question, no beforeunload", async () => {
    const router = renderAt(["/bots/b/spec"]);
    fireEvent.change(await editor(), { target: { value: EDITED } });
    expect(beforeUnload()).toBe(true);
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByText("Saved as v3.")).toBeTruthy();
    expect(beforeUnload()).toBe(false);
    fireEvent.click(versionsTab());
    expect(await screen.findByRole("heading", { name: "Versions page" })).toBeTruthy();
    expect(question()).toBeNull();
    expect(router.state.location.pathname).toBe("/bots/b/versions");
  });

  it("a loaded version is clean until edited (?from=N), and reloading after a conflict does not ask", async () => {
    const router = renderAt(["/bots/b/spec?from=1"], {
      SaveSpec: () => ({ saveSpecVersion: { __typename: "VersionConflict", message: "conflict", expectedVersion: 2, currentVersion: 2 } }),
    });
    expect((await editor()).value).toBe(formatSpec(V1));
    expect(screen.getByText(/Editing from v1/)).toBeTruthy();
    expect(beforeUnload()).toBe(false);

    fireEvent.change(await editor(), { target: { value: formatSpec(V1).replace('"Shop"', '"Shop, edited"') } });
    expect(beforeUnload()).toBe(true);
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    fireEvent.click(await screen.findByRole("button", { name: "Reload v2 (discard my edits)" }));
    // the discard drops ?from=1 without a question and loads v2, clean
    await waitFor(() => expect(router.state.location.search).toBe(""));
    expect(question()).toBeNull();
    await waitFor(() => expect(screen.getByRole<HTMLTextAreaElement>("textbox", { name: "Spec text" }).value).toBe(V2_TEXT));
    expect(beforeUnload()).toBe(false);
    fireEvent.click(versionsTab());
    expect(await screen.findByRole("heading", { name: "Versions page" })).toBeTruthy();
    expect(question()).toBeNull();
  });
});
