import { describe, expect, it } from "vitest";
import { nodeForPointer, specToGraph, type SpecGraph } from "./specGraph";
import { layoutGraph } from "./graphLayout";
import booking from "../../../examples/booking.json";

function edgesByLabel(g: SpecGraph): string[] {
  const label = (id: string) => g.nodes.find((n) => n.id === id)!.label;
  return g.edges.map((e) => `${label(e.source)} -${e.kind}-> ${label(e.target)}`);
}

const spec = {
  commands: [{ command: "start", flow: "main" }],
  intents: [{ id: "hours", flow: "info", keywords: { en: ["open"] } }],
  callbacks: [{ prefix: "x:", flow: "info" }, { data: "go", flow: "nowhere" }],
  fallback: { flow: "info" },
  flows: [
    {
      id: "main",
      steps: [
        { id: "ask_age", type: "ask", var: "age", prompt: "p" },
        { id: "check", type: "validate", var: "age", regex: "[0-9]+" },
        { id: "adult", type: "goto", when: { left: "state.age", op: "ge", right: 18 }, next: "call" },
        { id: "minor", type: "reply", text: "t", next: "#end" },
        { id: "call", type: "apiCall", method: "GET", url: "https://a.example/x", onError: "oops" },
        { id: "jump", type: "goto", next: "@info" },
      ],
    },
    { id: "info", steps: [{ id: "hi", type: "reply", text: "t" }] },
  ],
};

describe("specToGraph", () => {
  it("draws steps, targets, defaults and entry points", () => {
    const g = specToGraph(spec);
    expect(g.groups.map((f) => f.flowId)).toEqual(["main", "info"]);
    expect(edgesByLabel(g)).toEqual([
      "ask_age -next-> check",
      "check -next-> adult",
      "check -fail-> ask_age", // onFail defaults to the nearest ask before
      "adult -next-> call",
      "adult -else-> minor", // elseNext defaults to the following step
      "minor -next-> end",
      "call -next-> jump",
      "call -error-> main.oops", // a target naming no step
      "jump -next-> hi", // @flow → its first step
      "hi -next-> end",
      "/start -entry-> ask_age",
      "hours -entry-> hi",
      "x:… -entry-> hi",
      "go -entry-> @nowhere",
      "fallback -entry-> hi",
    ]);
    const missing = g.nodes.filter((n) => n.kind === "missing").map((n) => [n.label, n.pointer]);
    expect(missing).toEqual([
      ["main.oops", "/flows/0/steps/4/onError"],
      ["@nowhere", "/callbacks/1/flow"],
    ]);
    expect(g.nodes.find((n) => n.label === "check")).toMatchObject({ pointer: "/flows/0/steps/1", group: "f:0", detail: "validate" });
  });

  it("a goto without a condition has no else edge", () => {
    const g = specToGraph({ flows: [{ id: "f", steps: [{ id: "a", type: "goto", next: "b" }, { id: "b", type: "reply", text: "t" }] }] });
    expect(edgesByLabel(g)).toEqual(["a -next-> b", "b -next-> end"]);
  });

  it("never throws on half-typed specs", () => {
    for (const bad of [null, 1, "x", [], { flows: 3 }, { flows: [null, { steps: [1, { type: 2 }] }] }, { commands: [{}], fallback: [] }]) {
      expect(() => specToGraph(bad)).not.toThrow();
    }
    const g = specToGraph({ flows: [{ steps: [{ type: "reply" }] }] });
    expect(g.nodes[0]).toMatchObject({ label: "step 0", group: "f:0" });
  });

  it("duplicate step ids resolve to the first", () => {
    const g = specToGraph({ flows: [{ id: "f", steps: [{ id: "a", type: "goto", next: "a" }, { id: "a", type: "reply", text: "t" }] }] });
    expect(g.edges[0]).toMatchObject({ source: "s:0:0", target: "s:0:0" });
  });

  it("finds the node under a pointer", () => {
    const g = specToGraph(spec);
    expect(nodeForPointer(g, "/flows/0/steps/2/when/left")).toBe("s:0:2");
    expect(nodeForPointer(g, "/commands/0/flow")).toBe("c:0");
    expect(nodeForPointer(g, "/flows/0/id")).toBeNull();
    expect(nodeForPointer(g, "/flows/0/steps/10")).toBeNull();
  });

  it("lays out a real example: every node placed, children inside their flow", () => {
    const g = specToGraph(booking);
    expect(g.groups).toHaveLength(booking.flows.length);
    expect(g.nodes.filter((n) => n.kind === "missing")).toEqual([]);
    const laid = layoutGraph(g);
    const byId = new Map(laid.map((n) => [n.id, n]));
    for (const n of laid) {
      expect(Number.isFinite(n.x) && Number.isFinite(n.y)).toBe(true);
      if (n.parent) {
        const p = byId.get(n.parent)!;
        expect(n.x).toBeGreaterThanOrEqual(0);
        expect(n.y).toBeGreaterThanOrEqual(0);
        expect(n.x + n.width).toBeLessThanOrEqual(p.width + 1);
        expect(n.y + n.height).toBeLessThanOrEqual(p.height + 1);
      }
    }
    // parents come before their children (React Flow needs that order)
    const index = new Map(laid.map((n, i) => [n.id, i]));
    for (const n of laid) if (n.parent) expect(index.get(n.parent)!).toBeLessThan(index.get(n.id)!);
  });
});
