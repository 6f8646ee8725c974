import { describe, expect, it } from "vitest";
import { confirmText, dropSummary, letterRow, replaySummary, statusClass, updateSummary, type InboundLetter, type OutboundLetter } from "./deadLetters";

const inbound: InboundLetter = {
  __typename: "InboundDeadLetter",
  index: 2,
  chatId: "42",
  at: "2026-01-02T03:04:05+00:00",
  payload: { update_id: 901, message: { message_id: 1, chat: { id: 42 }, text: "when are you   open?" } },
  updateId: "901",
  reason: "executor_error: boom",
  deliveries: 5,
  payloadText: null,
};

const outbound: OutboundLetter = {
  __typename: "OutboundDeadLetter",
  index: 0,
  chatId: "42",
  at: "2026-01-02T03:04:05+00:00",
  payload: { method: "sendPhoto", params: { chat_id: 42, photo: "https://cdn.example/menu.jpg" } },
  method: "sendPhoto",
  error: "Bad Request: wrong file identifier",
  errorCode: 400,
  attempts: 1,
  dedupKey: "upd:901",
  actionIndex: 1,
};

describe("letterRow", () => {
  it("describes an inbound entry by its update", () => {
    expect(letterRow(inbound)).toMatchObject({
      index: 2,
      chatId: "42",
      what: "update 901",
      summary: "message “when are you open?”",
      problem: "executor_error: boom",
      tries: 5,
      detail: inbound.payload,
    });
  });

  it("shows the raw text of an inbound payload that is not JSON", () => {
    const row = letterRow({ ...inbound, payload: null, payloadText: "\\x00garbage" });
    expect(row.summary).toBe("not JSON");
    expect(row.detail).toBe("\\x00garbage");
  });

  it("describes an outbound entry by its method and Telegram's error", () => {
    expect(letterRow(outbound)).toMatchObject({
      what: "sendPhoto",
      summary: "photo https://cdn.example/menu.jpg",
      problem: "400: Bad Request: wrong file identifier",
      tries: 1,
      detail: { action: outbound.payload, update: "upd:901", actionIndex: 1 },
    });
    expect(letterRow({ ...outbound, errorCode: null, payload: { method: "sendMessage", params: { text: "hi" } } })).toMatchObject({ problem: "Bad Request: wrong file identifier", summary: "“hi”" });
  });

  it("summarises updates of other kinds", () => {
    expect(updateSummary({ update_id: 1, callback_query: { data: "go" } })).toBe("button “go”");
    expect(updateSummary({ update_id: 1, my_chat_member: {} })).toBe("my chat member");
    expect(updateSummary({ update_id: 1, message: { photo: [] } })).toBe("message (no text)");
  });
});

describe("confirmations", () => {
  const row = letterRow(inbound);
  it("names the entry or the whole queue", () => {
    expect(confirmText({ op: "drop", queue: "INBOUND", index: 2 }, row, 3, false)).toBe("Drop entry #2 (update 901, chat 42)? It is deleted for good.");
    expect(confirmText({ op: "drop", queue: "OUTBOUND", index: null }, null, 3, false)).toBe("Drop all 3 outbound entries? They are deleted for good.");
    expect(confirmText({ op: "replay", queue: "INBOUND", index: null }, null, 50, true)).toMatch(/^Replay all 50\+ inbound entries\? Each update goes back/);
    expect(confirmText({ op: "replay", queue: "OUTBOUND", index: 0 }, letterRow(outbound), 1, false)).toMatch(/^Replay entry #0 \(sendPhoto, chat 42\)\? The action is sent to Telegram again/);
    expect(confirmText({ op: "drop", queue: "INBOUND", index: null }, null, 1, false)).toBe("Drop all 1 inbound entry? They are deleted for good.");
  });
});

describe("results", () => {
  it("sums up a replay", () => {
    expect(replaySummary({ replayed: 0, kept: 0, outcomes: [] })).toBe("Nothing to replay: the queue is empty.");
    expect(replaySummary({ replayed: 2, kept: 1, outcomes: [1, 2, 3, 4] })).toBe("Replayed 2 entries. 1 entry refused again and kept. 1 entry already gone.");
    expect(replaySummary({ replayed: 1, kept: 0, outcomes: [1] })).toBe("Replayed 1 entry.");
    expect(statusClass("FAILED")).toBe("s-failed");
    expect(statusClass("SENT")).toBe("s-ok");
  });

  it("sums up a drop", () => {
    expect(dropSummary(0)).toMatch(/Nothing dropped/);
    expect(dropSummary(3)).toBe("Dropped 3 entries.");
  });
});

describe("who sees dead letters", () => {
  it("editors and owners, as the API's CanEditBot (payloads hold user data)", async () => {
    const { can, ROLES } = await import("./roles");
    expect(ROLES.map((r) => can(r, "deadLetters"))).toEqual([false, true, true]);
    expect(ROLES.map((r) => can(r, "simulate"))).toEqual([true, true, true]);
  });
});
