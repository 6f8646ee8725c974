/**
 * Progressive delivery (docs/rollouts.md): start a rollout of a revision beside the serving one,
 * watch its share and how the candidate does against the stable revision, advance, pause,
 * resume, promote or abort it, and pin chats to the candidate.
 *
 * The page owns the `rollout(botId)` query (refetched on `RolloutChanged`, after a rollout
 * task ends, and now and then while one is live: the counters move without events). Owners get
 * the controls; everyone else sees the same state read-only.
 */
import { useState } from "react";
import { useClient, useMutation, type CombinedError } from "urql";
import {
  AbortRolloutMutation,
  AdvanceRolloutMutation,
  PauseRolloutMutation,
  PinChatMutation,
  PromoteRolloutMutation,
  ResumeRolloutMutation,
  SetConversationAffinityMutation,
  StartRolloutMutation,
  UnpinChatMutation,
} from "../api/operations";
import type { RolloutFieldsFragment, RolloutResultFieldsFragment, StartRolloutMutation as StartRolloutResult } from "../gql/graphql";
import { ago, shortHash, when } from "../lib/format";
import { randomUuid } from "../lib/ids";
import { can, type Role } from "../lib/roles";
import {
  DEFAULT_PLAN,
  advanceTarget,
  chatId,
  compareShares,
  isLive,
  marginPct,
  planField,
  rate,
  seconds,
  validatePlan,
  wholeNumber,
  type PlanErrors,
  type PlanField,
  type PlanForm,
} from "../lib/rollout";
import { MissingSecretsWarning } from "./SecretsPanel";
import { ErrorBox, Field, Notice, StatusBadge } from "./ui";

export type Rollout = RolloutFieldsFragment;
type StartResult = StartRolloutResult["startRollout"];

interface RevisionRow {
  revHash: string;
  specVersion?: number | null;
  createdAt: string;
}

export function RolloutPanel({
  botId,
  role,
  rollout,
  error,
  revisions,
  activeRevHash,
  onStarted,
  onChanged,
}: {
  botId: string;
  role: Role | null;
  /** the live rollout, else the latest one (null: never any) */
  rollout: Rollout | null;
  error?: CombinedError | undefined;
  revisions: RevisionRow[];
  activeRevHash: string | null;
  /** a rollout task started (its progress shows in the progress panel) */
  onStarted: (res: StartResult) => void;
  /** a rollout changed through this panel: refetch what depends on it */
  onChanged: () => void;
}) {
  const owner = can(role, "rollout");
  const live = rollout != null && isLive(rollout.status);
  return (
    <section aria-label="Rollout">
      <ErrorBox error={error} />
      {live ? (
        <LiveRollout botId={botId} rollout={rollout} owner={owner} onChanged={onChanged} />
      ) : (
        <>
          {rollout && <LastRollout rollout={rollout} />}
          {owner ? (
            <StartRolloutForm botId={botId} role={role} revisions={revisions} activeRevHash={activeRevHash} onStarted={onStarted} />
          ) : (
            <p className="muted small">No rollout is live. Owners start rollouts; you can follow them here.</p>
          )}
        </>
      )}
      {owner && <AffinityControl botId={botId} />}
    </section>
  );
}

function LastRollout({ rollout: r }: { rollout: Rollout }) {
  return (
    <p className="small" aria-label="Last rollout">
      Last rollout: <span className="mono" title={r.candidateRev}>{shortHash(r.candidateRev, 12)}</span> beside{" "}
      <span className="mono" title={r.stableRev}>{shortHash(r.stableRev, 12)}</span> <StatusBadge status={r.status} /> at {r.percent}%
      <span className="muted"> · ended {when(r.endedAt)}</span>
      {r.reason && <span className="muted"> · “{r.reason}”</span>}
    </p>
  );
}

// --- starting one ----------------------------------------------------------------------------------------------------

