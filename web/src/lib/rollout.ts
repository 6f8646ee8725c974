/**
 * The rollout panel's pure logic (docs/rollouts.md): the start form's plan (parsed and checked
 * the way the API's `RolloutPlan.problems()` checks it, so most mistakes are caught before a
 * request), the server's `InvalidInput.field` mapped back onto an input, the advance target,
 * chat ids, and the candidate-vs-stable comparison the automatic controller makes
 * (`infra/routing.py verdict`: a rate above the stable one's + margin, judged after `minUpdates`).
 */

/** At most this many planned steps (`infra/db/rollouts.py MAX_STEPS`). */
export const MAX_STEPS = 20;
/** Longest dwell time the API takes: one week. */
export const MAX_DWELL_SEC = 604_800;
export const MAX_MIN_UPDATES = 1_000_000;
/** Chat ids the API takes: non-zero integers below 2^53 in magnitude (exact in JSON and JS). */
export const MAX_CHAT_ID = 2 ** 53;

export type RolloutStatus = "RUNNING" | "PAUSED" | "COMPLETED" | "ABORTED";

/** Running and paused rollouts are live (at most one per bot). */
export function isLive(status: RolloutStatus | string | null | undefined): boolean {
  return status === "RUNNING" || status === "PAUSED";
}

/** A whole number written in `text` (surrounding spaces allowed), if it is one within [min, max]. */
export function wholeNumber(text: string, min: number, max: number): number | null {
  const t = text.trim();
  if (!/^-?\d+$/.test(t)) return null;
  const n = Number(t);
  return Number.isSafeInteger(n) && n >= min && n <= max ? n : null;
}

/**
 * "1, 10, 50, 100" → [1, 10, 50, 100]. Each step is a whole percentage 1..100 (a trailing "%" is
 * fine), strictly increasing, at most MAX_STEPS of them.
 */
export function parseSteps(text: string): { steps: number[] } | { error: string } {
  const parts = text.split(",").map((p) => p.trim().replace(/\s*%$/, ""));
  if (parts.length === 1 && parts[0] === "") return { error: "give at least one step, e.g. 1, 10, 50, 100" };
  if (parts.some((p) => p === "")) return { error: "an empty step: separate percentages with single commas" };
  if (parts.length > MAX_STEPS) return { error: `at most ${MAX_STEPS} steps` };
  const steps: number[] = [];
  for (const p of parts) {
    const n = wholeNumber(p, 1, 100);
    if (n === null) return { error: `“${p}” is not a whole percentage from 1 to 100` };
    const last = steps[steps.length - 1];
    if (last !== undefined && n <= last) return { error: `steps must be strictly increasing (${n} after ${last})` };
    steps.push(n);
  }
  return { steps };
}

/** The start form as typed (strings: what the inputs hold). */
export interface PlanForm {
  revHash: string;
  percent: string;
  steps: string;
  auto: boolean;
  dwellSec: string;
  /** in percentage points: "5" is an error margin of 0.05 */
  errorMarginPct: string;
  minUpdates: string;
  why: string;
}

export const DEFAULT_PLAN: Omit<PlanForm, "revHash"> = {
  percent: "0",
  steps: "1, 10, 50, 100",
  auto: false,
  dwellSec: "300",
  errorMarginPct: "5",
  minUpdates: "50",
  why: "",
};

/** startRollout's variables, less botId and idempotencyKey. */
export interface PlanVars {
  revHash: string;
  percent: number;
  steps: number[];
  auto: boolean;
  dwellSec: number;
  errorMargin: number;
  minUpdates: number;
  why: string;
}

/** The inputs of the start form, named as startRollout's arguments (the server's `InvalidInput.field`). */
export type PlanField = "revHash" | "percent" | "steps" | "dwellSec" | "errorMargin" | "minUpdates" | "why";
export type PlanErrors = Partial<Record<PlanField, string>>;

const PLAN_FIELDS: readonly PlanField[] = ["revHash", "percent", "steps", "dwellSec", "errorMargin", "minUpdates", "why"];

/** The input a server `InvalidInput.field` names, or null (shown as a general problem). */
export function planField(serverField: string): PlanField | null {
  return (PLAN_FIELDS as readonly string[]).includes(serverField) ? (serverField as PlanField) : null;
}

