/**
 * A simulated chat, kept in the browser: `simulate` runs one update and keeps nothing, so the
 * console holds the chat's `state` (passed back with the next update), the clock (`now`, +1 s
 * per message so cooldowns and TTLs behave; it can also jump ahead), the turns (what was sent,
 * what came back) and the chat bubbles.
 *
 * The API fixture is also replayed as `botkiln simulate --api` does over a whole conversation:
 * a key whose value is a list answers with its entries in turn (the last repeats). Each call
 * gets the fixture afresh, so the console counts what earlier turns used and sends the lists
 * from there on (interpreter/api_fixture.py's key matching: exact key, else the longest `*` prefix).
 */
import { actionsToMessages, asRecord, nextKeyboard, userMessage, type ChatMessage, type Outgoing, type ReplyKeyboard, type SimAction } from "./chat";

/** The clock step between two messages. */
export const STEP_MS = 1000;

export interface SimProblem {
  pointer: string;
  code: string;
  message: string;
  hint?: string | null;
}

export interface SimRequest {
  method: string;
  url: string;
  request: unknown;
}

export interface SimEvent {
  type: string;
  data: unknown;
}

export type TurnResult =
  | {
      ok: true;
      engine: string;
      revHash: string | null;
      now: number;
      update: unknown;
      actions: SimAction[];
      events: SimEvent[];
      requests: SimRequest[];
      state: unknown;
    }
  | {
      ok: false;
      /** SpecInvalid, SimulationFailed, NotFound, InvalidInput, or Error (the request itself failed) */
      kind: string;
      message: string;
      problems: SimProblem[];
      field: string | null;
    };

export interface Turn {
  n: number;
  sent: Outgoing;
  /** what ran it, for the list of turns ("draft", "revision 1a2b3c…") */
  target: string;
  /** the update's time (ms) */
  at: number;
  stateBefore: unknown;
  result: TurnResult;
}

export interface Session {
  /** the chat's state to pass back (null: a new chat) */
  state: unknown;
  /** the next update's time (ms) */
  now: number;
  turns: Turn[];
  messages: ChatMessage[];
  keyboard: ReplyKeyboard | null;
  /** how many results of each fixture key earlier turns used */
  fixtureUse: Record<string, number>;
}

export function newSession(now: number): Session {
  return { state: null, now: Math.floor(now), turns: [], messages: [], keyboard: null, fixtureUse: {} };
}

/** The `simulate` result union as a turn result. */
export function toTurnResult(res: { __typename: string } & Record<string, unknown>): TurnResult {
  if (res.__typename === "Simulated") {
    return {
      ok: true,
      engine: String(res.engine),
      revHash: typeof res.revHash === "string" ? res.revHash : null,
      now: Number(res.now),
      update: res.update,
      actions: (res.actions as SimAction[] | undefined) ?? [],
      events: (res.events as SimEvent[] | undefined) ?? [],
      requests: (res.requests as SimRequest[] | undefined) ?? [],
      state: res.state,
    };
  }
  return {
    ok: false,
    kind: res.__typename,
    message: typeof res.message === "string" ? res.message : res.__typename,
    problems: (res.errors as SimProblem[] | undefined) ?? [],
    field: typeof res.field === "string" ? res.field : null,
  };
}

/** A request that failed before the API answered (network, GraphQL error). */
export function requestFailed(message: string): TurnResult {
  return { ok: false, kind: "Error", message, problems: [], field: null };
}

/** A turn's failure as one line for the chat pane. */
export function failureLine(result: Extract<TurnResult, { ok: false }>): string {
  switch (result.kind) {
    case "SpecInvalid":
      return `The draft does not validate (${result.problems.length} problem${result.problems.length === 1 ? "" : "s"}): nothing ran.`;
    case "SimulationFailed":
      return `The bot failed on this update: ${result.message}`;
    case "InvalidInput":
      return `Refused (${result.field ?? "input"}): ${result.message}`;
    case "NotFound":
      return `Not found: ${result.message}`;
    default:
      return result.message;
  }
}

