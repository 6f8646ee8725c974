/** Shaping analytics answers for display (pure, tested). */

export interface Day {
  day: string;
  updates: number;
  messagesSent: number;
  errors: number;
  errorRate: number;
  p50LatencyMs: number | null;
  p95LatencyMs: number | null;
}

export interface Totals {
  updates: number;
  messagesSent: number;
  errors: number;
  /** errors / updates over the window (0 without updates) */
  errorRate: number;
  /** the worst day's p95, null without any latency */
  worstP95: number | null;
}

export function totals(days: readonly Day[]): Totals {
  let updates = 0;
  let messagesSent = 0;
  let errors = 0;
  let worstP95: number | null = null;
  for (const d of days) {
    updates += d.updates;
    messagesSent += d.messagesSent;
    errors += d.errors;
    if (d.p95LatencyMs != null) worstP95 = Math.max(worstP95 ?? 0, d.p95LatencyMs);
  }
  return { updates, messagesSent, errors, errorRate: updates ? errors / updates : 0, worstP95 };
}

export interface FunnelRow {
  label: string;
  chats: number;
  /** share of the flow's starts (0..1) */
  ofStart: number;
  /** share of the previous stage (0..1; 1 for the first) */
  ofPrevious: number;
}

export function funnelRows(steps: readonly { stage: string; step?: string | null; chats: number }[]): FunnelRow[] {
  const start = steps[0]?.chats ?? 0;
  return steps.map((s, i) => {
    const prev = i === 0 ? s.chats : steps[i - 1]!.chats;
    return {
      label: s.stage === "STARTED" ? "started" : s.stage === "COMPLETED" ? "completed" : (s.step ?? "?"),
      chats: s.chats,
      ofStart: start ? s.chats / start : 0,
      ofPrevious: prev ? s.chats / prev : i === 0 ? 1 : 0,
    };
  });
}

export function percent(x: number): string {
  return `${(x * 100).toFixed(x < 0.1 && x > 0 ? 1 : 0)}%`;
}

export function ms(x: number): string {
  return x >= 1000 ? `${(x / 1000).toFixed(1)} s` : `${Math.round(x)} ms`;
}
