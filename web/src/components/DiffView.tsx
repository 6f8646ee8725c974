import { useMemo } from "react";
import { lineDiff } from "../lib/specDiff";

export function DiffView({ oldText, newText, oldLabel, newLabel }: { oldText: string; newText: string; oldLabel: string; newLabel: string }) {
  const d = useMemo(() => lineDiff(oldText, newText), [oldText, newText]);
  return (
    <>
      <p className="small">
        <span className="badge s-failed">− {oldLabel}</span> <span className="badge s-succeeded">+ {newLabel}</span>{" "}
        <span className="muted">
          {d.added} added, {d.removed} removed
        </span>
      </p>
      {d.added + d.removed === 0 ? (
        <p className="muted">No differences.</p>
      ) : (
        <div className="diff" role="table" aria-label={`Differences between ${oldLabel} and ${newLabel}`}>
          {d.rows.map((r, i) =>
            r.kind === "gap" ? (
              <div key={i} className="gap">
                ⋯ {r.hidden} unchanged line{r.hidden === 1 ? "" : "s"}
              </div>
            ) : (
              <div key={i} className={`ln ${r.kind}`}>
                <span>{r.oldNo ?? ""}</span>
                <span>{r.newNo ?? ""}</span>
                <span>{r.kind === "add" ? "+" : r.kind === "del" ? "−" : " "}</span>
                <span>{r.text}</span>
              </div>
            ),
          )}
        </div>
      )}
    </>
  );
}
