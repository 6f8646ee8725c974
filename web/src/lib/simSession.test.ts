import { describe, expect, it } from "vitest";
import {
  advanceClock,
  applyTurn,
  clockLabel,
  countFixtureUse,
  exampleForSpec,
  fixtureForTurn,
  fixtureKey,
  newSession,
  parseDraft,
  parseFixture,
  requestFailed,
  STEP_MS,
  toTurnResult,
  type TurnResult,
} from "./simSession";

const T0 = 1_700_000_000_000;
const state1 = { vars: { n: 1 }, cursor: null, cooldowns: {}, setAt: {}, updatedAt: T0 };

function simulated(over: Partial<Extract<TurnResult, { ok: true }>> = {}): TurnResult {
  return { ok: true, engine: "REFERENCE", revHash: null, now: T0, update: {}, actions: [], events: [], requests: [], state: state1, ...over };
}

describe("toTurnResult", () => {
  it("keeps what a Simulated answer holds", () => {
    const r = toTurnResult({ __typename: "Simulated", engine: "QUICKJS", revHash: "ab", now: 5, update: { update_id: 1 }, actions: [{ method: "sendMessage", params: {} }], events: [], requests: [], state: state1 });
    expect(r).toMatchObject({ ok: true, engine: "QUICKJS", revHash: "ab", now: 5, state: state1 });
  });

  it("turns problems into failures with their pointers or field", () => {
    const invalid = toTurnResult({ __typename: "SpecInvalid", message: "2 problems", errors: [{ pointer: "/flows/0", code: "x", message: "bad", hint: null }] });
    expect(invalid).toEqual({ ok: false, kind: "SpecInvalid", message: "2 problems", problems: [{ pointer: "/flows/0", code: "x", message: "bad", hint: null }], field: null });
    expect(toTurnResult({ __typename: "InvalidInput", message: "too long", field: "input.event.text" })).toMatchObject({ ok: false, field: "input.event.text" });
  });
});

describe("applyTurn", () => {
  it("passes the new state on, adds both sides' bubbles and moves the clock 1 s past the update", () => {
    let s = newSession(T0);
    const result = simulated({ actions: [{ method: "sendMessage", params: { text: "Hi", reply_markup: { keyboard: [["A"]], one_time_keyboard: true } } }] });
    s = applyTurn(s, { kind: "text", text: "/start" }, "draft", result, null);
    expect(s.state).toEqual(state1);
    expect(s.now).toBe(T0 + STEP_MS);
    expect(s.turns).toHaveLength(1);
    expect(s.turns[0]).toMatchObject({ n: 1, at: T0, stateBefore: null, target: "draft" });
    expect(s.messages.map((m) => `${m.from}:${m.kind}`)).toEqual(["user:text", "bot:text"]);
    expect(s.keyboard).toEqual({ rows: [["A"]], oneTime: true, hidden: false });

    const state2 = { ...state1, vars: { n: 2 } };
    s = applyTurn(s, { kind: "text", text: "A", viaKeyboard: true }, "draft", simulated({ now: T0 + STEP_MS, state: state2 }), null);
    expect(s.turns[1]).toMatchObject({ n: 2, at: T0 + STEP_MS, stateBefore: state1 });
    expect(s.state).toEqual(state2);
    expect(s.now).toBe(T0 + 2 * STEP_MS);
    expect(s.keyboard?.hidden).toBe(true);
  });

  it("keeps the state when the turn failed, and says why in the chat", () => {
    let s = applyTurn(newSession(T0), { kind: "text", text: "hi" }, "draft", simulated(), null);
    s = applyTurn(s, { kind: "callback", data: "go", label: "Go" }, "revision ab", { ok: false, kind: "SimulationFailed", message: "bot.js failed: boom", problems: [], field: null }, null);
    expect(s.state).toEqual(state1);
    expect(s.messages.at(-1)).toEqual({ id: "2:e", turn: 2, from: "system", kind: "error", text: "The bot failed on this update: bot.js failed: boom" });
    s = applyTurn(s, { kind: "text", text: "x" }, "draft", requestFailed("Cannot reach the API"), null);
    expect(s.messages.at(-1)).toMatchObject({ kind: "error", text: "Cannot reach the API" });
    expect(s.turns).toHaveLength(3);
  });

  it("lets the clock jump ahead", () => {
    expect(advanceClock(newSession(T0), 60_000).now).toBe(T0 + 60_000);
    expect(advanceClock(newSession(T0), -5).now).toBe(T0);
  });
});

