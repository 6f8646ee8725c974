/**
 * The simulator's chat pane as data: Bot API actions (`simulate`'s `actions`, `method params`)
 * become chat bubbles, and their `reply_markup` becomes inline buttons on a bubble or the reply
 * keyboard under the input box, as a Telegram client shows them.
 *
 * What the bots send (interpreter/messages.py, routing.py): `sendMessage {chat_id, text}`,
 * `sendPhoto {chat_id, photo, caption?}`, `sendDocument {chat_id, document, caption?}`, the
 * markup on the last message of a step, and `answerCallbackQuery {callback_query_id, text?}`
 * (a toast when it has a text). Anything else is shown as the raw call.
 */

export interface SimAction {
  method: string;
  params: unknown;
}

/** An inline button: `data` sends a callback, `url` opens a link. */
export interface InlineButton {
  text: string;
  data: string | null;
  url: string | null;
}

/** The reply keyboard under the input box; `hidden` after a one-time keyboard was used. */
export interface ReplyKeyboard {
  rows: string[][];
  oneTime: boolean;
  hidden: boolean;
}

export type Markup =
  | { kind: "none" }
  | { kind: "inline"; rows: InlineButton[][] }
  | { kind: "keyboard"; rows: string[][]; oneTime: boolean }
  | { kind: "remove" };

interface Base {
  /** unique in the chat: `<turn>:<position>` */
  id: string;
  /** the turn (1, 2, …) that produced it */
  turn: number;
}

export type ChatMessage =
  | (Base & { from: "user"; kind: "text"; text: string })
  | (Base & { from: "user"; kind: "press"; label: string; data: string })
  | (Base & { from: "bot"; kind: "text"; text: string; buttons: InlineButton[][] })
  | (Base & { from: "bot"; kind: "photo" | "document"; source: string; caption: string; buttons: InlineButton[][] })
  | (Base & { from: "bot"; kind: "toast"; text: string })
  | (Base & { from: "bot"; kind: "other"; method: string; params: unknown })
  | (Base & { from: "system"; kind: "error"; text: string });

/** What the user sends: a text (typed, or a reply-keyboard button) or an inline button press. */
export type Outgoing = { kind: "text"; text: string; viaKeyboard?: boolean } | { kind: "callback"; data: string; label: string };

export const MAX_TEXT_CHARS = 4096;
export const MAX_CALLBACK_BYTES = 64;

export function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function str(value: unknown): string {
  return typeof value === "string" ? value : value == null ? "" : String(value);
}

function rowsOf(value: unknown): unknown[][] {
  return Array.isArray(value) ? value.filter(Array.isArray) : [];
}

/** A `reply_markup` (inline keyboard, reply keyboard, removal, or nothing). */
export function parseMarkup(value: unknown): Markup {
  const m = asRecord(value);
  if (Array.isArray(m.inline_keyboard)) {
    const rows = rowsOf(m.inline_keyboard).map((row) =>
      row.map((b) => {
        const button = asRecord(b);
        return {
          text: str(button.text),
          data: typeof button.callback_data === "string" ? button.callback_data : null,
          url: typeof button.url === "string" ? button.url : null,
        };
      }),
    );
    return { kind: "inline", rows };
  }
  if (Array.isArray(m.keyboard)) {
    const rows = rowsOf(m.keyboard).map((row) => row.map((b) => (typeof b === "string" ? b : str(asRecord(b).text))));
    // Telegram's default for one_time_keyboard is false
    return { kind: "keyboard", rows, oneTime: m.one_time_keyboard === true };
  }
  if (m.remove_keyboard === true) return { kind: "remove" };
  return { kind: "none" };
}

/** The last name of a path or URL, for a document placeholder. */
export function fileName(source: string): string {
  const path = source.split(/[?#]/)[0] ?? "";
  const last = path.split("/").filter(Boolean).pop();
  return last ? decodeURIComponent(last) : source;
}

/**
 * One turn's actions as bot messages, and what they do to the reply keyboard: the last
 * keyboard or removal among them (`null`: no change).
 */
export function actionsToMessages(actions: readonly SimAction[], turn: number): { messages: ChatMessage[]; keyboard: Markup | null } {
  const messages: ChatMessage[] = [];
  let keyboard: Markup | null = null;
  actions.forEach((action, i) => {
    const id = `${turn}:${i}`;
    const p = asRecord(action.params);
    const markup = parseMarkup(p.reply_markup);
    const buttons = markup.kind === "inline" ? markup.rows : [];
    if (markup.kind === "keyboard" || markup.kind === "remove") keyboard = markup;
    switch (action.method) {
      case "sendMessage":
        messages.push({ id, turn, from: "bot", kind: "text", text: str(p.text), buttons });
        break;
      case "sendPhoto":
        messages.push({ id, turn, from: "bot", kind: "photo", source: str(p.photo), caption: str(p.caption), buttons });
        break;
      case "sendDocument":
        messages.push({ id, turn, from: "bot", kind: "document", source: str(p.document), caption: str(p.caption), buttons });
        break;
      case "answerCallbackQuery":
        // without a text Telegram only stops the button's spinner: nothing to show
        if (str(p.text)) messages.push({ id, turn, from: "bot", kind: "toast", text: str(p.text) });
        break;
      default:
        messages.push({ id, turn, from: "bot", kind: "other", method: action.method, params: action.params });
    }
  });
  return { messages, keyboard };
}

/** The user's own bubble for what they sent. */
export function userMessage(sent: Outgoing, turn: number): ChatMessage {
  const id = `${turn}:u`;
  return sent.kind === "text" ? { id, turn, from: "user", kind: "text", text: sent.text } : { id, turn, from: "user", kind: "press", label: sent.label, data: sent.data };
}

/**
 * The reply keyboard after a turn: a one-time keyboard hides once one of its buttons was
 * pressed (it can still be opened again), then the turn's own markup replaces or removes it.
 */
export function nextKeyboard(current: ReplyKeyboard | null, sent: Outgoing | null, change: Markup | null): ReplyKeyboard | null {
  let keyboard = current;
  if (keyboard && keyboard.oneTime && sent?.kind === "text" && sent.viaKeyboard) keyboard = { ...keyboard, hidden: true };
  if (change?.kind === "keyboard") return { rows: change.rows, oneTime: change.oneTime, hidden: false };
  if (change?.kind === "remove") return null;
  return keyboard;
}

/** The `SimulateEvent` fields for what the user sent. */
export function toEvent(sent: Outgoing): { text: string } | { callback: string } {
  return sent.kind === "text" ? { text: sent.text } : { callback: sent.data };
}

/** Why the API would refuse this (its caps), or null. */
export function outgoingProblem(sent: Outgoing): string | null {
  if (sent.kind === "text") {
    const chars = [...sent.text].length;
    if (chars === 0 || sent.text.trim() === "") return "Type a message first.";
    if (chars > MAX_TEXT_CHARS) return `A message has at most ${MAX_TEXT_CHARS} characters (this one ${chars}).`;
    return null;
  }
  const bytes = new TextEncoder().encode(sent.data).length;
  if (bytes === 0 || bytes > MAX_CALLBACK_BYTES) return `Callback data is 1 to ${MAX_CALLBACK_BYTES} bytes (this one ${bytes}).`;
  return null;
}
