/**
 * A BotSpec as a graph (docs/botspec.md §6–§8): each flow a group of its steps; edges for
 * `next` (explicit, or the following step), goto's `elseNext`, validate's `onFail` (default:
 * the nearest `ask` before it), apiCall's `onError`, `@flow` jumps, `#end`; and the entry
 * points — commands, intents, callbacks, fallback — pointing at the flow they start.
 *
 * The input is whatever the editor holds: every field may be missing or of the wrong type,
 * and nothing here throws. A target that names no step becomes a "missing" node (drawn red).
 * Every node carries the JSON pointer of what it shows, so a click can move the cursor there.
 */

export type NodeKind = "entry" | "step" | "end" | "missing";
export type EdgeKind = "next" | "else" | "fail" | "error" | "entry";

export interface GraphNode {
  id: string;
  kind: NodeKind;
  label: string;
  /** the step type, or the entry kind (command, intent, callback, fallback) */
  detail: string;
  /** the id of the flow group this node sits in (steps and ends), else null */
  group: string | null;
  pointer: string;
}

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  kind: EdgeKind;
  label?: string;
}

export interface FlowGroup {
  id: string;
  flowId: string;
  pointer: string;
}

export interface SpecGraph {
  groups: FlowGroup[];
  nodes: GraphNode[];
  edges: GraphEdge[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === "string" ? v : null);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

interface FlowInfo {
  index: number;
  id: string;
  steps: { id: string | null; type: string; raw: Obj; nodeId: string }[];
  byId: Map<string, string>;
}

export function specToGraph(spec: unknown): SpecGraph {
  const groups: FlowGroup[] = [];
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  if (!isObj(spec)) return { groups, nodes, edges };

  const flows = new Map<string, FlowInfo>();
  const flowList: FlowInfo[] = [];
  arr(spec.flows).forEach((f, fi) => {
    if (!isObj(f)) return;
    const flowId = str(f.id) ?? `#${fi}`;
    const info: FlowInfo = { index: fi, id: flowId, steps: [], byId: new Map() };
    const groupId = `f:${fi}`;
    groups.push({ id: groupId, flowId, pointer: `/flows/${fi}` });
    arr(f.steps).forEach((s, si) => {
      if (!isObj(s)) return;
      const id = str(s.id);
      const type = str(s.type) ?? "?";
      const nodeId = `s:${fi}:${si}`;
      info.steps.push({ id, type, raw: s, nodeId });
      if (id !== null && !info.byId.has(id)) info.byId.set(id, nodeId);
      nodes.push({ id: nodeId, kind: "step", label: id ?? `step ${si}`, detail: type, group: groupId, pointer: `/flows/${fi}/steps/${si}` });
    });
    if (!flows.has(flowId)) flows.set(flowId, info);
    flowList.push(info);
  });

  const missing = new Map<string, string>();
  const missingNode = (label: string, pointer: string): string => {
    const existing = missing.get(label);
    if (existing) return existing;
    const id = `m:${missing.size}`;
    missing.set(label, id);
    nodes.push({ id, kind: "missing", label, detail: "not found", group: null, pointer });
    return id;
  };
  const ends = new Map<number, string>();
  const endOf = (flow: FlowInfo): string => {
    let id = ends.get(flow.index);
    if (!id) {
      id = `end:${flow.index}`;
      ends.set(flow.index, id);
      nodes.push({ id, kind: "end", label: "end", detail: "#end", group: `f:${flow.index}`, pointer: `/flows/${flow.index}` });
    }
    return id;
  };
  const firstStepOf = (flowId: string, pointer: string): string => {
    const flow = flows.get(flowId);
    const first = flow?.steps[0];
    return first ? first.nodeId : missingNode(`@${flowId}`, pointer);
  };
  const resolve = (flow: FlowInfo, target: string, pointer: string): string => {
    if (target === "#end") return endOf(flow);
    if (target.startsWith("@")) return firstStepOf(target.slice(1), pointer);
    return flow.byId.get(target) ?? missingNode(`${flow.id}.${target}`, pointer);
  };
  let edgeCount = 0;
  const edge = (source: string, target: string, kind: EdgeKind, label?: string) => {
    edges.push({ id: `e${edgeCount++}`, source, target, kind, ...(label ? { label } : {}) });
  };

  for (const flow of flowList) {
    flow.steps.forEach((step, si) => {
      const base = `/flows/${flow.index}/steps/${si}`;
      const following = flow.steps[si + 1]?.nodeId ?? endOf(flow);
      const target = (field: string): string | null => {
        const t = str(step.raw[field]);
        return t === null ? null : resolve(flow, t, `${base}/${field}`);
      };
      const next = target("next") ?? following;
      switch (step.type) {
        case "goto": {
          const hasWhen = "when" in step.raw && step.raw.when !== true;
          edge(step.nodeId, next, "next", hasWhen ? "when" : undefined);
          if (hasWhen) edge(step.nodeId, target("elseNext") ?? following, "else", "else");
          break;
        }
        case "validate": {
          edge(step.nodeId, next, "next", "valid");
          let fail = target("onFail");
          if (fail === null) {
            for (let j = si - 1; j >= 0; j--) {
              if (flow.steps[j]!.type === "ask") {
                fail = flow.steps[j]!.nodeId;
                break;
              }
            }
          }
          if (fail !== null) edge(step.nodeId, fail, "fail", "invalid");
          break;
        }
        case "apiCall": {
          edge(step.nodeId, next, "next", "ok");
          const onError = target("onError");
          if (onError !== null) edge(step.nodeId, onError, "error", "error");
          break;
        }
        case "ask":
          edge(step.nodeId, next, "next", "answer");
          break;
        default:
          edge(step.nodeId, next, "next");
      }
    });
  }

  const entry = (id: string, label: string, detail: string, flowValue: unknown, pointer: string) => {
    const flowId = str(flowValue);
    nodes.push({ id, kind: "entry", label, detail, group: null, pointer });
    if (flowId !== null) edge(id, firstStepOf(flowId, `${pointer}/flow`), "entry");
  };
  arr(spec.commands).forEach((c, i) => {
    if (isObj(c)) entry(`c:${i}`, `/${str(c.command) ?? "?"}`, "command", c.flow, `/commands/${i}`);
  });
  arr(spec.intents).forEach((c, i) => {
    if (isObj(c)) entry(`i:${i}`, str(c.id) ?? `intent ${i}`, "intent", c.flow, `/intents/${i}`);
  });
  arr(spec.callbacks).forEach((c, i) => {
    if (!isObj(c)) return;
    const label = str(c.data) ?? (str(c.prefix) !== null ? `${str(c.prefix)}…` : `callback ${i}`);
    entry(`b:${i}`, label, "callback", c.flow, `/callbacks/${i}`);
  });
  if (isObj(spec.fallback)) entry("fallback", "fallback", "fallback", spec.fallback.flow, "/fallback");

  return { groups, nodes, edges };
}

/** The id of the node that shows `pointer` (the cursor's place), if any: the deepest match. */
export function nodeForPointer(graph: SpecGraph, pointer: string): string | null {
  let best: GraphNode | null = null;
  for (const node of graph.nodes) {
    if (node.kind === "end" || node.kind === "missing") continue;
    if (pointer === node.pointer || pointer.startsWith(node.pointer + "/")) {
      if (!best || node.pointer.length > best.pointer.length) best = node;
    }
  }
  return best?.id ?? null;
}
