/** A bot's overview: active revision, webhook, revisions (rev.json), deployments, tasks. */
import { useState } from "react";
import { Link, useNavigate } from "react-router";
import { useMutation, useQuery } from "urql";
import { DeleteBotMutation, DeploymentsQuery, RevisionsQuery, TasksQuery, WebhookQuery } from "../api/operations";
import type { DeploymentsQuery as DeploymentsQueryResult, RevisionsQuery as RevisionsQueryResult, TasksQuery as TasksQueryResult } from "../gql/graphql";
import { Can, Empty, ErrorBox, Json, Loading, Notice, StatusBadge } from "../components/ui";
import { ago, bytes, duration, shortHash, when } from "../lib/format";
import { usePaged } from "../lib/paging";
import { deploymentKind } from "../lib/rollout";
import { useBot } from "./BotLayout";

export function BotOverview() {
  const { bot, role } = useBot();
  return (
    <>
      <div className="charts">
        <div className="chart">
          <h3>Serving</h3>
          {bot.activeRevision ? (
            <dl className="facts">
              <dt>Revision</dt>
              <dd className="mono">{bot.activeRevision.revHash}</dd>
              <dt>Spec version</dt>
              <dd>{bot.activeRevision.specVersion != null ? `v${bot.activeRevision.specVersion}` : "—"}</dd>
              <dt>Since</dt>
              <dd>
                {when(bot.activeSince)} <span className="muted small">({ago(bot.activeSince)})</span>
              </dd>
              <dt>Latest spec</dt>
              <dd>
                {bot.latestSpecVersion ? `v${bot.latestSpecVersion}` : "none"}{" "}
                {bot.latestSpecVersion > (bot.activeRevision.specVersion ?? 0) && (
                  <Link to="deploy" className="small">
                    newer than what serves: generate & deploy
                  </Link>
                )}
              </dd>
            </dl>
          ) : (
            <Empty>
              Nothing serves yet. {bot.latestSpecVersion ? <Link to="deploy">Generate and deploy</Link> : <Link to="spec">Write a spec</Link>} first.
            </Empty>
          )}
        </div>
        <Can
          role={role}
          action="webhook"
          otherwise={
            <div className="chart">
              <h3>Webhook</h3>
              <p className="muted small">Telegram's view of the webhook is shown to editors and owners.</p>
            </div>
          }
        >
          <Webhook botId={bot.id} />
        </Can>
      </div>
      <Revisions botId={bot.id} activeRevHash={bot.activeRevHash ?? null} />
      <Deployments botId={bot.id} />
      <Tasks botId={bot.id} />
      <Can role={role} action="deleteBot">
        <DeleteBot botId={bot.id} projectId={bot.projectId} />
      </Can>
    </>
  );
}

function Webhook({ botId }: { botId: string }) {
  const [{ data, fetching, error }, refetch] = useQuery({ query: WebhookQuery, variables: { botId } });
  const w = data?.bot?.webhook;
  return (
    <div className="chart">
      <h3 className="row spread">
        Webhook
        <button className="link small" onClick={() => refetch({ requestPolicy: "network-only" })} disabled={fetching}>
          {fetching ? "asking Telegram…" : "refresh"}
        </button>
      </h3>
      <ErrorBox error={error} />
      {!w ? (
        fetching ? <Loading what="Asking Telegram" /> : null
      ) : w.__typename !== "WebhookState" ? (
        <Notice kind="warn">{w.message}</Notice>
      ) : (
        <dl className="facts">
          <dt>Status</dt>
          <dd>{w.registered ? <StatusBadge status="ok" /> : <span className="badge s-failed">not delivering here</span>}</dd>
          <dt>URL</dt>
          <dd className="mono small">{w.url || "—"}</dd>
          {!w.registered && (
            <>
              <dt>Expected</dt>
              <dd className="mono small">{w.expectedUrl}</dd>
            </>
          )}
          <dt>Pending updates</dt>
          <dd>{w.pendingUpdateCount}</dd>
          {w.lastErrorMessage && (
            <>
              <dt>Last error</dt>
              <dd>
                {w.lastErrorMessage} <span className="muted small">{when(w.lastErrorAt)}</span>
              </dd>
            </>
          )}
        </dl>
      )}
    </div>
  );
}

