/**
 * The live progress panel's state, folded from `progress(botId)` events (docs/api.md#progress-subscription)
 * and from the tasks the console itself started. Pure: (state, event) → state.
 *
 * One entry per task, newest first. A task ends at GenerateSucceeded/Failed, DeployFlipped,
 * DeployFailed or RollbackFlipped, and stays ended: a late or repeated event never reopens it.
 * Pub/sub keeps nothing, so events may be missing (a reconnect); the panel shows what came.
 *
 * A rollout's start is a deploy task (its events are Deploy*, ending at DeployFlipped when the
 * rollout opens); the console knows it as "rollout". `RolloutChanged` (a live rollout's share or
 * status changed) is not a task's event: the task list ignores it, the rollout panel refetches.
 */
export type TaskKind = "generate" | "deploy" | "rollback" | "rollout" | "task";
export type TaskState = "running" | "succeeded" | "failed";

export interface ProgressEventLike {
  __typename: string;
  taskId: string;
  at: string;
  stage?: string | null;
  message?: string | null;
  reason?: string;
  revHash?: string;
  startRevHash?: string | null;
  deploymentId?: string | null;
}

export interface StageView {
  stage: string;
  status: "passed" | "failed";
  at: string;
  message: string | null;
}

export interface TaskView {
  taskId: string;
  kind: TaskKind;
  state: TaskState;
  startedAt: string;
  endedAt: string | null;
  /** what it builds or deploys: the revision, once known */
  revHash: string | null;
  deploymentId: string | null;
  stages: StageView[];
  /** the latest free-text message (GenerateStarted/Progress) */
  message: string | null;
  /** why it failed: may be long (AST violations, conformance divergence) */
  reason: string | null;
  failedStage: string | null;
  /** how many events this view has folded (duplicates excluded) */
  seen: number;
  /** keys of the events folded, to drop repeats */
  keys: string[];
}

export interface ProgressState {
  order: string[];
  tasks: Record<string, TaskView>;
}

export const EMPTY: ProgressState = { order: [], tasks: {} };

const KIND_OF: Record<string, TaskKind> = {
  GenerateStarted: "generate",
  GenerateProgress: "generate",
  GenerateSucceeded: "generate",
  GenerateFailed: "generate",
  RollbackFlipped: "rollback",
};

/** Events that are not a task's (their taskId is e.g. "rollout:7"): they leave the task list as it is. */
const NOT_TASKS: ReadonlySet<string> = new Set(["RolloutChanged"]);

export function isTaskEvent(typename: string): boolean {
  return !NOT_TASKS.has(typename);
}

const KNOWN_KINDS: ReadonlySet<string> = new Set<TaskKind>(["generate", "deploy", "rollback", "rollout"]);

function blank(taskId: string, kind: TaskKind, at: string): TaskView {
  return { taskId, kind, state: "running", startedAt: at, endedAt: null, revHash: null, deploymentId: null, stages: [], message: null, reason: null, failedStage: null, seen: 0, keys: [] };
}

function put(state: ProgressState, view: TaskView): ProgressState {
  const order = state.order.includes(view.taskId) ? state.order : [view.taskId, ...state.order];
  return { order, tasks: { ...state.tasks, [view.taskId]: view } };
}

/** A task the console started (from the mutation's TaskStarted), before any event arrives. */
export function taskStarted(state: ProgressState, taskId: string, kind: string, at: string): ProgressState {
  const existing = state.tasks[taskId];
  const k: TaskKind = KNOWN_KINDS.has(kind) ? (kind as TaskKind) : "task";
  if (existing) return existing.kind === k ? state : put(state, { ...existing, kind: k });
  return put(state, blank(taskId, k, at));
}

export function reduceProgress(state: ProgressState, ev: ProgressEventLike): ProgressState {
  if (!isTaskEvent(ev.__typename)) return state;
  const key = `${ev.__typename}|${ev.at}|${ev.stage ?? ""}|${ev.message ?? ""}`;
  const prev = state.tasks[ev.taskId];
  if (prev?.keys.includes(key)) return state;
  const inferred: TaskKind = KIND_OF[ev.__typename] ?? (ev.__typename.startsWith("Deploy") ? "deploy" : "task");
  let v: TaskView = prev ?? blank(ev.taskId, inferred, ev.at);
  // a rollback's and a rollout's events are Deploy*; keep the kind the console knew over "deploy"
  if (v.kind === "task") v = { ...v, kind: inferred };
  if (ev.__typename === "RollbackFlipped") v = { ...v, kind: "rollback" };
  v = { ...v, seen: v.seen + 1, keys: [...v.keys, key], deploymentId: ev.deploymentId ?? v.deploymentId };
  if (ev.at < v.startedAt) v = { ...v, startedAt: ev.at };
  const ended = v.state !== "running";
  switch (ev.__typename) {
    case "GenerateStarted":
      v = { ...v, message: ev.message ?? v.message };
      break;
    case "DeployStarted":
      v = { ...v, revHash: ev.startRevHash ?? v.revHash };
      break;
    case "GenerateProgress":
    case "DeployProgress":
      v = {
        ...v,
        message: ev.message ?? v.message,
        stages: ev.stage || ev.message ? [...v.stages, { stage: ev.stage ?? ev.message ?? "", status: "passed", at: ev.at, message: ev.message ?? null }] : v.stages,
      };
      break;
    case "GenerateSucceeded":
    case "DeployFlipped":
    case "RollbackFlipped":
      if (!ended) v = { ...v, state: "succeeded", endedAt: ev.at, revHash: ev.revHash ?? v.revHash };
      break;
    case "GenerateFailed":
    case "DeployFailed":
      if (!ended) {
        const stage = ev.stage ?? null;
        v = {
          ...v,
          state: "failed",
          endedAt: ev.at,
          reason: ev.reason ?? null,
          failedStage: stage,
          stages: stage ? [...v.stages, { stage, status: "failed", at: ev.at, message: null }] : v.stages,
        };
      }
      break;
  }
  return put(state, v);
}

/** Whether any task is still running. */
export function busy(state: ProgressState): boolean {
  return state.order.some((id) => state.tasks[id]?.state === "running");
}

/**
 * What `task(id)` says when no ending event came (missed while reconnecting, or no WebSocket):
 * ends the view the same way the event would have.
 */
export function taskFinished(
  state: ProgressState,
  task: { id: string; kind: string; status: string; result?: unknown; error?: string | null; finishedAt?: string | null },
): ProgressState {
  const v = state.tasks[task.id];
  if (!v || v.state !== "running" || (task.status !== "SUCCEEDED" && task.status !== "FAILED")) return state;
  const result = (typeof task.result === "object" && task.result !== null ? task.result : {}) as Record<string, unknown>;
  const revHash = typeof result.revHash === "string" ? result.revHash : v.revHash;
  const endedAt = task.finishedAt ?? v.startedAt;
  return put(
    state,
    task.status === "SUCCEEDED"
      ? { ...v, state: "succeeded", endedAt, revHash }
      : { ...v, state: "failed", endedAt, reason: task.error ?? v.reason ?? "failed" },
  );
}
