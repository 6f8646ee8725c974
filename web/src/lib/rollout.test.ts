import { describe, expect, it } from "vitest";
import {
  DEFAULT_PLAN,
  MAX_STEPS,
  advanceTarget,
  chatId,
  compareShares,
  deploymentKind,
  exceeds,
  isLive,
  marginPct,
  parseSteps,
  planField,
  rate,
  seconds,
  validatePlan,
  type PlanForm,
} from "./rollout";

const form = (over: Partial<PlanForm> = {}): PlanForm => ({ ...DEFAULT_PLAN, revHash: "r2", ...over });

describe("parseSteps", () => {
  it("reads comma-separated percentages, spaces and % signs allowed", () => {
    expect(parseSteps("1, 10, 50, 100")).toEqual({ steps: [1, 10, 50, 100] });
    expect(parseSteps(" 5%,25 %,100")).toEqual({ steps: [5, 25, 100] });
    expect(parseSteps("100")).toEqual({ steps: [100] });
  });

  it("refuses what the API refuses: empty, not whole, out of 1..100, not strictly increasing, too many", () => {
    expect(parseSteps("")).toHaveProperty("error");
    expect(parseSteps("  ")).toHaveProperty("error");
    expect(parseSteps("10,,50")).toEqual({ error: expect.stringContaining("empty step") });
    expect(parseSteps("10, 50,")).toHaveProperty("error");
    expect(parseSteps("0, 10")).toEqual({ error: expect.stringContaining("“0”") });
    expect(parseSteps("10, 101")).toEqual({ error: expect.stringContaining("“101”") });
    expect(parseSteps("1.5, 10")).toEqual({ error: expect.stringContaining("“1.5”") });
    expect(parseSteps("ten")).toHaveProperty("error");
    expect(parseSteps("-5, 10")).toHaveProperty("error");
    expect(parseSteps("10, 5")).toEqual({ error: "steps must be strictly increasing (5 after 10)" });
    expect(parseSteps("10, 10")).toEqual({ error: "steps must be strictly increasing (10 after 10)" });
    const many = Array.from({ length: MAX_STEPS + 1 }, (_, i) => i + 1).join(",");
    expect(parseSteps(many)).toEqual({ error: `at most ${MAX_STEPS} steps` });
    expect(parseSteps(Array.from({ length: MAX_STEPS }, (_, i) => i + 1).join(","))).toHaveProperty("steps");
  });
});

describe("validatePlan", () => {
  it("turns the form into startRollout's variables (margin in points → a fraction)", () => {
    expect(validatePlan(form({ percent: " 0 ", steps: "10, 50", auto: true, dwellSec: "60", errorMarginPct: "7", minUpdates: "20", why: "  try it " }))).toEqual({
      plan: { revHash: "r2", percent: 0, steps: [10, 50], auto: true, dwellSec: 60, errorMargin: 0.07, minUpdates: 20, why: "try it" },
    });
    expect(validatePlan(form({ errorMarginPct: "0.5%" }))).toMatchObject({ plan: { errorMargin: 0.005 } });
  });

  it("names every bad input by startRollout's argument", () => {
    const out = validatePlan(form({ revHash: "", percent: "100", steps: "50, 10", auto: true, dwellSec: "-1", errorMarginPct: "abc", minUpdates: "0", why: "x".repeat(1001) }));
    expect(out).toHaveProperty("errors");
    if (!("errors" in out)) return;
    expect(Object.keys(out.errors).sort()).toEqual(["dwellSec", "errorMargin", "minUpdates", "percent", "revHash", "steps", "why"]);
    expect(out.errors.steps).toContain("strictly increasing");
    expect(out.errors.percent).toContain("100 is a promotion");
  });

  it("checks the dwell time only for automatic rollouts", () => {
    expect(validatePlan(form({ auto: false, dwellSec: "soon" }))).toMatchObject({ plan: { dwellSec: 300, auto: false } });
    expect(validatePlan(form({ auto: true, dwellSec: "soon" }))).toEqual({ errors: { dwellSec: expect.any(String) } });
    expect(validatePlan(form({ auto: true, dwellSec: "604801" }))).toHaveProperty("errors.dwellSec");
  });

  it("maps the server's InvalidInput.field onto an input, or nowhere", () => {
    expect(planField("steps")).toBe("steps");
    expect(planField("errorMargin")).toBe("errorMargin");
    expect(planField("idempotencyKey")).toBeNull();
    expect(planField("")).toBeNull();
  });
});