/** The plan, or what is wrong with each input. The dwell time is checked only for automatic rollouts. */
export function validatePlan(form: PlanForm): { plan: PlanVars } | { errors: PlanErrors } {
  const errors: PlanErrors = {};
  if (!form.revHash) errors.revHash = "pick a revision";
  const percent = wholeNumber(form.percent, 0, 99);
  if (percent === null) errors.percent = "a whole percentage from 0 to 99 (100 is a promotion)";
  const parsed = parseSteps(form.steps);
  if ("error" in parsed) errors.steps = parsed.error;
  const dwell = form.auto ? wholeNumber(form.dwellSec, 0, MAX_DWELL_SEC) : (wholeNumber(form.dwellSec, 0, MAX_DWELL_SEC) ?? 300);
  if (dwell === null) errors.dwellSec = `whole seconds from 0 to ${MAX_DWELL_SEC} (a week)`;
  const marginText = form.errorMarginPct.trim().replace(/\s*%$/, "");
  const margin = /^\d+(\.\d+)?$/.test(marginText) ? Number(marginText) : NaN;
  if (!(margin >= 0 && margin <= 100)) errors.errorMargin = "percentage points from 0 to 100, e.g. 5";
  const minUpdates = wholeNumber(form.minUpdates, 1, MAX_MIN_UPDATES);
  if (minUpdates === null) errors.minUpdates = `a whole number from 1 to ${MAX_MIN_UPDATES}`;
  if (form.why.length > 1000) errors.why = "at most 1000 characters";
  if (Object.keys(errors).length > 0 || percent === null || "error" in parsed || dwell === null || minUpdates === null) {
    return { errors };
  }
  return {
    plan: {
      revHash: form.revHash,
      percent,
      steps: parsed.steps,
      auto: form.auto,
      dwellSec: dwell,
      // 5 → 0.05 without binary noise (7 / 100 is 0.07, 0.07 * 100 is not 7)
      errorMargin: Number((margin / 100).toFixed(6)),
      minUpdates,
      why: form.why.trim(),
    },
  };
}

/** An "advance to" target typed by the owner: a whole percentage above the current share, below 100 (100 is Promote). */
export function advanceTarget(text: string, current: number): { percent: number } | { error: string } {
  const n = wholeNumber(text, 1, 100);
  if (n === null) return { error: "a whole percentage from 1 to 99" };
  if (n <= current) return { error: `the share only rises: it is ${current}% now` };
  if (n === 100) return { error: "100% is a promotion: use Promote" };
  return { percent: n };
}

/** A Telegram chat id as the API takes it (a non-zero integer; groups are negative), normalised; null if not one. */
export function chatId(text: string): string | null {
  const n = wholeNumber(text, -(MAX_CHAT_ID - 1), MAX_CHAT_ID - 1);
  return n === null || n === 0 ? null : String(n);
}

export interface ShareLike {
  updates: number;
  errorRate: number;
  deadLetterRate: number;
}

/** Whether the candidate's rate is worse than the stable one's by more than `margin` (the controller's test). */
export function exceeds(candidate: number, stable: number, margin: number): boolean {
  return candidate > stable + margin;
}

export interface Comparison {
  /** the candidate's error rate exceeds the stable one's + margin */
  errorRate: boolean;
  /** the candidate's dead-letter rate exceeds the stable one's + margin */
  deadLetterRate: boolean;
  /** the candidate has `minUpdates` updates: an automatic rollout judges it (and aborts when a rate exceeds) */
  judged: boolean;
}

export function compareShares(r: { stable: ShareLike; candidate: ShareLike; errorMargin: number; minUpdates: number }): Comparison {
  return {
    errorRate: exceeds(r.candidate.errorRate, r.stable.errorRate, r.errorMargin),
    deadLetterRate: exceeds(r.candidate.deadLetterRate, r.stable.deadLetterRate, r.errorMargin),
    judged: r.candidate.updates >= r.minUpdates,
  };
}

/** A rate (a fraction) as a percentage with one decimal: 0.0123 → "1.2%". */
export function rate(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/** A percentage a margin (a fraction) stands for, without float noise: 0.05 → "5", 0.005 → "0.5". */
export function marginPct(fraction: number): string {
  return String(Number((fraction * 100).toFixed(4)));
}

/** A duration in seconds, briefly: 90 → "1 min 30 s", 3600 → "1 h". */
export function seconds(total: number): string {
  if (total < 60) return `${total} s`;
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return [h && `${h} h`, m && `${m} min`, s && `${s} s`].filter(Boolean).join(" ");
}

/** A deployment's kind as the lists show it: "deploy", "rollback", "rollout 10%". */
export function deploymentKind(kind: string, percent: number | null | undefined): string {
  const k = kind.toLowerCase();
  return k === "rollout" && percent != null ? `rollout ${percent}%` : k;
}
