import { describe, expect, it } from "vitest";
import { actionsToMessages, fileName, nextKeyboard, outgoingProblem, parseMarkup, toEvent, userMessage, type ReplyKeyboard } from "./chat";

const keyboard = {
  keyboard: [[{ text: "Opening hours" }, { text: "Wifi" }], [{ text: "Prices" }]],
  resize_keyboard: true,
  one_time_keyboard: false,
};

describe("parseMarkup", () => {
  it("reads inline keyboards: callback buttons and links", () => {
    const m = parseMarkup({ inline_keyboard: [[{ text: "Start", callback_data: "go" }], [{ text: "Tickets", url: "https://t.example" }]] });
    expect(m).toEqual({
      kind: "inline",
      rows: [[{ text: "Start", data: "go", url: null }], [{ text: "Tickets", data: null, url: "https://t.example" }]],
    });
  });

  it("reads reply keyboards, removals and nothing", () => {
    expect(parseMarkup(keyboard)).toEqual({ kind: "keyboard", rows: [["Opening hours", "Wifi"], ["Prices"]], oneTime: false });
    expect(parseMarkup({ keyboard: [["a"]], one_time_keyboard: true })).toEqual({ kind: "keyboard", rows: [["a"]], oneTime: true });
    expect(parseMarkup({ remove_keyboard: true })).toEqual({ kind: "remove" });
    expect(parseMarkup(undefined)).toEqual({ kind: "none" });
    expect(parseMarkup("junk")).toEqual({ kind: "none" });
  });
});

describe("actionsToMessages", () => {
  it("turns each Bot API call into a bubble, the markup into buttons or the keyboard", () => {
    const { messages, keyboard: change } = actionsToMessages(
      [
        { method: "sendPhoto", params: { chat_id: 1, photo: "https://cdn.example/menu.jpg", caption: "Our menu" } },
        { method: "sendMessage", params: { chat_id: 1, text: "Hi!", reply_markup: keyboard } },
        { method: "sendDocument", params: { chat_id: 1, document: "https://cdn.example/a%20b.pdf" } },
        { method: "sendMessage", params: { chat_id: 1, text: "Pick", reply_markup: { inline_keyboard: [[{ text: "A", callback_data: "a" }]] } } },
      ],
      3,
    );
    expect(messages.map((m) => [m.id, m.from, m.kind])).toEqual([
      ["3:0", "bot", "photo"],
      ["3:1", "bot", "text"],
      ["3:2", "bot", "document"],
      ["3:3", "bot", "text"],
    ]);
    expect(messages[0]).toMatchObject({ source: "https://cdn.example/menu.jpg", caption: "Our menu", buttons: [] });
    expect(messages[2]).toMatchObject({ caption: "" });
    expect(messages[3]).toMatchObject({ text: "Pick", buttons: [[{ text: "A", data: "a", url: null }]] });
    expect(change).toEqual({ kind: "keyboard", rows: [["Opening hours", "Wifi"], ["Prices"]], oneTime: false });
  });

  it("shows a callback answer with a text as a toast, and nothing without", () => {
    const { messages, keyboard: change } = actionsToMessages(
      [
        { method: "answerCallbackQuery", params: { callback_query_id: "1" } },
        { method: "answerCallbackQuery", params: { callback_query_id: "1", text: "Saved" } },
        { method: "setMyCommands", params: { commands: [] } },
      ],
      1,
    );
    expect(messages).toEqual([
      { id: "1:1", turn: 1, from: "bot", kind: "toast", text: "Saved" },
      { id: "1:2", turn: 1, from: "bot", kind: "other", method: "setMyCommands", params: { commands: [] } },
    ]);
    expect(change).toBeNull();
  });

  it("keeps the last keyboard change of a turn", () => {
    const { keyboard: change } = actionsToMessages(
      [
        { method: "sendMessage", params: { text: "a", reply_markup: keyboard } },
        { method: "sendMessage", params: { text: "b", reply_markup: { remove_keyboard: true } } },
      ],
      1,
    );
    expect(change).toEqual({ kind: "remove" });
  });
});

describe("nextKeyboard", () => {
  const kb: ReplyKeyboard = { rows: [["Yes", "No"]], oneTime: true, hidden: false };

  it("hides a one-time keyboard once one of its buttons is pressed", () => {
    expect(nextKeyboard(kb, { kind: "text", text: "Yes", viaKeyboard: true }, null)).toEqual({ ...kb, hidden: true });
    expect(nextKeyboard(kb, { kind: "text", text: "typed" }, null)).toBe(kb);
    const persistent = { ...kb, oneTime: false };
    expect(nextKeyboard(persistent, { kind: "text", text: "Yes", viaKeyboard: true }, null)).toBe(persistent);
  });

  it("replaces or removes it when the bot says so", () => {
    expect(nextKeyboard(kb, null, { kind: "keyboard", rows: [["x"]], oneTime: false })).toEqual({ rows: [["x"]], oneTime: false, hidden: false });
    expect(nextKeyboard(kb, null, { kind: "remove" })).toBeNull();
    expect(nextKeyboard(null, null, { kind: "inline", rows: [] })).toBeNull();
  });
});

describe("what the user sends", () => {
  it("maps to the simulate event: a text, or a callback for an inline button", () => {
    expect(toEvent({ kind: "text", text: "/start" })).toEqual({ text: "/start" });
    expect(toEvent({ kind: "callback", data: "go", label: "Start" })).toEqual({ callback: "go" });
    expect(userMessage({ kind: "callback", data: "go", label: "Start" }, 2)).toEqual({ id: "2:u", turn: 2, from: "user", kind: "press", label: "Start", data: "go" });
    expect(userMessage({ kind: "text", text: "hi" }, 1)).toEqual({ id: "1:u", turn: 1, from: "user", kind: "text", text: "hi" });
  });

  it("checks the API's caps first", () => {
    expect(outgoingProblem({ kind: "text", text: "  " })).toMatch(/Type a message/);
    expect(outgoingProblem({ kind: "text", text: "😀".repeat(4096) })).toBeNull(); // code points, not UTF-16 units
    expect(outgoingProblem({ kind: "text", text: "a".repeat(4097) })).toMatch(/4096/);
    expect(outgoingProblem({ kind: "callback", data: "x".repeat(64), label: "" })).toBeNull();
    expect(outgoingProblem({ kind: "callback", data: "é".repeat(33), label: "" })).toMatch(/66/);
  });
});

it("fileName names a document by its path", () => {
  expect(fileName("https://cdn.example/docs/a%20b.pdf?x=1")).toBe("a b.pdf");
  expect(fileName("AgACAgIAAxkBAAI")).toBe("AgACAgIAAxkBAAI");
});
