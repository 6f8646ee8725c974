/**
 * A line diff of two texts (jsdiff's `diffLines`), shaped for display: numbered lines on both
 * sides, unchanged runs longer than 2 × context folded into a "gap" row.
 */
import { diffLines } from "diff";

export type DiffRow =
  | { kind: "same" | "add" | "del"; oldNo: number | null; newNo: number | null; text: string }
  | { kind: "gap"; hidden: number };

export interface DiffResult {
  rows: DiffRow[];
  added: number;
  removed: number;
}

function splitLines(value: string): string[] {
  const lines = value.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

export function lineDiff(oldText: string, newText: string, context = 3): DiffResult {
  const full: DiffRow[] = [];
  let oldNo = 1;
  let newNo = 1;
  let added = 0;
  let removed = 0;
  for (const part of diffLines(oldText, newText)) {
    for (const text of splitLines(part.value)) {
      if (part.added) {
        full.push({ kind: "add", oldNo: null, newNo: newNo++, text });
        added++;
      } else if (part.removed) {
        full.push({ kind: "del", oldNo: oldNo++, newNo: null, text });
        removed++;
      } else {
        full.push({ kind: "same", oldNo: oldNo++, newNo: newNo++, text });
      }
    }
  }
  // fold unchanged runs, keeping `context` lines next to each change
  const keep = full.map((r) => r.kind !== "same");
  const changed = keep.slice();
  for (let i = 0; i < full.length; i++) {
    if (!changed[i]) continue;
    for (let j = Math.max(0, i - context); j <= Math.min(full.length - 1, i + context); j++) keep[j] = true;
  }
  const rows: DiffRow[] = [];
  let hidden = 0;
  full.forEach((row, i) => {
    if (keep[i]) {
      if (hidden) rows.push({ kind: "gap", hidden });
      hidden = 0;
      rows.push(row);
    } else hidden++;
  });
  if (hidden) rows.push({ kind: "gap", hidden });
  return { rows, added, removed };
}
