import { describe, expect, it } from "vitest";
import { funnelRows, ms, percent, totals } from "./analytics";

describe("analytics shaping", () => {
  it("totals a window, error rate over all updates, worst p95", () => {
    const t = totals([
      { day: "2026-01-01", updates: 10, messagesSent: 12, errors: 1, errorRate: 0.1, p50LatencyMs: 20, p95LatencyMs: 90 },
      { day: "2026-01-02", updates: 0, messagesSent: 0, errors: 0, errorRate: 0, p50LatencyMs: null, p95LatencyMs: null },
      { day: "2026-01-03", updates: 30, messagesSent: 31, errors: 3, errorRate: 0.1, p50LatencyMs: 25, p95LatencyMs: 140 },
    ]);
    expect(t).toEqual({ updates: 40, messagesSent: 43, errors: 4, errorRate: 0.1, worstP95: 140 });
    expect(totals([])).toEqual({ updates: 0, messagesSent: 0, errors: 0, errorRate: 0, worstP95: null });
  });

  it("turns a funnel into rows with shares", () => {
    const rows = funnelRows([
      { stage: "STARTED", step: null, chats: 10 },
      { stage: "STEP", step: "ask_name", chats: 8 },
      { stage: "STEP", step: "check", chats: 4 },
      { stage: "COMPLETED", step: null, chats: 0 },
    ]);
    expect(rows.map((r) => [r.label, r.chats, r.ofStart, r.ofPrevious])).toEqual([
      ["started", 10, 1, 1],
      ["ask_name", 8, 0.8, 0.8],
      ["check", 4, 0.4, 0.5],
      ["completed", 0, 0, 0],
    ]);
    expect(funnelRows([{ stage: "STARTED", chats: 0 }])[0]).toMatchObject({ ofStart: 0, ofPrevious: 1 });
  });

  it("formats", () => {
    expect(percent(0.5)).toBe("50%");
    expect(percent(0.0123)).toBe("1.2%");
    expect(ms(12.4)).toBe("12 ms");
    expect(ms(1500)).toBe("1.5 s");
  });
});
