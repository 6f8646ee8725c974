/**
 * The spec's flows as a graph (React Flow + dagre; lib/specGraph.ts, lib/graphLayout.ts).
 * Layout is recomputed only when the graph's shape changes (not on every keystroke inside a
 * string). Clicking a node calls `onSelect(pointer)`; `selected` highlights the cursor's node.
 */
import { memo, useMemo } from "react";
import {
  Background,
  Controls,
  Handle,
  MarkerType,
  Position,
  ReactFlow,
  ReactFlowProvider,
  type Edge,
  type Node,
  type NodeProps,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import type { EdgeKind, GraphNode, SpecGraph } from "../lib/specGraph";
import { layoutGraph } from "../lib/graphLayout";

type StepData = { node: GraphNode; selected: boolean };
type FlowData = { label: string };

const StepNode = memo(function StepNode({ data }: NodeProps<Node<StepData>>) {
  const n = data.node;
  return (
    <div className={`fg-node ${n.kind}`} style={data.selected ? { outline: "2px solid var(--accent)" } : undefined} title={`${n.label} (${n.detail})`}>
      <Handle type="target" position={Position.Top} isConnectable={false} />
      {n.label}
      {n.kind !== "end" && <span className="t">{n.detail}</span>}
      <Handle type="source" position={Position.Bottom} isConnectable={false} />
    </div>
  );
});

const FlowNode = memo(function FlowNode({ data }: NodeProps<Node<FlowData>>) {
  return <div className="fg-flow">{data.label}</div>;
});

const nodeTypes = { step: StepNode, flow: FlowNode };

const EDGE_STYLE: Record<EdgeKind, { stroke: string; dash?: string }> = {
  next: { stroke: "var(--muted)" },
  else: { stroke: "var(--muted)", dash: "5 4" },
  fail: { stroke: "var(--warn)", dash: "5 4" },
  error: { stroke: "var(--err)", dash: "5 4" },
  entry: { stroke: "var(--accent)", dash: "2 4" },
};

/** What decides the layout: nodes, their groups and sizes, edges. */
function shapeKey(g: SpecGraph): string {
  return JSON.stringify([g.groups.map((f) => f.id + f.flowId), g.nodes.map((n) => [n.id, n.label, n.detail, n.group]), g.edges.map((e) => [e.source, e.target, e.kind])]);
}

interface Props {
  graph: SpecGraph;
  selected: string | null;
  onSelect(pointer: string): void;
}

export function FlowGraph(props: Props) {
  return (
    <ReactFlowProvider>
      <Inner {...props} />
    </ReactFlowProvider>
  );
}

function Inner({ graph, selected, onSelect }: Props) {
  const key = shapeKey(graph);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const placed = useMemo(() => layoutGraph(graph), [key]);
  const nodes = useMemo<Node[]>(() => {
    const byId = new Map(graph.nodes.map((n) => [n.id, n]));
    const groups = new Map(graph.groups.map((f) => [f.id, f]));
    return placed.map((p): Node => {
      if (p.isGroup) {
        const f = groups.get(p.id);
        return {
          id: p.id,
          type: "flow",
          position: { x: p.x, y: p.y },
          data: { label: f?.flowId ?? "" },
          style: { width: p.width, height: p.height },
          className: "react-flow__node-group",
          selectable: false,
          draggable: false,
        };
      }
      const n = byId.get(p.id)!;
      return {
        id: p.id,
        type: "step",
        position: { x: p.x, y: p.y },
        data: { node: n, selected: p.id === selected },
        ...(p.parent ? { parentId: p.parent, extent: "parent" as const } : {}),
        draggable: false,
      };
    });
  }, [placed, graph, selected]);
  const edges = useMemo<Edge[]>(
    () =>
      graph.edges.map((e) => {
        const s = EDGE_STYLE[e.kind];
        return {
          id: e.id,
          source: e.source,
          target: e.target,
          ...(e.label ? { label: e.label } : {}),
          labelStyle: { fontSize: 10, fill: "var(--muted)" },
          labelBgStyle: { fill: "var(--panel)" },
          style: { stroke: s.stroke, strokeDasharray: s.dash },
          markerEnd: { type: MarkerType.ArrowClosed, color: s.stroke, width: 14, height: 14 },
          type: "smoothstep",
        };
      }),
    [graph.edges],
  );
  return (
    <ReactFlow
      key={key}
      nodes={nodes}
      edges={edges}
      nodeTypes={nodeTypes}
      fitView
      fitViewOptions={{ padding: 0.1 }}
      minZoom={0.1}
      nodesConnectable={false}
      nodesDraggable={false}
      edgesFocusable={false}
      onNodeClick={(_, node) => {
        const d = node.data as Partial<StepData>;
        if (d.node) onSelect(d.node.pointer);
      }}
    >
      <Background gap={16} size={1} />
      <Controls showInteractive={false} />
    </ReactFlow>
  );
}
