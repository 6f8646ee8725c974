import { describe, expect, it } from "vitest";
import { formatPointer, parsePointer, pointerAt, pointerRange } from "./pointer";

const text = `{
  "meta": {"botId": "a/b", "name": "x"},
  "flows": [
    {"id": "main", "steps": [
      {"id": "hello", "type": "reply", "text": "hi"},
      {"id": "bye", "type": "reply", "text": "bye", "next": "#end"}
    ]}
  ],
  "a/b": {"~k": 1}
}`;

const at = (r: { from: number; to: number } | null) => (r ? text.slice(r.from, r.to) : null);

describe("pointer parsing", () => {
  it("unescapes ~1 and ~0, and round-trips", () => {
    expect(parsePointer("")).toEqual([]);
    expect(parsePointer("/a~1b/~0k")).toEqual(["a/b", "~k"]);
    expect(formatPointer(["a/b", "~k", 0])).toBe("/a~1b/~0k/0");
    expect(parsePointer("#/flows/0")).toEqual(["flows", "0"]);
  });
});

describe("pointerRange", () => {
  it("marks scalar values whole", () => {
    const r = pointerRange(text, "/flows/0/steps/1/next");
    expect(at(r)).toBe('"#end"');
    expect(r?.exact).toBe(true);
    expect(at(pointerRange(text, "/meta/botId"))).toBe('"a/b"');
  });

  it("marks objects and arrays by their key, array items by their bracket", () => {
    expect(at(pointerRange(text, "/flows"))).toBe('"flows"');
    expect(at(pointerRange(text, "/flows/0/steps/1"))).toBe("{");
    expect(at(pointerRange(text, "/meta"))).toBe('"meta"');
  });

  it("handles escaped segments", () => {
    expect(at(pointerRange(text, "/a~1b/~0k"))).toBe("1");
  });

  it("falls back to the nearest existing ancestor", () => {
    const r = pointerRange(text, "/flows/0/steps/7/next");
    expect(at(r)).toBe('"steps"');
    expect(r?.exact).toBe(false);
    expect(pointerRange(text, "/meta/locales")?.exact).toBe(false);
    expect(at(pointerRange(text, "/flows/x"))).toBe('"flows"');
  });

  it("the empty pointer is the document", () => {
    expect(pointerRange(text, "")).toEqual({ from: 0, to: 1, exact: true });
  });

  it("tolerates broken JSON and non-JSON", () => {
    const broken = '{"flows": [{"id": "a", "steps": [{"id": "s"}, ';
    const r = pointerRange(broken, "/flows/0/steps/0/id");
    expect(r && broken.slice(r.from, r.to)).toBe('"s"');
    expect(pointerRange("", "/a")).toBeNull();
  });
});

describe("pointerAt", () => {
  it("names the value under the cursor", () => {
    expect(pointerAt(text, text.indexOf('"bye"') + 2)).toBe("/flows/0/steps/1/id");
    expect(pointerAt(text, text.indexOf('"#end"') + 1)).toBe("/flows/0/steps/1/next");
  });
});
