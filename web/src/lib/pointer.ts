/**
 * JSON Pointer (RFC 6901) ↔ text positions in the editor's JSON, with jsonc-parser (which keeps
 * offsets and tolerates the half-typed documents an editor holds).
 *
 * The API names each spec problem by pointer (`/flows/0/steps/2/next`); `pointerRange` finds
 * where that is in the text. A pointer into something that is not there (a missing field, a
 * step that was deleted since) lands on the nearest ancestor that is, with `exact: false`.
 */
import { getLocation, parseTree, type Node } from "jsonc-parser";

export interface TextRange {
  from: number;
  to: number;
  /** false when the pointer's target is missing and this is its nearest existing ancestor. */
  exact: boolean;
}

export function parsePointer(pointer: string): string[] {
  if (pointer === "" || pointer === "#") return [];
  const p = pointer.startsWith("#") ? decodeURIComponent(pointer.slice(1)) : pointer;
  if (!p.startsWith("/")) return [p];
  return p
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

export function formatPointer(path: readonly (string | number)[]): string {
  return path.map((s) => "/" + String(s).replace(/~/g, "~0").replace(/\//g, "~1")).join("");
}

function child(node: Node, segment: string): Node | undefined {
  if (node.type === "object") {
    for (const prop of node.children ?? []) {
      const key = prop.children?.[0];
      if (key?.value === segment) return prop.children?.[1];
    }
    return undefined;
  }
  if (node.type === "array" && /^(0|[1-9][0-9]*)$/.test(segment)) {
    return node.children?.[Number(segment)];
  }
  return undefined;
}

/** Where to mark a node: scalars whole; objects and arrays by their key (or opening bracket). */
function markOf(node: Node): { from: number; to: number } {
  if (node.type === "object" || node.type === "array") {
    const prop = node.parent?.type === "property" ? node.parent : undefined;
    const key = prop?.children?.[0];
    if (key) return { from: key.offset, to: key.offset + key.length };
    return { from: node.offset, to: node.offset + 1 };
  }
  return { from: node.offset, to: node.offset + node.length };
}

/** The text range of `pointer` in `text`, or null if the text is not JSON at all. */
export function pointerRange(text: string, pointer: string, root: Node | undefined = parseTree(text)): TextRange | null {
  if (!root) return null;
  let node = root;
  let exact = true;
  for (const segment of parsePointer(pointer)) {
    const next = child(node, segment);
    if (!next) {
      exact = false;
      break;
    }
    node = next;
  }
  return { ...markOf(node), exact };
}

/** Where the key of `pointer`'s target begins (its value for array items): where a cursor goes. */
export function pointerStart(text: string, pointer: string): number | null {
  const r = pointerRange(text, pointer);
  return r ? r.from : null;
}

/** The JSON pointer of the value at `offset` (the editor's cursor), as far as it can be told. */
export function pointerAt(text: string, offset: number): string {
  const loc = getLocation(text, offset);
  return formatPointer(loc.path.filter((s) => s !== ""));
}
