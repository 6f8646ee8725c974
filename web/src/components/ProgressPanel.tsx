/** The live panel: one card per task, its stages, and a failure's full reason. */
import { shortHash, when } from "../lib/format";
import type { ProgressState, TaskView } from "../lib/progress";
import { StatusBadge } from "./ui";

const VERB: Record<TaskView["kind"], string> = { generate: "Generate", deploy: "Deploy", rollback: "Rollback", rollout: "Rollout", task: "Task" };

export function ProgressPanel({ state, actions }: { state: ProgressState; actions?: (t: TaskView) => React.ReactNode }) {
  if (state.order.length === 0) return <p className="muted small">Nothing running. Tasks you or others start on this bot show up here as they happen.</p>;
  return (
    <ul className="events" aria-label="Progress">
      {state.order.map((id) => {
        const t = state.tasks[id]!;
        return (
          <li key={id}>
            <span className="at">{when(t.startedAt).replace(/^.*, /, "")}</span>
            <div>
              <div className="row">
                <b>{VERB[t.kind]}</b>
                <StatusBadge status={t.state} />
                {t.revHash && <span className="mono small" title={t.revHash}>{shortHash(t.revHash, 12)}</span>}
                {t.state === "running" && t.message && <span className="muted small">{t.message}</span>}
              </div>
              {t.stages.length > 0 && (
                <div className="stages">
                  {t.stages.map((s, i) => (
                    <span key={i} className={`badge s-${s.status}`} title={s.message ?? s.at}>
                      {s.stage}
                    </span>
                  ))}
                </div>
              )}
              {t.reason && (
                <>
                  <div className="failed small">Failed{t.failedStage ? ` at ${t.failedStage}` : ""}:</div>
                  <pre className="reason">{t.reason}</pre>
                </>
              )}
              {actions?.(t)}
            </div>
          </li>
        );
      })}
    </ul>
  );
}