describe("the API fixture over a conversation", () => {
  const fixture = {
    "POST https://crm.example/leads": [{ status: 201 }, { status: 503 }, { status: 201, body: 3 }],
    "GET https://crm.example/*": { status: 200 },
    "GET https://crm.example/v1/*": [{ status: 200 }, { status: 404 }],
  };

  it("matches keys as the interpreter does: exact, else the longest * prefix", () => {
    expect(fixtureKey(fixture, "POST", "https://crm.example/leads")).toBe("POST https://crm.example/leads");
    expect(fixtureKey(fixture, "GET", "https://crm.example/v1/x")).toBe("GET https://crm.example/v1/*");
    expect(fixtureKey(fixture, "GET", "https://crm.example/other")).toBe("GET https://crm.example/*");
    expect(fixtureKey(fixture, "DELETE", "https://crm.example/leads")).toBeNull();
  });

  it("answers lists in turn across messages, the last entry repeating", () => {
    const post = { method: "POST", url: "https://crm.example/leads", request: {} };
    let used = countFixtureUse(fixture, [post, { method: "GET", url: "https://crm.example/x", request: {} }], {});
    expect(used).toEqual({ "POST https://crm.example/leads": 1 });
    expect(fixtureForTurn(fixture, used)["POST https://crm.example/leads"]).toEqual([{ status: 503 }, { status: 201, body: 3 }]);
    used = countFixtureUse(fixture, [post, post, post], used);
    expect(fixtureForTurn(fixture, used)["POST https://crm.example/leads"]).toEqual([{ status: 201, body: 3 }]);
    expect(fixtureForTurn(fixture, used)["GET https://crm.example/*"]).toEqual({ status: 200 });
  });

  it("is counted by applyTurn when one was sent", () => {
    const s = applyTurn(newSession(T0), { kind: "text", text: "x" }, "draft", simulated({ requests: [{ method: "POST", url: "https://crm.example/leads", request: {} }] }), fixture);
    expect(s.fixtureUse).toEqual({ "POST https://crm.example/leads": 1 });
  });
});

describe("inputs", () => {
  it("parses the fixture box", () => {
    expect(parseFixture("  ")).toEqual({ ok: true, value: null });
    expect(parseFixture('{"GET https://a/*": {"status": 200}}')).toEqual({ ok: true, value: { "GET https://a/*": { status: 200 } } });
    expect(parseFixture("[1]")).toMatchObject({ ok: false });
    expect(parseFixture("{")).toMatchObject({ ok: false, error: expect.stringMatching(/not JSON/) });
  });

  it("parses the draft box", () => {
    expect(parseDraft('{"a": 1}')).toEqual({ ok: true, value: { a: 1 } });
    expect(parseDraft("{,}")).toMatchObject({ ok: false });
  });

  it("finds the example a spec came from by meta.name", () => {
    const examples = [{ title: "Bean There FAQ", name: "faq" }, { title: "Quiz", name: "quiz" }];
    expect(exampleForSpec({ meta: { name: "Quiz" } }, examples)?.name).toBe("quiz");
    expect(exampleForSpec({ meta: { name: "Mine" } }, examples)).toBeNull();
    expect(exampleForSpec(null, examples)).toBeNull();
  });

  it("shows the clock in UTC", () => {
    expect(clockLabel(T0)).toBe("2023-11-14 22:13:20 UTC");
  });
});
