import { describe, expect, it } from "vitest";
import { EMPTY, busy, isTaskEvent, reduceProgress, taskFinished, taskStarted, type ProgressEventLike, type ProgressState } from "./progress";

const fold = (events: ProgressEventLike[], start: ProgressState = EMPTY) => events.reduce(reduceProgress, start);
const at = (s: number) => `2026-01-01T00:00:${String(s).padStart(2, "0")}Z`;

describe("reduceProgress", () => {
  it("follows a generate to success", () => {
    const s = fold([
      { __typename: "GenerateStarted", taskId: "t1", at: at(1), message: "spec v3" },
      { __typename: "GenerateProgress", taskId: "t1", at: at(2), stage: null, message: "compiling" },
      { __typename: "GenerateProgress", taskId: "t1", at: at(3), stage: "gates", message: "AST policy" },
      { __typename: "GenerateSucceeded", taskId: "t1", at: at(4), revHash: "abc" },
    ]);
    const t = s.tasks.t1!;
    expect(t).toMatchObject({ kind: "generate", state: "succeeded", revHash: "abc", endedAt: at(4), message: "AST policy" });
    expect(t.stages.map((x) => x.stage)).toEqual(["compiling", "gates"]);
    expect(busy(s)).toBe(false);
  });

  it("keeps a failure's reason and stage (AST violations, divergence text)", () => {
    const reason = "build failed at conformance: golden faq/1 diverged\n  expected: …\n  actual: …";
    const s = fold([
      { __typename: "GenerateStarted", taskId: "t", at: at(1) },
      { __typename: "GenerateFailed", taskId: "t", at: at(2), reason },
    ]);
    expect(s.tasks.t).toMatchObject({ state: "failed", reason, failedStage: null });
    const d = fold([
      { __typename: "DeployStarted", taskId: "d", at: at(1), startRevHash: "r2", deploymentId: "dep" },
      { __typename: "DeployProgress", taskId: "d", at: at(2), stage: "preflight" },
      { __typename: "DeployFailed", taskId: "d", at: at(3), stage: "compat", reason: "state shape changed" },
    ]);
    expect(d.tasks.d).toMatchObject({ kind: "deploy", state: "failed", failedStage: "compat", revHash: "r2", deploymentId: "dep" });
    expect(d.tasks.d!.stages.map((x) => `${x.stage}:${x.status}`)).toEqual(["preflight:passed", "compat:failed"]);
  });

  it("a task the console started keeps its kind (a rollback speaks Deploy*)", () => {
    let s = taskStarted(EMPTY, "r", "rollback", at(0));
    expect(busy(s)).toBe(true);
    s = fold([
      { __typename: "DeployStarted", taskId: "r", at: at(1), startRevHash: "old" },
      { __typename: "DeployProgress", taskId: "r", at: at(2), stage: "stage" },
    ], s);
    expect(s.tasks.r!.kind).toBe("rollback");
    s = reduceProgress(s, { __typename: "RollbackFlipped", taskId: "r", at: at(3), revHash: "old" });
    expect(s.tasks.r).toMatchObject({ kind: "rollback", state: "succeeded", revHash: "old" });
  });

  it("drops repeated events and never reopens an ended task", () => {
    const ev: ProgressEventLike = { __typename: "DeployProgress", taskId: "d", at: at(2), stage: "health" };
    let s = fold([ev, ev, { __typename: "DeployFlipped", taskId: "d", at: at(3), revHash: "r" }]);
    expect(s.tasks.d!.stages).toHaveLength(1);
    s = reduceProgress(s, { __typename: "DeployFailed", taskId: "d", at: at(4), stage: "late", reason: "x" });
    expect(s.tasks.d!.state).toBe("succeeded");
  });

  it("a rollout's start is a deploy task the console knows as a rollout", () => {
    let s = taskStarted(EMPTY, "ro", "rollout", at(0));
    s = fold([
      { __typename: "DeployStarted", taskId: "ro", at: at(1), startRevHash: "cand", deploymentId: "7" },
      { __typename: "DeployProgress", taskId: "ro", at: at(2), stage: "flip" },
      { __typename: "DeployFlipped", taskId: "ro", at: at(3), revHash: "cand", deploymentId: "7" },
    ], s);
    expect(s.tasks.ro).toMatchObject({ kind: "rollout", state: "succeeded", revHash: "cand" });
    // the mutation's answer may come after the first events: the kind is corrected, nothing else
    const late = taskStarted(fold([{ __typename: "DeployStarted", taskId: "x", at: at(1), startRevHash: "c" }]), "x", "rollout", at(0));
    expect(late.tasks.x).toMatchObject({ kind: "rollout", revHash: "c", seen: 1 });
  });

  it("ignores RolloutChanged: not a task's event, the task list stays as it is", () => {
    const before = fold([
      { __typename: "DeployStarted", taskId: "d", at: at(1) },
      { __typename: "DeployProgress", taskId: "d", at: at(2), stage: "preflight" },
    ]);
    const changed: ProgressEventLike = { __typename: "RolloutChanged", taskId: "rollout:3", at: at(3), revHash: "cand", stage: "running", message: "50% of chats", deploymentId: "9" };
    expect(isTaskEvent("RolloutChanged")).toBe(false);
    expect(isTaskEvent("DeployFlipped")).toBe(true);
    const after = reduceProgress(before, changed);
    expect(after).toBe(before);
    expect(after.order).toEqual(["d"]);
    expect(after.tasks["rollout:3"]).toBeUndefined();
    // and the task it interleaves with still ends normally
    const done = fold([changed, { __typename: "DeployFlipped", taskId: "d", at: at(4), revHash: "r" }, changed], before);
    expect(done.order).toEqual(["d"]);
    expect(done.tasks.d).toMatchObject({ state: "succeeded", seen: 3 });
    expect(busy(done)).toBe(false);
  });

  it("orders tasks newest first, events of many tasks interleaved", () => {
    const s = fold([
      { __typename: "GenerateStarted", taskId: "a", at: at(1) },
      { __typename: "DeployStarted", taskId: "b", at: at(2) },
      { __typename: "GenerateSucceeded", taskId: "a", at: at(3), revHash: "x" },
    ]);
    expect(s.order).toEqual(["b", "a"]);
    expect(busy(s)).toBe(true);
  });
});

describe("taskFinished", () => {
  it("ends a running view from the task row, once", () => {
    let s = taskStarted(EMPTY, "g", "generate", at(0));
    s = taskFinished(s, { id: "g", kind: "generate", status: "SUCCEEDED", result: { revHash: "h", reused: true }, finishedAt: at(5) });
    expect(s.tasks.g).toMatchObject({ state: "succeeded", revHash: "h", endedAt: at(5) });
    const again = taskFinished(s, { id: "g", kind: "generate", status: "FAILED", error: "x" });
    expect(again).toBe(s);
    const f = taskFinished(taskStarted(EMPTY, "d", "deploy", at(0)), { id: "d", kind: "deploy", status: "FAILED", error: "boom" });
    expect(f.tasks.d).toMatchObject({ state: "failed", reason: "boom" });
    expect(taskFinished(EMPTY, { id: "zz", kind: "deploy", status: "FAILED" })).toBe(EMPTY);
  });
});