function StartRolloutForm({
  botId,
  role,
  revisions,
  activeRevHash,
  onStarted,
}: {
  botId: string;
  role: Role | null;
  revisions: RevisionRow[];
  activeRevHash: string | null;
  onStarted: (res: StartResult) => void;
}) {
  const candidates = revisions.filter((r) => r.revHash !== activeRevHash);
  const [form, setForm] = useState<Omit<PlanForm, "revHash"> & { revHash: string }>({ ...DEFAULT_PLAN, revHash: "" });
  const [errors, setErrors] = useState<PlanErrors>({});
  const [problem, setProblem] = useState<string | null>(null);
  const [result, start] = useMutation(StartRolloutMutation);
  const revHash = form.revHash || candidates[0]?.revHash || "";
  const set = <K extends keyof PlanForm>(key: K, value: PlanForm[K]) => {
    setForm((f) => ({ ...f, [key]: value }));
    setErrors((e) => {
      const field: PlanField = key === "errorMarginPct" ? "errorMargin" : (key as PlanField);
      if (!e[field]) return e;
      const rest = { ...e };
      delete rest[field];
      return rest;
    });
  };

  async function submit() {
    setProblem(null);
    const checked = validatePlan({ ...form, revHash });
    if ("errors" in checked) {
      setErrors(checked.errors);
      return;
    }
    setErrors({});
    const r = await start({ botId, idempotencyKey: randomUuid(), ...checked.plan });
    const res = r.data?.startRollout;
    if (!res) return;
    if (res.__typename === "TaskStarted") {
      onStarted(res);
      setForm((f) => ({ ...f, why: "" }));
    } else if (res.__typename === "InvalidInput" && planField(res.field)) {
      setErrors({ [planField(res.field)!]: res.message });
    } else {
      setProblem(res.message);
    }
  }

  if (!activeRevHash) {
    return <p className="muted small">A rollout runs a new revision beside the serving one: deploy a first revision, then roll out the next.</p>;
  }
  return (
    <div className="chart">
      <h3>Start a rollout</h3>
      <p className="small muted" style={{ marginTop: 0 }}>
        The deploy stages run, then a share of chats (by a hash of the chat id, and any pinned chats) goes to the candidate; the rest stay on{" "}
        <span className="mono">{shortHash(activeRevHash, 12)}</span>. Nothing flips until you promote.
      </p>
      <form
        className="rollout-form"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <Field label="Candidate revision" error={errors.revHash} id="ro-rev">
          <select value={revHash} onChange={(e) => set("revHash", e.target.value)} disabled={candidates.length === 0}>
            {candidates.length === 0 && <option value="">no other revision: generate one first</option>}
            {candidates.map((r) => (
              <option key={r.revHash} value={r.revHash}>
                {shortHash(r.revHash, 12)} · spec v{r.specVersion ?? "?"} · {ago(r.createdAt)}
              </option>
            ))}
          </select>
        </Field>
        <MissingSecretsWarning botId={botId} revHash={revHash} role={role} />
        <Field label="Starting share (%)" hint="0 to 99; 0 reaches only pinned chats" error={errors.percent} id="ro-percent">
          <input inputMode="numeric" value={form.percent} onChange={(e) => set("percent", e.target.value)} />
        </Field>
        <Field label="Steps (%)" hint="comma-separated, strictly increasing, 1 to 100 (100 promotes)" error={errors.steps} id="ro-steps">
          <input value={form.steps} onChange={(e) => set("steps", e.target.value)} placeholder="1, 10, 50, 100" />
        </Field>
        <label className="row" style={{ flexDirection: "row" }}>
          <input type="checkbox" checked={form.auto} onChange={(e) => set("auto", e.target.checked)} style={{ minHeight: 0 }} />
          <span>Advance automatically through the steps (and abort on its own when the candidate does worse)</span>
        </label>
        {form.auto && (
          <Field label="Dwell time per step (s)" hint="how long each step lasts before the next" error={errors.dwellSec} id="ro-dwell">
            <input inputMode="numeric" value={form.dwellSec} onChange={(e) => set("dwellSec", e.target.value)} />
          </Field>
        )}
        <Field label="Error margin (percentage points)" hint="the candidate's error or dead-letter rate may exceed the stable one's by this much" error={errors.errorMargin} id="ro-margin">
          <input inputMode="decimal" value={form.errorMarginPct} onChange={(e) => set("errorMarginPct", e.target.value)} />
        </Field>
        <Field label="Minimum updates before judging" hint="the candidate's rates count once it has served this many updates" error={errors.minUpdates} id="ro-min">
          <input inputMode="numeric" value={form.minUpdates} onChange={(e) => set("minUpdates", e.target.value)} />
        </Field>
        <Field label="Note (kept with the rollout's deployments)" error={errors.why} id="ro-note">
          <input value={form.why} maxLength={1000} onChange={(e) => set("why", e.target.value)} placeholder="new opening hours, carefully" />
        </Field>
        {problem && <Notice kind="error">{problem}</Notice>}
        <ErrorBox error={result.error} />
        <div>
          <button type="submit" disabled={result.fetching || candidates.length === 0}>
            {result.fetching ? "Starting…" : "Start rollout"}
          </button>
        </div>
      </form>
    </div>
  );
}

