/**
 * The dead-letter page's model (docs/dlq.md, docs/api.md "console's tools"): one table row per
 * entry of either queue, the confirmation sentence of a replay or drop, and what came of it.
 * `index` is an entry's position (oldest first); it shifts when entries ahead of it go, so the
 * page reloads the list after every replay or drop.
 */
import { asRecord } from "./chat";

export type Queue = "INBOUND" | "OUTBOUND";

export interface InboundLetter {
  __typename: "InboundDeadLetter";
  index: number;
  chatId: string;
  at: string;
  payload?: unknown;
  updateId: string;
  reason: string;
  deliveries: number;
  payloadText?: string | null;
}

export interface OutboundLetter {
  __typename: "OutboundDeadLetter";
  index: number;
  chatId: string;
  at: string;
  payload?: unknown;
  method: string;
  error: string;
  errorCode?: number | null;
  attempts: number;
  dedupKey: string;
  actionIndex: number;
}

export type Letter = InboundLetter | OutboundLetter;

export interface LetterRow {
  key: string;
  index: number;
  at: string;
  chatId: string;
  /** "update 123" or the Bot API method */
  what: string;
  /** a short description of the update or the action's target */
  summary: string;
  /** the reason it was dead-lettered (inbound) or Telegram's error (outbound) */
  problem: string;
  /** deliveries (inbound) or attempts (outbound) */
  tries: number;
  /** what the expanded row shows */
  detail: unknown;
}

function clip(text: string, n = 60): string {
  const one = text.replace(/\s+/g, " ").trim();
  return one.length > n ? `${one.slice(0, n - 1)}…` : one;
}

/** What an update was, in a few words: a message's text, a button's data, or its kind. */
export function updateSummary(payload: unknown): string {
  const u = asRecord(payload);
  const message = asRecord(u.message ?? u.edited_message);
  if (typeof message.text === "string") return `message “${clip(message.text)}”`;
  if (Object.keys(message).length > 0) return "message (no text)";
  const callback = asRecord(u.callback_query);
  if (typeof callback.data === "string") return `button “${clip(callback.data)}”`;
  const kind = Object.keys(u).find((k) => k !== "update_id");
  return kind ? kind.replace(/_/g, " ") : "";
}

/** What an action carried, in a few words: its text or caption, or the media. */
export function actionSummary(payload: unknown): string {
  const params = asRecord(asRecord(payload).params);
  for (const key of ["text", "caption"]) {
    const value = params[key];
    if (typeof value === "string" && value.trim() !== "") return `“${clip(value)}”`;
  }
  for (const key of ["photo", "document"]) {
    const value = params[key];
    if (typeof value === "string") return `${key} ${clip(value, 40)}`;
  }
  return "";
}

export function letterRow(letter: Letter): LetterRow {
  if (letter.__typename === "InboundDeadLetter") {
    return {
      key: `in:${letter.index}:${letter.updateId}`,
      index: letter.index,
      at: letter.at,
      chatId: letter.chatId,
      what: `update ${letter.updateId}`,
      summary: letter.payload != null ? updateSummary(letter.payload) : "not JSON",
      problem: letter.reason,
      tries: letter.deliveries,
      detail: letter.payload ?? letter.payloadText ?? null,
    };
  }
  return {
    key: `out:${letter.index}:${letter.dedupKey}:${letter.actionIndex}`,
    index: letter.index,
    at: letter.at,
    chatId: letter.chatId,
    what: letter.method,
    summary: actionSummary(letter.payload),
    problem: letter.errorCode != null ? `${letter.errorCode}: ${letter.error}` : letter.error,
    tries: letter.attempts,
    detail: { action: letter.payload ?? null, update: letter.dedupKey, actionIndex: letter.actionIndex },
  };
}

export type Op = "replay" | "drop";

/** A replay or drop waiting for confirmation: one entry (`index`) or all (`null`). */
export interface Pending {
  op: Op;
  queue: Queue;
  index: number | null;
}

const QUEUE_NAME: Record<Queue, string> = { INBOUND: "inbound", OUTBOUND: "outbound" };

/**
 * The question asked before a replay or drop. `shown` is how many entries the page lists and
 * `more` whether there may be others past them (a replay or drop of all takes those too).
 */
export function confirmText(p: Pending, row: LetterRow | null, shown: number, more: boolean): string {
  const what = p.index === null ? `all ${more ? `${shown}+ ` : `${shown} `}${QUEUE_NAME[p.queue]} entr${shown === 1 && !more ? "y" : "ies"}` : `entry #${p.index}${row ? ` (${row.what}, chat ${row.chatId})` : ""}`;
  if (p.op === "drop") return `Drop ${what}? ${p.index === null ? "They are" : "It is"} deleted for good.`;
  if (p.queue === "INBOUND") {
    return `Replay ${what}? ${p.index === null ? "Each update goes" : "The update goes"} back to the tail of its chat's queue and runs again.`;
  }
  return `Replay ${what}? ${p.index === null ? "Each action is" : "The action is"} sent to Telegram again with the bot's token; one refused again stays listed.`;
}

export type ReplayStatus = "REQUEUED" | "SENT" | "ALREADY_DELIVERED" | "FAILED" | "GONE";

export const STATUS_TEXT: Record<ReplayStatus, string> = {
  REQUEUED: "back in its chat's queue",
  SENT: "sent",
  ALREADY_DELIVERED: "already delivered (not sent twice)",
  FAILED: "refused again, kept",
  GONE: "gone (taken by someone else meanwhile)",
};

/** A badge class for an outcome: s-ok, s-failed, or plain. */
export function statusClass(status: ReplayStatus): string {
  if (status === "FAILED") return "s-failed";
  if (status === "GONE") return "";
  return "s-ok";
}

function entries(n: number): string {
  return `${n} entr${n === 1 ? "y" : "ies"}`;
}

export function replaySummary(r: { replayed: number; kept: number; outcomes: readonly unknown[] }): string {
  if (r.outcomes.length === 0) return "Nothing to replay: the queue is empty.";
  const gone = r.outcomes.length - r.replayed - r.kept;
  const parts = [`Replayed ${entries(r.replayed)}.`];
  if (r.kept > 0) parts.push(`${entries(r.kept)} refused again and kept.`);
  if (gone > 0) parts.push(`${entries(gone)} already gone.`);
  return parts.join(" ");
}

export function dropSummary(dropped: number): string {
  return dropped === 0 ? "Nothing dropped: the entries were already gone." : `Dropped ${entries(dropped)}.`;
}