describe("advancing and pinning", () => {
  it("an advance target must rise, and stops short of 100 (Promote)", () => {
    expect(advanceTarget("50", 10)).toEqual({ percent: 50 });
    expect(advanceTarget(" 11 ", 10)).toEqual({ percent: 11 });
    expect(advanceTarget("10", 10)).toEqual({ error: "the share only rises: it is 10% now" });
    expect(advanceTarget("5", 10)).toHaveProperty("error");
    expect(advanceTarget("100", 10)).toEqual({ error: "100% is a promotion: use Promote" });
    expect(advanceTarget("fifty", 0)).toHaveProperty("error");
    expect(advanceTarget("0", 0)).toHaveProperty("error");
  });

  it("a chat id is a non-zero integer within 2^53", () => {
    expect(chatId("4242")).toBe("4242");
    expect(chatId(" -1001234567890 ")).toBe("-1001234567890");
    expect(chatId("007")).toBe("7");
    expect(chatId("0")).toBeNull();
    expect(chatId("twelve")).toBeNull();
    expect(chatId("1.5")).toBeNull();
    expect(chatId("9007199254740992")).toBeNull();
    expect(chatId("")).toBeNull();
  });

  it("knows which rollouts are live", () => {
    expect(["RUNNING", "PAUSED", "COMPLETED", "ABORTED", null].map(isLive)).toEqual([true, true, false, false, false]);
  });
});

describe("comparing the candidate with the stable revision", () => {
  const share = (updates: number, errorRate: number, deadLetterRate = 0) => ({ updates, errorRate, deadLetterRate });

  it("flags a rate above the stable one's + margin, as the automatic controller does", () => {
    expect(exceeds(0.11, 0.05, 0.05)).toBe(true);
    expect(exceeds(0.1, 0.05, 0.05)).toBe(false); // equal to the bound: not above it
    expect(exceeds(0.0, 0.5, 0)).toBe(false);
    expect(exceeds(0.01, 0, 0)).toBe(true);
    const c = compareShares({ stable: share(1000, 0.01, 0), candidate: share(60, 0.2, 0.03), errorMargin: 0.05, minUpdates: 50 });
    expect(c).toEqual({ errorRate: true, deadLetterRate: false, judged: true });
    const early = compareShares({ stable: share(1000, 0.01), candidate: share(10, 0.5, 0.5), errorMargin: 0.05, minUpdates: 50 });
    expect(early).toEqual({ errorRate: true, deadLetterRate: true, judged: false });
  });

  it("shows rates, margins and durations plainly", () => {
    expect(rate(0)).toBe("0.0%");
    expect(rate(0.0123)).toBe("1.2%");
    expect(rate(1)).toBe("100.0%");
    expect(marginPct(0.05)).toBe("5");
    expect(marginPct(0.07)).toBe("7");
    expect(marginPct(0.005)).toBe("0.5");
    expect(seconds(45)).toBe("45 s");
    expect(seconds(300)).toBe("5 min");
    expect(seconds(3690)).toBe("1 h 1 min 30 s");
  });

  it("names a rollout step's deployment with its share", () => {
    expect(deploymentKind("ROLLOUT", 10)).toBe("rollout 10%");
    expect(deploymentKind("ROLLOUT", 0)).toBe("rollout 0%");
    expect(deploymentKind("ROLLOUT", null)).toBe("rollout");
    expect(deploymentKind("DEPLOY", null)).toBe("deploy");
    expect(deploymentKind("ROLLBACK", undefined)).toBe("rollback");
  });
});
