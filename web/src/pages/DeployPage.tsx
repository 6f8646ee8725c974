/**
 * Generate & deploy: build a revision from a spec version, deploy a revision, roll back, run a
 * gradual rollout, and watch it happen on the `progress(botId)` subscription. Each click sends a
 * fresh random idempotency key, so a retried request never starts a second task.
 */
import { useCallback, useEffect, useMemo, useReducer, useState, type ReactNode } from "react";
import { useClient, useMutation, useQuery, useSubscription } from "urql";
import {
  DeployMutation,
  DeploymentsQuery,
  GenerateMutation,
  ProgressSubscription,
  RevisionsQuery,
  RollbackMutation,
  RolloutQuery,
  SpecVersionsQuery,
  TaskQuery,
  TasksQuery,
} from "../api/operations";
import type { ProgressSubscription as ProgressEvent, StartTaskFieldsFragment } from "../gql/graphql";
import { ProgressPanel } from "../components/ProgressPanel";
import { RolloutPanel } from "../components/RolloutPanel";
import { MissingSecretsWarning } from "../components/SecretsPanel";
import { Can, ErrorBox, Notice, StatusBadge } from "../components/ui";
import { useAuth } from "../lib/auth";
import { randomUuid } from "../lib/ids";
import { ago, duration, shortHash, when } from "../lib/format";
import { EMPTY, busy, reduceProgress, taskFinished, taskStarted, type ProgressEventLike, type ProgressState, type TaskView } from "../lib/progress";
import { can, type Role } from "../lib/roles";
import { isLive } from "../lib/rollout";
import { useBot } from "./BotLayout";

type Act =
  | { type: "event"; event: ProgressEventLike }
  | { type: "started"; taskId: string; kind: string; at: string }
  | { type: "finished"; task: Parameters<typeof taskFinished>[1] };

function reducer(state: ProgressState, act: Act): ProgressState {
  switch (act.type) {
    case "event":
      return reduceProgress(state, act.event);
    case "started":
      return taskStarted(state, act.taskId, act.kind, act.at);
    case "finished":
      return taskFinished(state, act.task);
  }
}

/** The WebSocket's state, for the "live" dot. */
function useLive(): "connecting" | "live" | "offline" {
  const { ws } = useAuth();
  const [state, setState] = useState<"connecting" | "live" | "offline">("connecting");
  useEffect(() => {
    const offs = [ws.on("connected", () => setState("live")), ws.on("closed", () => setState("offline")), ws.on("connecting", () => setState("connecting"))];
    return () => offs.forEach((off) => off());
  }, [ws]);
  return state;
}