function Revisions({ botId, activeRevHash }: { botId: string; activeRevHash: string | null }) {
  const { nodes: revisions, fetching, error, hasData, hasMore, loadMore, loadingMore } = usePaged(RevisionsQuery, { botId }, pickRevisions);
  const [open, setOpen] = useState<string | null>(null);
  return (
    <>
      <h2>Revisions</h2>
      <ErrorBox error={error} />
      {fetching && !hasData ? (
        <Loading />
      ) : revisions.length === 0 ? (
        <Empty>No revisions yet: a generate builds one from a spec version.</Empty>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Revision</th>
                <th>Spec</th>
                <th>Generator</th>
                <th>Built</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {revisions.map((r) => {
                const build = (r.build ?? {}) as Record<string, unknown>;
                const generator = String(build.generator ?? build.kind ?? "—");
                const isOpen = open === r.revHash;
                return [
                  <tr key={r.revHash} className={r.revHash === activeRevHash ? "selected" : ""}>
                    <td className="mono" title={r.revHash}>
                      {shortHash(r.revHash, 12)} {r.revHash === activeRevHash && <span className="badge active">active</span>}
                    </td>
                    <td>{r.specVersion != null ? `v${r.specVersion}` : "—"}</td>
                    <td className="small">{generator}</td>
                    <td className="small">{when(r.createdAt)}</td>
                    <td>
                      <button className="link small" onClick={() => setOpen(isOpen ? null : r.revHash)}>
                        {isOpen ? "hide" : "rev.json"}
                      </button>
                    </td>
                  </tr>,
                  isOpen && (
                    <tr key={`${r.revHash}-detail`}>
                      <td colSpan={5}>
                        <dl className="facts small">
                          <dt>Spec hash</dt>
                          <dd className="mono">{r.specHash}</dd>
                          <dt>Artifacts</dt>
                          <dd className="mono">{r.artifactsUri}</dd>
                        </dl>
                        <ul className="small">
                          {r.artifacts.map((a) => (
                            <li key={a.name}>
                              <span className="mono">{a.name}</span> · {bytes(a.size)} · <span className="mono muted">{shortHash(a.sha256, 16)}</span>
                            </li>
                          ))}
                        </ul>
                        <Json
                          value={{ revHash: r.revHash, botId: r.botId, specVersion: r.specVersion, specHash: r.specHash, build: r.build, artifacts: r.artifacts.map(({ name, sha256, size }) => ({ name, sha256, size })), createdAt: r.createdAt }}
                        />
                      </td>
                    </tr>
                  ),
                ];
              })}
            </tbody>
          </table>
        </div>
      )}
      <ShowMore hasMore={hasMore} loading={loadingMore} onClick={() => void loadMore()} />
    </>
  );
}