// --- a live one ------------------------------------------------------------------------------------------------------

type Pending = null | "promote" | "abort";

function LiveRollout({ botId, rollout: r, owner, onChanged }: { botId: string; rollout: Rollout; owner: boolean; onChanged: () => void }) {
  const client = useClient();
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<{ field: string | null; text: string } | null>(null);
  const [error, setError] = useState<CombinedError | undefined>(undefined);
  const [confirm, setConfirm] = useState<Pending>(null);
  const [reason, setReason] = useState("");
  const [target, setTarget] = useState("");
  const [targetError, setTargetError] = useState<string | null>(null);
  const [pin, setPin] = useState("");
  const [pinError, setPinError] = useState<string | null>(null);
  const cmp = compareShares(r);

  /** Send one rollout operation; a refusal or a bad input is shown, a change refetches. */
  async function run(send: () => Promise<{ data?: Record<string, RolloutResultFieldsFragment> | undefined; error?: CombinedError | undefined }>): Promise<boolean> {
    setBusy(true);
    setProblem(null);
    setError(undefined);
    try {
      const res = await send();
      if (res.error) setError(res.error);
      const out = res.data ? Object.values(res.data)[0] : undefined;
      if (!out) return false;
      if (out.__typename === "RolloutUpdated") {
        onChanged();
        return true;
      }
      setProblem({ field: out.__typename === "InvalidInput" ? out.field : null, text: out.message });
      return false;
    } finally {
      setBusy(false);
    }
  }

  const advance = async (percent: number | null) => {
    const ok = await run(() => client.mutation(AdvanceRolloutMutation, { botId, percent, why: "" }).toPromise());
    if (ok) setTarget("");
  };

  const next = r.nextStep;
  const paused = r.status === "PAUSED";
  return (
    <div className="charts rollout">
      <div className="chart">
        <h3 className="row spread">
          <span>
            Rollout <StatusBadge status={r.status} />
          </span>
          <span className="muted small" style={{ fontWeight: "normal" }}>
            {r.auto ? `automatic, ${seconds(r.dwellSec)} per step` : "manual"}
          </span>
        </h3>
        <div className="row spread">
          <b className="rollout-pct" aria-label="Share of chats on the candidate">
            {r.percent}%
          </b>
          <span className="small muted">of chats on the candidate{r.pinnedChats.length > 0 && <> (and {r.pinnedChats.length} pinned)</>}</span>
        </div>
        <div className="rollout-bar" role="progressbar" aria-label="Candidate share" aria-valuemin={0} aria-valuemax={100} aria-valuenow={r.percent}>
          <div className="fill" style={{ width: `${r.percent}%` }} />
          {r.steps.map((s) => (
            <span key={s} className={`tick ${s <= r.percent ? "passed" : ""}`} style={{ left: `${s}%` }} title={`step ${s}%`} />
          ))}
        </div>
        <dl className="facts small">
          <dt>Candidate</dt>
          <dd className="mono" title={r.candidateRev}>
            {shortHash(r.candidateRev, 12)}
          </dd>
          <dt>Stable</dt>
          <dd className="mono" title={r.stableRev}>
            {shortHash(r.stableRev, 12)} <span className="badge active">active</span>
          </dd>
          <dt>Steps</dt>
          <dd>
            {r.steps.map((s, i) => (
              <span key={s} className={s === r.percent ? "current-step" : s < r.percent ? "muted" : ""}>
                {i > 0 && " → "}
                {s}%
              </span>
            ))}
          </dd>
          <dt>Next step</dt>
          <dd>
            {next == null ? "—" : next === 100 ? "100% (promotion)" : `${next}%`}
            {r.auto && !paused && next != null && <span className="muted"> · due {dueIn(r.stepStartedAt, r.dwellSec)}</span>}
            {paused && <span className="muted"> · paused: no automatic step</span>}
          </dd>
          <dt>This step since</dt>
          <dd>
            {when(r.stepStartedAt)} <span className="muted">({ago(r.stepStartedAt)})</span>
          </dd>
          <dt>Started</dt>
          <dd>{when(r.createdAt)}</dd>
        </dl>
        <ShareTable rollout={r} />
        {!cmp.judged && (
          <p className="muted small">
            Not judged yet: the candidate has {r.candidate.updates} of the {r.minUpdates} updates it needs{r.auto ? " before the automatic controller compares it" : ""}.
          </p>
        )}
        {r.reason && <p className="small muted">“{r.reason}”</p>}
      </div>

      <div className="chart">
        {owner ? (
          <>
            <h3>Controls</h3>
            <div className="stack">
              <div className="row">
                {next != null && next < 100 ? (
                  <button disabled={busy} onClick={() => void advance(null)}>
                    Advance to {next}%
                  </button>
                ) : (
                  <span className="small muted">No planned step left below 100%: promote when ready.</span>
                )}
                {paused ? (
                  <button className="secondary" disabled={busy} onClick={() => void run(() => client.mutation(ResumeRolloutMutation, { botId }).toPromise())}>
                    Resume
                  </button>
                ) : (
                  <button
                    className="secondary"
                    disabled={busy}
                    title={r.auto ? "stop automatic steps; the share stays" : "a manual rollout only moves when you advance it; pausing marks it as on hold"}
                    onClick={() => void run(() => client.mutation(PauseRolloutMutation, { botId }).toPromise())}
                  >
                    Pause
                  </button>
                )}
              </div>
              <form
                className="inline-form"
                style={{ margin: 0, alignItems: "flex-end" }}
                noValidate
                onSubmit={(e) => {
                  e.preventDefault();
                  const t = advanceTarget(target, r.percent);
                  if ("error" in t) setTargetError(t.error);
                  else {
                    setTargetError(null);
                    void advance(t.percent);
                  }
                }}
              >
                <label>
                  Advance to a share (%)
                  <input
                    inputMode="numeric"
                    value={target}
                    placeholder={r.percent < 99 ? `${r.percent + 1} to 99` : "—"}
                    onChange={(e) => {
                      setTarget(e.target.value);
                      setTargetError(null);
                    }}
                    aria-invalid={!!targetError || problem?.field === "percent" || undefined}
                  />
                </label>
                <button type="submit" className="secondary" disabled={busy || !target.trim()}>
                  Advance
                </button>
              </form>
              {(targetError || problem?.field === "percent") && (
                <span className="field-error small" role="alert">
                  {targetError ?? problem?.text}
                </span>
              )}
              <div className="row">
                <button disabled={busy || confirm !== null} onClick={() => setConfirm("promote")}>
                  Promote…
                </button>
                <button className="danger" disabled={busy || confirm !== null} onClick={() => setConfirm("abort")}>
                  Abort…
                </button>
              </div>
              {confirm === "promote" && (
                <div className="confirm" role="group" aria-label="Confirm promotion">
                  <p className="small" style={{ marginTop: 0 }}>
                    Promote <span className="mono">{shortHash(r.candidateRev, 12)}</span>: it becomes the active revision for every chat (conversations under way on the
                    stable revision finish there, within the affinity window).
                  </p>
                  <div className="row">
                    <button
                      disabled={busy}
                      onClick={() =>
                        void run(() => client.mutation(PromoteRolloutMutation, { botId, why: "promoted from the console" }).toPromise()).then(() => setConfirm(null))
                      }
                    >
                      Yes, promote
                    </button>
                    <button className="secondary" disabled={busy} onClick={() => setConfirm(null)}>
                      Cancel
                    </button>
                  </div>
                </div>
              )}
              {confirm === "abort" && (
                <form
                  className="confirm stack"
                  aria-label="Confirm abort"
                  onSubmit={(e) => {
                    e.preventDefault();
                    void run(() => client.mutation(AbortRolloutMutation, { botId, why: reason.trim() }).toPromise()).then((ok) => {
                      if (ok) {
                        setConfirm(null);
                        setReason("");
                      }
                    });
                  }}
                >
                  <span className="small">Every chat goes back to the stable revision and the rollout ends; no conversation stays on the candidate.</span>
                  <label>
                    Reason for aborting
                    <input value={reason} maxLength={1000} onChange={(e) => setReason(e.target.value)} placeholder="errors in the new checkout flow" />
                  </label>
                  <div className="row">
                    <button type="submit" className="danger" disabled={busy || !reason.trim()}>
                      Yes, abort
                    </button>
                    <button type="button" className="secondary" disabled={busy} onClick={() => setConfirm(null)}>
                      Cancel
                    </button>
                  </div>
                </form>
              )}
              {problem && problem.field !== "percent" && problem.field !== "chatId" && <Notice kind="error">{problem.text}</Notice>}
              <ErrorBox error={error} />
            </div>
          </>
        ) : (
          <p className="muted small">Owners advance, pause, promote or abort rollouts and pin chats; you can follow them here.</p>
        )}

        <h3 style={{ marginTop: "1rem" }}>Pinned chats</h3>
        <p className="small muted" style={{ marginTop: 0 }}>
          Pinned chats are served by the candidate whatever its share (e.g. your own Telegram account, to try it first).
        </p>
        {r.pinnedChats.length === 0 ? (
          <p className="muted small">None.</p>
        ) : (
          <ul className="pins" aria-label="Pinned chats">
            {r.pinnedChats.map((c) => (
              <li key={c}>
                <span>{c}</span>
                {owner && (
                  <button
                    className="link small danger"
                    disabled={busy}
                    aria-label={`Unpin ${c}`}
                    onClick={() => void run(() => client.mutation(UnpinChatMutation, { botId, chatId: c }).toPromise())}
                  >
                    unpin
                  </button>
                )}
              </li>
            ))}
          </ul>
        )}
        {owner && (
          <>
            <form
              className="inline-form"
              noValidate
              onSubmit={(e) => {
                e.preventDefault();
                const id = chatId(pin);
                if (id === null) {
                  setPinError("a Telegram chat id: a non-zero whole number (groups are negative)");
                  return;
                }
                setPinError(null);
                void run(() => client.mutation(PinChatMutation, { botId, chatId: id }).toPromise()).then((ok) => ok && setPin(""));
              }}
            >
              <input
                aria-label="Chat id to pin"
                inputMode="numeric"
                value={pin}
                placeholder="chat id, e.g. 123456789"
                onChange={(e) => {
                  setPin(e.target.value);
                  setPinError(null);
                }}
                aria-invalid={!!pinError || problem?.field === "chatId" || undefined}
              />
              <button type="submit" className="secondary" disabled={busy || !pin.trim()}>
                Pin
              </button>
            </form>
            {(pinError || problem?.field === "chatId") && (
              <span className="field-error small" role="alert">
                {pinError ?? problem?.text}
              </span>
            )}
          </>
        )}
      </div>
    </div>
  );
}

