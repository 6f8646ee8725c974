import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { Provider } from "urql";
import { scriptedClient } from "../test/scripted";
import { RolloutPanel, type Rollout } from "./RolloutPanel";

const share = (revHash: string, updates: number, errors: number, deadLettered = 0) => ({
  revHash,
  updates,
  errors,
  deadLettered,
  chats: Math.ceil(updates / 3),
  errorRate: updates ? errors / updates : 0,
  deadLetterRate: updates ? deadLettered / updates : 0,
});

const LIVE: Rollout = {
  id: "3",
  botId: "b",
  stableRev: "a".repeat(64),
  candidateRev: "c".repeat(64),
  percent: 10,
  status: "RUNNING",
  steps: [10, 50, 100],
  auto: false,
  dwellSec: 300,
  errorMargin: 0.05,
  minUpdates: 50,
  stepStartedAt: "2026-01-01T00:00:00Z",
  nextStep: 50,
  reason: "",
  createdAt: "2026-01-01T00:00:00Z",
  endedAt: null,
  pinnedChats: ["4242"],
  stable: share("a".repeat(64), 900, 9),
  candidate: share("c".repeat(64), 100, 20),
};

function renderPanel(props: Partial<Parameters<typeof RolloutPanel>[0]>, answers: Record<string, unknown> = {}) {
  // records the mutations only (the start form also asks for missing secrets)
  const { client, sent } = scriptedClient(answers, { record: "mutations" });
  render(
    <Provider value={client}>
      <RolloutPanel
        botId="b"
        role="OWNER"
        rollout={LIVE}
        revisions={[
          { revHash: "a".repeat(64), specVersion: 1, createdAt: "2026-01-01T00:00:00Z" },
          { revHash: "c".repeat(64), specVersion: 2, createdAt: "2026-01-02T00:00:00Z" },
        ]}
        activeRevHash={"a".repeat(64)}
        onStarted={() => undefined}
        onChanged={() => undefined}
        {...props}
      />
    </Provider>,
  );
  return sent;
}

afterEach(cleanup);

describe("RolloutPanel", () => {
  it("shows a live rollout: share, revisions side by side, the worse candidate rate in red", () => {
    renderPanel({});
    expect(screen.getByLabelText("Share of chats on the candidate").textContent).toBe("10%");
    expect(screen.getByRole("progressbar").getAttribute("aria-valuenow")).toBe("10");
    const table = screen.getByRole("table", { name: "Stable and candidate" });
    expect(table.textContent).toContain("aaaaaaaa");
    expect(table.textContent).toContain("cccccccc");
    // candidate 20% errors vs stable 1% + 5 points: red; dead letters equal: not
    const red = table.querySelectorAll("td.worse");
    expect(red).toHaveLength(1);
    expect(red[0]!.textContent).toContain("20.0%");
    expect(screen.getByText("4242")).toBeTruthy();
  });

  it("offers a viewer or an editor nothing to press", () => {
    for (const role of ["VIEWER", "EDITOR"] as const) {
      renderPanel({ role });
      expect(screen.queryAllByRole("button")).toHaveLength(0);
      expect(screen.queryByLabelText("Chat id to pin")).toBeNull();
      expect(screen.getByText("4242")).toBeTruthy();
      cleanup();
      renderPanel({ role, rollout: null });
      expect(screen.queryAllByRole("button")).toHaveLength(0);
      expect(screen.queryByText("Start rollout")).toBeNull();
      cleanup();
    }
  });

  it("an owner advances to a chosen share, checked before it is sent", async () => {
    let changed = 0;
    const sent = renderPanel({ onChanged: () => (changed += 1) }, { AdvanceRollout: { advanceRollout: { __typename: "RolloutUpdated", deploymentId: "9", rollout: { ...LIVE, percent: 50 } } } });
    expect(screen.getByRole("button", { name: "Advance to 50%" })).toBeTruthy();
    fireEvent.change(screen.getByLabelText("Advance to a share (%)"), { target: { value: "5" } });
    fireEvent.click(screen.getByRole("button", { name: "Advance" }));
    expect(screen.getByRole("alert").textContent).toContain("only rises");
    expect(sent).toHaveLength(0);
    fireEvent.change(screen.getByLabelText("Advance to a share (%)"), { target: { value: "50" } });
    fireEvent.click(screen.getByRole("button", { name: "Advance" }));
    await waitFor(() => expect(changed).toBe(1));
    expect(sent).toEqual([{ name: "AdvanceRollout", kind: "mutation", variables: { botId: "b", percent: 50, why: "" } }]);
  });

  it("abort asks for a reason and a confirmation first", async () => {
    const sent = renderPanel({}, { AbortRollout: { abortRollout: { __typename: "RolloutUpdated", deploymentId: "10", rollout: { ...LIVE, status: "ABORTED", percent: 0 } } } });
    fireEvent.click(screen.getByRole("button", { name: "Abort…" }));
    const yes = screen.getByRole("button", { name: "Yes, abort" }) as HTMLButtonElement;
    expect(yes.disabled).toBe(true);
    fireEvent.change(screen.getByLabelText("Reason for aborting"), { target: { value: "too many errors" } });
    fireEvent.click(yes);
    await waitFor(() => expect(sent).toHaveLength(1));
    expect(sent[0]).toEqual({ name: "AbortRollout", kind: "mutation", variables: { botId: "b", why: "too many errors" } });
  });

  it("the start form shows each problem at its input, the server's InvalidInput too", async () => {
    const sent = renderPanel({ rollout: null }, { StartRollout: { startRollout: { __typename: "InvalidInput", field: "minUpdates", message: "1 to 1000000" } } });
    fireEvent.change(screen.getByLabelText(/^Steps/), { target: { value: "50, 10" } });
    fireEvent.click(screen.getByRole("button", { name: "Start rollout" }));
    expect(screen.getByText("steps must be strictly increasing (10 after 50)")).toBeTruthy();
    expect(screen.getByLabelText(/^Steps/).getAttribute("aria-invalid")).toBe("true");
    expect(sent).toHaveLength(0);
    fireEvent.change(screen.getByLabelText(/^Steps/), { target: { value: "10, 50" } });
    expect(screen.getByLabelText(/^Steps/).getAttribute("aria-invalid")).toBeNull();
    fireEvent.click(screen.getByRole("button", { name: "Start rollout" }));
    await waitFor(() => expect(screen.getByText("1 to 1000000")).toBeTruthy());
    expect(screen.getByLabelText(/^Minimum updates/).getAttribute("aria-invalid")).toBe("true");
    expect(sent[0]).toMatchObject({ name: "StartRollout", kind: "mutation", variables: { revHash: "c".repeat(64), percent: 0, steps: [10, 50], errorMargin: 0.05 } });
  });
});