function Deployments({ botId }: { botId: string }) {
  const { nodes: deployments, fetching, error, hasData, hasMore, loadMore, loadingMore } = usePaged(DeploymentsQuery, { botId }, pickDeployments);
  return (
    <>
      <h2>Deployments</h2>
      <ErrorBox error={error} />
      {fetching && !hasData ? (
        <Loading />
      ) : deployments.length === 0 ? (
        <Empty>No deployments yet.</Empty>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>When</th>
                <th>Kind</th>
                <th>Status</th>
                <th>Revision</th>
                <th>Stages</th>
              </tr>
            </thead>
            <tbody>
              {deployments.map((d) => (
                <tr key={d.id}>
                  <td className="small">
                    {when(d.createdAt)}
                    <div className="muted">{duration(d.createdAt, d.finishedAt)}</div>
                  </td>
                  <td>{deploymentKind(d.kind, d.percent)}</td>
                  <td>
                    <StatusBadge status={d.status} />
                  </td>
                  <td className="mono small">
                    {shortHash(d.previousRevHash)} → {shortHash(d.revHash)}
                    {d.why && <div className="muted">“{d.why}”</div>}
                  </td>
                  <td className="small">
                    <div className="stages">
                      {d.stages
                        .filter((s) => s.status !== "STARTED")
                        .map((s, i) => (
                          <span key={i} className={`badge s-${s.status.toLowerCase()}`} title={s.detail}>
                            {s.stage}
                          </span>
                        ))}
                    </div>
                    {d.reason && (
                      <details>
                        <summary className="danger">
                          failed at {d.failedStage ?? "?"}: {d.reason.split("\n")[0]}
                        </summary>
                        <pre className="reason">{d.reason}</pre>
                      </details>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <ShowMore hasMore={hasMore} loading={loadingMore} onClick={() => void loadMore()} />
    </>
  );
}

function Tasks({ botId }: { botId: string }) {
  const { nodes: tasks, fetching, error, hasData, hasMore, loadMore, loadingMore } = usePaged(TasksQuery, { botId }, pickTasks);
  return (
    <>
      <h2>Tasks</h2>
      <ErrorBox error={error} />
      {fetching && !hasData ? (
        <Loading />
      ) : tasks.length === 0 ? (
        <Empty>No tasks yet.</Empty>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>When</th>
                <th>Kind</th>
                <th>Status</th>
                <th>Attempts</th>
                <th>Result</th>
              </tr>
            </thead>
            <tbody>
              {tasks.map((t) => (
                <tr key={t.id}>
                  <td className="small">
                    {when(t.createdAt)}
                    <div className="muted">{duration(t.startedAt, t.finishedAt)}</div>
                  </td>
                  <td>{t.kind}</td>
                  <td>
                    <StatusBadge status={t.status} />
                  </td>
                  <td>
                    {t.attempts}/{t.maxAttempts}
                  </td>
                  <td className="small">
                    {t.error && <pre className="reason">{t.error}</pre>}
                    {t.result != null && (
                      <details>
                        <summary>result</summary>
                        <Json value={t.result} />
                      </details>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <ShowMore hasMore={hasMore} loading={loadingMore} onClick={() => void loadMore()} />
    </>
  );
}

const pickRevisions = (d: RevisionsQueryResult) => d.revisions;
const pickDeployments = (d: DeploymentsQueryResult) => d.deployments;
const pickTasks = (d: TasksQueryResult) => d.tasks;

function ShowMore({ hasMore, loading, onClick }: { hasMore: boolean; loading: boolean; onClick(): void }) {
  if (!hasMore) return null;
  return (
    <p>
      <button className="secondary" onClick={onClick} disabled={loading}>
        {loading ? "Loading…" : "Show more"}
      </button>
    </p>
  );
}

function DeleteBot({ botId, projectId }: { botId: string; projectId: string }) {
  const [confirm, setConfirm] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [result, deleteBot] = useMutation(DeleteBotMutation);
  const navigate = useNavigate();
  async function go() {
    const r = await deleteBot({ botId });
    const res = r.data?.deleteBot;
    if (res?.__typename === "BotDeleted") void navigate(`/projects/${projectId}`);
    else if (res) setProblem(res.message);
  }
  return (
    <details className="panel">
      <summary>Delete this bot</summary>
      <p className="small">
        The webhook is removed and the bot stops answering. Its history is kept and its id <b>{botId}</b> is never reused. Type the id to confirm.
      </p>
      <div className="inline-form">
        <input aria-label="Bot id to confirm" value={confirm} onChange={(e) => setConfirm(e.target.value)} placeholder={botId} />
        <button className="danger" disabled={confirm !== botId || result.fetching} onClick={() => void go()}>
          Delete bot
        </button>
      </div>
      {problem && <Notice kind="error">{problem}</Notice>}
      <ErrorBox error={result.error} />
    </details>
  );
}
