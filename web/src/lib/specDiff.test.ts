import { describe, expect, it } from "vitest";
import { lineDiff } from "./specDiff";
import { formatSpec } from "./specFormat";

const lines = (n: number, f: (i: number) => string = (i) => `line ${i}`) => Array.from({ length: n }, (_, i) => f(i + 1)).join("\n") + "\n";

describe("lineDiff", () => {
  it("is empty for equal texts (folded into one gap)", () => {
    const d = lineDiff(lines(10), lines(10));
    expect(d).toEqual({ rows: [{ kind: "gap", hidden: 10 }], added: 0, removed: 0 });
  });

  it("numbers both sides and folds far context", () => {
    const a = lines(20);
    const b = lines(20, (i) => (i === 10 ? "changed" : `line ${i}`));
    const d = lineDiff(a, b, 2);
    expect(d.added).toBe(1);
    expect(d.removed).toBe(1);
    expect(d.rows).toEqual([
      { kind: "gap", hidden: 7 },
      { kind: "same", oldNo: 8, newNo: 8, text: "line 8" },
      { kind: "same", oldNo: 9, newNo: 9, text: "line 9" },
      { kind: "del", oldNo: 10, newNo: null, text: "line 10" },
      { kind: "add", oldNo: null, newNo: 10, text: "changed" },
      { kind: "same", oldNo: 11, newNo: 11, text: "line 11" },
      { kind: "same", oldNo: 12, newNo: 12, text: "line 12" },
      { kind: "gap", hidden: 8 },
    ]);
  });

  it("shows insertions shifting the new side's numbers", () => {
    const d = lineDiff("a\nb\n", "a\nx\nb\n");
    expect(d.rows).toEqual([
      { kind: "same", oldNo: 1, newNo: 1, text: "a" },
      { kind: "add", oldNo: null, newNo: 2, text: "x" },
      { kind: "same", oldNo: 2, newNo: 3, text: "b" },
    ]);
  });

  it("diffs specs by meaning, not by key order", () => {
    const v1 = { schema_ver: 1, meta: { botId: "b", name: "One" } };
    const v2canonical = { meta: { name: "Two", botId: "b" }, schema_ver: 1 };
    const d = lineDiff(formatSpec(v1), formatSpec(v2canonical));
    expect(d.rows.filter((r) => r.kind === "del" || r.kind === "add").map((r) => ("text" in r ? r.text.trim() : ""))).toEqual([
      '"name": "One"',
      '"name": "Two"',
    ]);
  });
});