/** When the next automatic step is due: "in 4 min 10 s", or "now" once the dwell time has passed. */
function dueIn(stepStartedAt: string, dwellSec: number, now: number = Date.now()): string {
  const left = Math.round((new Date(stepStartedAt).getTime() + dwellSec * 1000 - now) / 1000);
  return Number.isFinite(left) && left > 0 ? `in ${seconds(left)}` : "now (when the candidate has enough updates)";
}

/** Stable and candidate side by side; a candidate rate above the stable one's + margin is red. */
function ShareTable({ rollout: r }: { rollout: Rollout }) {
  const cmp = compareShares(r);
  const worse = `above the stable revision's by more than the ${marginPct(r.errorMargin)}-point margin`;
  return (
    <div className="table-wrap" style={{ marginTop: "0.6rem" }}>
      <table aria-label="Stable and candidate">
        <thead>
          <tr>
            <th />
            <th>
              Stable <span className="mono">{shortHash(r.stableRev, 8)}</span>
            </th>
            <th>
              Candidate <span className="mono">{shortHash(r.candidateRev, 8)}</span>
            </th>
          </tr>
        </thead>
        <tbody>
          <tr>
            <th scope="row">Chats</th>
            <td>{r.stable.chats}</td>
            <td>{r.candidate.chats}</td>
          </tr>
          <tr>
            <th scope="row">Updates</th>
            <td>{r.stable.updates}</td>
            <td>{r.candidate.updates}</td>
          </tr>
          <tr>
            <th scope="row">Error rate</th>
            <td>
              {rate(r.stable.errorRate)} <span className="muted small">({r.stable.errors})</span>
            </td>
            <td className={cmp.errorRate ? "worse" : ""} title={cmp.errorRate ? worse : undefined}>
              {rate(r.candidate.errorRate)} <span className="muted small">({r.candidate.errors})</span>
            </td>
          </tr>
          <tr>
            <th scope="row">Dead-letter rate</th>
            <td>
              {rate(r.stable.deadLetterRate)} <span className="muted small">({r.stable.deadLettered})</span>
            </td>
            <td className={cmp.deadLetterRate ? "worse" : ""} title={cmp.deadLetterRate ? worse : undefined}>
              {rate(r.candidate.deadLetterRate)} <span className="muted small">({r.candidate.deadLettered})</span>
            </td>
          </tr>
        </tbody>
      </table>
    </div>
  );
}

