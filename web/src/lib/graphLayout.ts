/**
 * Positions for a SpecGraph with dagre (compound: each flow a cluster around its steps).
 * React Flow wants a child's position relative to its parent and parents listed first.
 * If the compound layout fails (dagre's cluster support has edge cases), a flat layout is used.
 */
import dagre from "@dagrejs/dagre";
import type { SpecGraph } from "./specGraph";

export interface Placed {
  id: string;
  /** a flow group (`f:…`) or a node of the graph */
  isGroup: boolean;
  parent: string | null;
  /** top-left; relative to the parent when there is one */
  x: number;
  y: number;
  width: number;
  height: number;
}

const NODE_H = 30;
const PAD = 12;
const HEADER = 20;

export function nodeWidth(label: string, detail: string): number {
  return Math.min(220, Math.max(70, 7 * (label.length + detail.length) + 34));
}

function run(graph: SpecGraph, compound: boolean): Placed[] {
  const g = new dagre.graphlib.Graph({ compound, multigraph: true });
  g.setGraph({ rankdir: "TB", nodesep: 44, ranksep: 40, edgesep: 10, marginx: 10, marginy: 10 });
  g.setDefaultEdgeLabel(() => ({}));
  if (compound) for (const f of graph.groups) g.setNode(f.id, {});
  for (const n of graph.nodes) {
    g.setNode(n.id, { width: nodeWidth(n.label, n.kind === "step" ? n.detail : ""), height: NODE_H });
    if (compound && n.group) g.setParent(n.id, n.group);
  }
  for (const e of graph.edges) if (e.source !== e.target) g.setEdge(e.source, e.target, {}, e.id);
  dagre.layout(g);

  const out: Placed[] = [];
  const abs = new Map<string, { x: number; y: number }>();
  if (compound) {
    for (const f of graph.groups) {
      const n = g.node(f.id);
      if (!n || !Number.isFinite(n.x)) continue;
      const width = n.width ?? 0;
      const height = n.height ?? 0;
      // dagre's cluster box hugs its nodes: widen it by PAD and add a header for the flow's name
      // (an empty flow still gets a small box)
      const w = Math.max(width, 100) + 2 * PAD;
      const h = Math.max(height, 0) + HEADER + PAD;
      const x = n.x - w / 2;
      const y = n.y - height / 2 - HEADER;
      abs.set(f.id, { x, y });
      out.push({ id: f.id, isGroup: true, parent: null, x, y, width: w, height: h });
    }
  }
  for (const node of graph.nodes) {
    const n = g.node(node.id);
    if (!n) continue;
    const width = n.width ?? 0;
    const x = n.x - width / 2;
    const y = n.y - NODE_H / 2;
    const parent = compound && node.group && abs.has(node.group) ? node.group : null;
    const origin = parent ? abs.get(parent)! : { x: 0, y: 0 };
    out.push({ id: node.id, isGroup: false, parent, x: x - origin.x, y: y - origin.y, width, height: NODE_H });
  }
  return out;
}

export function layoutGraph(graph: SpecGraph): Placed[] {
  try {
    const placed = run(graph, true);
    if (placed.every((p) => Number.isFinite(p.x) && Number.isFinite(p.y))) return placed;
  } catch {
    // fall through to the flat layout
  }
  return run(graph, false);
}
