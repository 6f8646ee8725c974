import { describe, expect, it } from "vitest";
import { formatSpec, orderBySchema } from "./specFormat";

describe("orderBySchema", () => {
  it("puts top-level and meta keys in schema order", () => {
    const canonical = { flows: [], localization: { strings: {} }, meta: { name: "n", botId: "b", locales: ["en"], defaultLocale: "en" }, schema_ver: 1 };
    const ordered = orderBySchema(canonical) as Record<string, Record<string, unknown>>;
    expect(Object.keys(ordered)).toEqual(["schema_ver", "meta", "flows", "localization"]);
    expect(Object.keys(ordered.meta!)).toEqual(["botId", "name", "locales", "defaultLocale"]);
  });

  it("orders a step by its type's definition, targets last", () => {
    const step = { next: "#end", text: "t", type: "reply", id: "s", buttons: { inline: [[{ text: "b", data: "d" }]] } };
    const spec = { flows: [{ steps: [step, { onFail: "a", var: "v", regex: "x", type: "validate", id: "v1" }], id: "f" }] };
    const out = orderBySchema(spec) as { flows: { steps: Record<string, unknown>[] }[] };
    expect(Object.keys(out.flows[0]!)).toEqual(["id", "steps"]);
    expect(Object.keys(out.flows[0]!.steps[0]!)).toEqual(["id", "type", "text", "buttons", "next"]);
    expect(Object.keys(out.flows[0]!.steps[1]!)).toEqual(["id", "type", "var", "regex", "onFail"]);
    const button = (out.flows[0]!.steps[0]!.buttons as { inline: Record<string, unknown>[][] }).inline[0]![0]!;
    expect(Object.keys(button)).toEqual(["text", "data"]);
  });

  it("keeps user-named keys in their order and values untouched", () => {
    const spec = { localization: { strings: { zeta: { en: "z" }, alpha: { en: "a" } } }, state: { vars: { z: { type: "string" }, a: { type: "number" } } } };
    const out = orderBySchema(spec) as typeof spec;
    expect(Object.keys(out.localization.strings)).toEqual(["zeta", "alpha"]);
    expect(Object.keys(out.state.vars)).toEqual(["z", "a"]);
    expect(out).toEqual(spec);
  });

  it("keeps unknown keys (after the known ones) so validation can report them", () => {
    const out = orderBySchema({ bogus: 1, schema_ver: 1 }) as Record<string, unknown>;
    expect(Object.keys(out)).toEqual(["schema_ver", "bogus"]);
  });

  it("formats with two spaces and a final newline", () => {
    expect(formatSpec({ schema_ver: 1 })).toBe('{\n  "schema_ver": 1\n}\n');
  });
});