// --- conversation affinity -------------------------------------------------------------------------------------------

function AffinityControl({ botId }: { botId: string }) {
  const [value, setValue] = useState("");
  const [message, setMessage] = useState<{ kind: "ok" | "error"; text: string } | null>(null);
  const [result, setAffinity] = useMutation(SetConversationAffinityMutation);
  return (
    <details className="panel">
      <summary>Conversation affinity</summary>
      <p className="small" style={{ marginTop: 0 }}>
        How long a chat in the middle of a flow stays on the revision that started it after a flip or a rollout step (0: never; at most a week).
      </p>
      <form
        className="inline-form"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          const n = wholeNumber(value, 0, 604_800);
          if (n === null) {
            setMessage({ kind: "error", text: "whole seconds from 0 to 604800" });
            return;
          }
          void setAffinity({ botId, maxAgeSec: n }).then((r) => {
            const res = r.data?.setConversationAffinity;
            if (res?.__typename === "AffinitySet") setMessage({ kind: "ok", text: `Conversations now stay up to ${seconds(res.maxAgeSec)} on their revision.` });
            else if (res) setMessage({ kind: "error", text: res.message });
          });
        }}
      >
        <input aria-label="Affinity (seconds)" inputMode="numeric" value={value} onChange={(e) => setValue(e.target.value)} placeholder="seconds, e.g. 900" />
        <button type="submit" className="secondary" disabled={result.fetching || !value.trim()}>
          Set
        </button>
      </form>
      {message && <Notice kind={message.kind}>{message.text}</Notice>}
      <ErrorBox error={result.error} />
    </details>
  );
}