export function DeployPage() {
  const { bot, role, refetchBot } = useBot();
  const client = useClient();
  const [progress, dispatch] = useReducer(reducer, EMPTY);
  const [notice, setNotice] = useState<{ kind: "error" | "ok" | "info"; text: string } | null>(null);
  const live = useLive();

  const [versions] = useQuery({ query: SpecVersionsQuery, variables: { botId: bot.id } });
  const [revisions, refetchRevisions] = useQuery({ query: RevisionsQuery, variables: { botId: bot.id } });
  const [deployments, refetchDeployments] = useQuery({ query: DeploymentsQuery, variables: { botId: bot.id } });
  const [tasks, refetchTasks] = useQuery({ query: TasksQuery, variables: { botId: bot.id } });
  const [rollout, refetchRollout] = useQuery({ query: RolloutQuery, variables: { botId: bot.id } });

  const refreshAll = useCallback(() => {
    refetchBot();
    refetchRevisions({ requestPolicy: "network-only" });
    refetchDeployments({ requestPolicy: "network-only" });
    refetchTasks({ requestPolicy: "network-only" });
    refetchRollout({ requestPolicy: "network-only" });
  }, [refetchBot, refetchRevisions, refetchDeployments, refetchTasks, refetchRollout]);

  useSubscription({ query: ProgressSubscription, variables: { botId: bot.id } }, (_prev: unknown, data: ProgressEvent) => {
    const ev = data.progress as ProgressEventLike;
    dispatch({ type: "event", event: ev });
    // a task ended, or a live rollout changed (its share, its status: a promotion flips the active revision)
    if (/Succeeded|Failed|Flipped|RolloutChanged/.test(ev.__typename)) refreshAll();
    return data;
  });

  // a live rollout's counters move without events (and an automatic one steps on its own): look again now and then
  const rolloutLive = isLive(rollout.data?.rollout?.status);
  useEffect(() => {
    if (!rolloutLive) return;
    const timer = setInterval(() => refetchRollout({ requestPolicy: "network-only" }), live === "live" ? 10_000 : 3000);
    return () => clearInterval(timer);
  }, [rolloutLive, live, refetchRollout]);

  // the subscription can miss events (pub/sub keeps nothing across a reconnect): poll running tasks
  const running = useMemo(() => progress.order.filter((id) => progress.tasks[id]?.state === "running"), [progress]);
  useEffect(() => {
    if (running.length === 0) return;
    const timer = setInterval(() => {
      for (const id of running) {
        void client
          .query(TaskQuery, { id }, { requestPolicy: "network-only" })
          .toPromise()
          .then((r) => {
            const t = r.data?.task;
            if (t && (t.status === "SUCCEEDED" || t.status === "FAILED")) {
              dispatch({ type: "finished", task: t });
              refreshAll();
            }
          });
      }
    }, live === "live" ? 5000 : 2000);
    return () => clearInterval(timer);
  }, [running, client, live, refreshAll]);

  const onStarted = useCallback(
    (res: StartTaskFieldsFragment | undefined, what: string, kind?: string) => {
      if (!res) return;
      if (res.__typename === "TaskStarted") {
        dispatch({ type: "started", taskId: res.task.id, kind: kind ?? res.task.kind, at: res.task.createdAt });
        setNotice(null);
        refetchTasks({ requestPolicy: "network-only" });
      } else {
        setNotice({ kind: "error", text: `${what}: ${res.message}` });
      }
    },
    [refetchTasks],
  );

  const versionList = versions.data?.specVersions.edges.map((e) => e.node) ?? [];
  const revisionList = revisions.data?.revisions.edges.map((e) => e.node) ?? [];
  const deploymentList = deployments.data?.deployments.edges.map((e) => e.node) ?? [];
  const taskList = tasks.data?.tasks.edges.map((e) => e.node) ?? [];
  // revisions that served before (a rollback target must have)
  const served = [...new Set(deploymentList.filter((d) => d.status === "SUCCEEDED").map((d) => d.revHash))].filter((h) => h !== bot.activeRevHash);

  return (
    <>
      <h2>Generate & deploy</h2>
      <p className="small">
        Serving: <span className="mono">{bot.activeRevHash ? shortHash(bot.activeRevHash, 12) : "nothing"}</span>
        {bot.activeRevision?.specVersion != null && <> (spec v{bot.activeRevision.specVersion})</>}
        {bot.activeSince && <span className="muted"> since {ago(bot.activeSince)}</span>}
        {" · "}latest spec v{bot.latestSpecVersion || "–"}
      </p>
      {notice && <Notice kind={notice.kind}>{notice.text}</Notice>}
      {rolloutLive && (
        <Notice kind="warn">A rollout is live (below): promote or abort it before another deploy or a rollback.</Notice>
      )}
      <div className="charts">
        <Can role={role} action="generate">
          <GenerateCard botId={bot.id} versions={versionList.map((v) => v.version)} busy={busy(progress)} onStarted={onStarted} />
        </Can>
        <Can role={role} action="deploy">
          <DeployCard botId={bot.id} role={role} revisions={revisionList} active={bot.activeRevHash ?? null} onStarted={onStarted} />
        </Can>
        <Can role={role} action="rollback">
          <RollbackCard botId={bot.id} served={served} hasActive={!!bot.activeRevHash} onStarted={onStarted} />
        </Can>
      </div>
      {!can(role, "generate") && <p className="muted small">Editors generate revisions and owners deploy and roll back; you can follow what they do here.</p>}

      <h2>Rollout</h2>
      <RolloutPanel
        botId={bot.id}
        role={role}
        rollout={rollout.data?.rollout ?? null}
        error={rollout.error}
        revisions={revisionList}
        activeRevHash={bot.activeRevHash ?? null}
        onStarted={(res) => onStarted(res, "Rollout", "rollout")}
        onChanged={refreshAll}
      />

      <h2 className="row">
        <span>
          <span className={`live-dot ${live === "live" ? "on" : ""}`} aria-hidden="true" />
          Progress
        </span>
        <span className="muted small" style={{ fontWeight: "normal" }}>
          {live === "live" ? "live" : live === "connecting" ? "connecting…" : "live updates unavailable (WebSocket closed); checking task status instead"}
        </span>
      </h2>
      <ProgressPanel
        state={progress}
        actions={(t: TaskView): ReactNode =>
          t.kind === "generate" && t.state === "succeeded" && t.revHash && t.revHash !== bot.activeRevHash && can(role, "deploy") ? (
            <>
              <MissingSecretsWarning botId={bot.id} revHash={t.revHash} role={role} />
              <DeployButton botId={bot.id} revHash={t.revHash} onStarted={onStarted} />
            </>
          ) : null
        }
      />

      <h2>Recent tasks</h2>
      <ErrorBox error={tasks.error} />
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th>When</th>
              <th>Kind</th>
              <th>Status</th>
              <th>Outcome</th>
            </tr>
          </thead>
          <tbody>
            {taskList.slice(0, 15).map((t) => {
              const result = (t.result ?? {}) as Record<string, unknown>;
              return (
                <tr key={t.id}>
                  <td className="small">
                    {when(t.createdAt)} <span className="muted">{duration(t.startedAt, t.finishedAt)}</span>
                  </td>
                  <td>{t.kind}</td>
                  <td>
                    <StatusBadge status={t.status} />
                  </td>
                  <td className="small">
                    {typeof result.revHash === "string" && <span className="mono">{shortHash(result.revHash, 12)} </span>}
                    {result.reused === true && <span className="muted">(already built) </span>}
                    {t.error && (
                      <details>
                        <summary className="failed">{t.error.split("\n")[0]!.slice(0, 120)}</summary>
                        <pre className="reason">{t.error}</pre>
                      </details>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </>
  );
}

type OnStarted = (res: StartTaskFieldsFragment | undefined, what: string, kind?: string) => void;

function GenerateCard({ botId, versions, busy, onStarted }: { botId: string; versions: number[]; busy: boolean; onStarted: OnStarted }) {
  const [version, setVersion] = useState<number | "latest">("latest");
  const [generator, setGenerator] = useState<"COMPILER" | "LLM">("COMPILER");
  const [result, generate] = useMutation(GenerateMutation);
  return (
    <div className="chart">
      <h3>Build a revision</h3>
      <div className="stack">
        <label>
          Spec version
          <select value={String(version)} onChange={(e) => setVersion(e.target.value === "latest" ? "latest" : Number(e.target.value))}>
            <option value="latest">latest{versions[0] ? ` (v${versions[0]})` : ""}</option>
            {versions.map((v) => (
              <option key={v} value={v}>
                v{v}
              </option>
            ))}
          </select>
        </label>
        <label>
          Generator
          <select value={generator} onChange={(e) => setGenerator(e.target.value as "COMPILER" | "LLM")}>
            <option value="COMPILER">compiler (deterministic)</option>
            <option value="LLM">LLM (needs a model key on the server)</option>
          </select>
        </label>
        <ErrorBox error={result.error} />
        <button
          disabled={result.fetching || versions.length === 0}
          onClick={async () => {
            const r = await generate({ botId, idempotencyKey: randomUuid(), specVersion: version === "latest" ? null : version, generator });
            onStarted(r.data?.generate, "Generate");
          }}
          title={busy ? "another task is running; this one will queue behind it" : undefined}
        >
          {result.fetching ? "Starting…" : "Generate"}
        </button>
        {versions.length === 0 && <span className="muted small">Save a spec version first.</span>}
      </div>
    </div>
  );
}

interface RevisionRow {
  revHash: string;
  specVersion?: number | null;
  createdAt: string;
}

function DeployCard({ botId, role, revisions, active, onStarted }: { botId: string; role: Role | null; revisions: RevisionRow[]; active: string | null; onStarted: OnStarted }) {
  const candidates = revisions.filter((r) => r.revHash !== active);
  const [chosen, setChosen] = useState<string>("");
  const [why, setWhy] = useState("");
  const [force, setForce] = useState(false);
  const [result, deploy] = useMutation(DeployMutation);
  const revHash = chosen || candidates[0]?.revHash || "";
  return (
    <div className="chart">
      <h3>Deploy a revision</h3>
      <div className="stack">
        <label>
          Revision
          <select value={revHash} onChange={(e) => setChosen(e.target.value)} disabled={candidates.length === 0}>
            {candidates.length === 0 && <option value="">no other revision</option>}
            {candidates.map((r) => (
              <option key={r.revHash} value={r.revHash}>
                {shortHash(r.revHash, 12)} · spec v{r.specVersion ?? "?"} · {ago(r.createdAt)}
              </option>
            ))}
          </select>
        </label>
        <MissingSecretsWarning botId={botId} revHash={revHash} role={role} />
        <label>
          Why <span className="muted">(kept with the deployment)</span>
          <input value={why} maxLength={500} onChange={(e) => setWhy(e.target.value)} placeholder="new opening hours" />
        </label>
        <label className="row" style={{ flexDirection: "row" }}>
          <input type="checkbox" checked={force} onChange={(e) => setForce(e.target.checked)} style={{ minHeight: 0 }} />
          <span>Accept a per-chat state shape change (force)</span>
        </label>
        <ErrorBox error={result.error} />
        <button
          disabled={!revHash || result.fetching}
          onClick={async () => {
            const r = await deploy({ botId, revHash, idempotencyKey: randomUuid(), force, why: why.trim() });
            onStarted(r.data?.deploy, "Deploy");
            setWhy("");
          }}
        >
          {result.fetching ? "Starting…" : "Deploy"}
        </button>
      </div>
    </div>
  );
}

function DeployButton({ botId, revHash, onStarted }: { botId: string; revHash: string; onStarted: OnStarted }) {
  const [result, deploy] = useMutation(DeployMutation);
  return (
    <button
      className="secondary"
      style={{ marginTop: "0.3rem" }}
      disabled={result.fetching}
      onClick={async () => {
        const r = await deploy({ botId, revHash, idempotencyKey: randomUuid(), force: false, why: "" });
        onStarted(r.data?.deploy, "Deploy");
      }}
    >
      Deploy {shortHash(revHash, 10)}
    </button>
  );
}

function RollbackCard({ botId, served, hasActive, onStarted }: { botId: string; served: string[]; hasActive: boolean; onStarted: OnStarted }) {
  const [to, setTo] = useState("");
  const [force, setForce] = useState(false);
  const [result, rollback] = useMutation(RollbackMutation);
  return (
    <div className="chart">
      <h3>Roll back</h3>
      <div className="stack">
        <p className="small muted" style={{ margin: 0 }}>
          Flips traffic back to a revision that served before — no rebuild.
        </p>
        <label>
          To
          <select value={to} onChange={(e) => setTo(e.target.value)}>
            <option value="">the revision before the last flip</option>
            {served.map((h) => (
              <option key={h} value={h}>
                {shortHash(h, 12)}
              </option>
            ))}
          </select>
        </label>
        <label className="row" style={{ flexDirection: "row" }}>
          <input type="checkbox" checked={force} onChange={(e) => setForce(e.target.checked)} style={{ minHeight: 0 }} />
          <span>Accept a state shape change (force)</span>
        </label>
        <ErrorBox error={result.error} />
        <button
          className="danger"
          disabled={result.fetching || !hasActive}
          onClick={async () => {
            const r = await rollback({ botId, idempotencyKey: randomUuid(), toRevHash: to || null, force, why: "rollback from the console" });
            onStarted(r.data?.rollback, "Rollback");
          }}
        >
          {result.fetching ? "Starting…" : "Roll back"}
        </button>
      </div>
    </div>
  );
}