/**
 * The session after one turn: a success takes the new state and the bot's messages and moves
 * the clock to the update's time + 1 s; a failure keeps the state (nothing happened) and shows
 * why. Either way the user's bubble stays.
 */
export function applyTurn(session: Session, sent: Outgoing, target: string, result: TurnResult, fixture: Record<string, unknown> | null): Session {
  const n = session.turns.length + 1;
  const turn: Turn = { n, sent, target, at: session.now, stateBefore: session.state, result };
  const messages = [...session.messages, userMessage(sent, n)];
  if (!result.ok) {
    messages.push({ id: `${n}:e`, turn: n, from: "system", kind: "error", text: failureLine(result) });
    return {
      ...session,
      now: session.now + STEP_MS,
      turns: [...session.turns, turn],
      messages,
      keyboard: nextKeyboard(session.keyboard, sent, null),
    };
  }
  const out = actionsToMessages(result.actions, n);
  return {
    state: result.state,
    now: Math.max(session.now, Math.floor(result.now)) + STEP_MS,
    turns: [...session.turns, turn],
    messages: [...messages, ...out.messages],
    keyboard: nextKeyboard(session.keyboard, sent, out.keyboard),
    fixtureUse: fixture ? countFixtureUse(fixture, result.requests, session.fixtureUse) : session.fixtureUse,
  };
}

/** Jump the clock ahead (to let a cooldown or a TTL run out). */
export function advanceClock(session: Session, ms: number): Session {
  return { ...session, now: session.now + Math.max(0, Math.floor(ms)) };
}

/** The fixture key answering `method url`: the exact key, else the longest matching `*` prefix. */
export function fixtureKey(fixture: Record<string, unknown>, method: string, url: string): string | null {
  const exact = `${method} ${url}`;
  if (Object.prototype.hasOwnProperty.call(fixture, exact)) return exact;
  let best: string | null = null;
  for (const key of Object.keys(fixture)) {
    if (key.endsWith("*") && exact.startsWith(key.slice(0, -1)) && (best === null || key.length > best.length)) best = key;
  }
  return best;
}

/** `used` plus the list entries this turn's requests consumed. */
export function countFixtureUse(fixture: Record<string, unknown>, requests: readonly SimRequest[], used: Record<string, number>): Record<string, number> {
  const next = { ...used };
  for (const r of requests) {
    const key = fixtureKey(fixture, r.method, r.url);
    if (key !== null && Array.isArray(fixture[key])) next[key] = (next[key] ?? 0) + 1;
  }
  return next;
}

/** The fixture to send next: each list starts after the entries already used (the last one stays). */
export function fixtureForTurn(fixture: Record<string, unknown>, used: Record<string, number>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fixture)) {
    const n = used[key] ?? 0;
    out[key] = Array.isArray(value) && n > 0 ? value.slice(Math.min(n, value.length - 1)) : value;
  }
  return out;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** The fixture box: empty is no fixture (every apiCall fails as a network error). */
export function parseFixture(text: string): Parsed<Record<string, unknown> | null> {
  if (text.trim() === "") return { ok: true, value: null };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { ok: false, error: `The API fixture is not JSON: ${(e as Error).message}` };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, error: 'The API fixture is an object: {"METHOD URL": result or [results…]}.' };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

/** The draft box: a spec as JSON (the API validates it). */
export function parseDraft(text: string): Parsed<unknown> {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (e) {
    return { ok: false, error: `The draft is not JSON: ${(e as Error).message}` };
  }
}

/** A spec's `meta.name`, if any. */
export function specName(spec: unknown): string | null {
  const name = asRecord(asRecord(spec).meta).name;
  return typeof name === "string" && name !== "" ? name : null;
}

/** The example a spec came from: the one whose title is the spec's `meta.name`. */
export function exampleForSpec<T extends { title: string }>(spec: unknown, examples: readonly T[]): T | null {
  const name = specName(spec);
  return name === null ? null : (examples.find((e) => e.title === name) ?? null);
}

/** A clock reading for the toolbar: UTC date and time to the second. */
export function clockLabel(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}
