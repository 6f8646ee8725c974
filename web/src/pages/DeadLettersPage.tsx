/**
 * A bot's dead letters (docs/dlq.md): the inbound queue (updates the executors gave up on) and
 * the outbound one (Bot API actions Telegram refused), oldest first, with replay and drop of
 * one entry or all, each confirmed first. Editors and owners only: payloads hold user data.
 */
import { Fragment, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { useMutation, useQuery } from "urql";
import { DeadLettersQuery, DropDeadLettersMutation, ReplayDeadLettersMutation } from "../api/deadLetterOperations";
import type { ReplayDeadLettersMutation as ReplayResult } from "../gql/graphql";
import { Empty, ErrorBox, Json, Loading, Notice } from "../components/ui";
import { confirmText, dropSummary, letterRow, replaySummary, STATUS_TEXT, statusClass, type LetterRow, type Pending, type Queue } from "../lib/deadLetters";
import { ago, when } from "../lib/format";
import { can } from "../lib/roles";
import { useBot } from "./BotLayout";
import "./DeadLettersPage.css";

const PAGE = 50;

type Replayed = Extract<ReplayResult["replayDeadLetters"], { __typename: "DeadLettersReplayed" }>;

type Outcome = { kind: "replayed"; result: Replayed } | { kind: "dropped"; dropped: number } | { kind: "problem"; message: string };

export function DeadLettersPage() {
  const { bot, role } = useBot();
  if (!can(role, "deadLetters")) {
    return <Notice kind="info">Dead letters hold your users' messages, so only the project's editors and owners see them.</Notice>;
  }
  return <DeadLetters botId={bot.id} />;
}

function DeadLetters({ botId }: { botId: string }) {
  const [params, setParams] = useSearchParams();
  const queue: Queue = params.get("queue") === "out" ? "OUTBOUND" : "INBOUND";
  const offset = Math.max(0, Math.floor(Number(params.get("offset") ?? 0)) || 0);
  const [{ data, fetching, error }, refetch] = useQuery({ query: DeadLettersQuery, variables: { botId, queue, first: PAGE, offset } });
  const [replayState, replay] = useMutation(ReplayDeadLettersMutation);
  const [dropState, drop] = useMutation(DropDeadLettersMutation);
  const [open, setOpen] = useState<string | null>(null);
  const [pending, setPending] = useState<Pending | null>(null);
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const rows = (data?.deadLetters ?? []).map(letterRow);
  const more = rows.length === PAGE;
  const busy = replayState.fetching || dropState.fetching;

  const forget = () => {
    setPending(null);
    setOpen(null);
    setOutcome(null);
  };
  const page = (o: number) => {
    setPending(null);
    setOpen(null);
    setParams(o > 0 ? { queue: queue === "OUTBOUND" ? "out" : "in", offset: String(o) } : { queue: queue === "OUTBOUND" ? "out" : "in" });
  };

  async function confirm(p: Pending) {
    setOutcome(null);
    if (p.op === "replay") {
      const r = await replay({ botId, queue: p.queue, index: p.index });
      const res = r.data?.replayDeadLetters;
      if (res?.__typename === "DeadLettersReplayed") setOutcome({ kind: "replayed", result: res });
      else if (res) setOutcome({ kind: "problem", message: res.message });
    } else {
      const r = await drop({ botId, queue: p.queue, index: p.index });
      const res = r.data?.dropDeadLetters;
      if (res?.__typename === "DeadLettersDropped") setOutcome({ kind: "dropped", dropped: res.dropped });
      else if (res) setOutcome({ kind: "problem", message: res.message });
    }
    setPending(null);
    setOpen(null);
    // indexes shift once entries go: always list the queue again
    refetch({ requestPolicy: "network-only" });
  }

  const ask = (p: Pending) => {
    setOutcome(null);
    setPending(p);
  };

  const confirmBar = (p: Pending, row: LetterRow | null) => (
    <div className="notice warn" role="alertdialog" aria-label="Confirm">
      {confirmText(p, row, rows.length, more)}
      <div className="row" style={{ marginTop: "0.4rem" }}>
        <button className={p.op === "drop" ? "danger" : ""} disabled={busy} onClick={() => void confirm(p)}>
          {busy ? "Working…" : p.op === "drop" ? "Drop" : "Replay"}
        </button>
        <button className="secondary" disabled={busy} onClick={() => setPending(null)}>
          Cancel
        </button>
      </div>
    </div>
  );

  return (
    <>
      <nav className="tabs" aria-label="Queue">
        <Link to="?queue=in" className={queue === "INBOUND" ? "active" : ""} onClick={forget}>
          Inbound <span className="muted small">updates</span>
        </Link>
        <Link to="?queue=out" className={queue === "OUTBOUND" ? "active" : ""} onClick={forget}>
          Outbound <span className="muted small">Bot API actions</span>
        </Link>
      </nav>
      <p className="muted small">
        {queue === "INBOUND"
          ? "Updates the executors gave up on after their deliveries. A replay puts one back at the tail of its chat's queue."
          : "Actions Telegram did not accept. A replay sends the action again with the bot's token; one refused again stays here."}{" "}
        Oldest first; <span className="mono">#</span> is the position in the queue.
      </p>
      <div className="toolbar">
        <button className="secondary" onClick={() => refetch({ requestPolicy: "network-only" })} disabled={fetching}>
          {fetching ? "Loading…" : "Refresh"}
        </button>
        <span className="grow" />
        <button disabled={busy || rows.length === 0} onClick={() => ask({ op: "replay", queue, index: null })}>
          Replay all
        </button>
        <button className="danger" disabled={busy || rows.length === 0} onClick={() => ask({ op: "drop", queue, index: null })}>
          Drop all
        </button>
      </div>
      {pending && pending.index === null && confirmBar(pending, null)}
      <OutcomeView outcome={outcome} />
      <ErrorBox error={replayState.error ?? dropState.error} />
      <ErrorBox error={error} />
      {fetching && !data ? (
        <Loading />
      ) : rows.length === 0 ? (
        <Empty>{offset > 0 ? "Nothing past this point." : `The ${queue === "INBOUND" ? "inbound" : "outbound"} dead-letter queue is empty.`}</Empty>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>#</th>
                <th>Dead-lettered</th>
                <th>Chat</th>
                <th>{queue === "INBOUND" ? "Update" : "Method"}</th>
                <th>{queue === "INBOUND" ? "Reason" : "Error"}</th>
                <th title={queue === "INBOUND" ? "How many times an executor took it" : "How many times it was sent"}>{queue === "INBOUND" ? "Deliveries" : "Attempts"}</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => {
                const isOpen = open === r.key;
                const asking = pending !== null && pending.index === r.index;
                return (
                  <Fragment key={r.key}>
                    <tr className={isOpen || asking ? "selected" : ""}>
                      <td className="mono">{r.index}</td>
                      <td className="small">
                        {when(r.at)}
                        <div className="muted">{ago(r.at)}</div>
                      </td>
                      <td className="mono small">{r.chatId}</td>
                      <td className="small">
                        <span className="mono">{r.what}</span>
                        {r.summary && <div className="muted">{r.summary}</div>}
                      </td>
                      <td className="small danger-text">{r.problem}</td>
                      <td>{r.tries}</td>
                      <td className="small">
                        <div className="row">
                          <button className="link small" onClick={() => setOpen(isOpen ? null : r.key)} aria-expanded={isOpen}>
                            {isOpen ? "hide" : queue === "INBOUND" ? "update" : "action"}
                          </button>
                          <button className="link small" disabled={busy} onClick={() => ask({ op: "replay", queue, index: r.index })}>
                            replay
                          </button>
                          <button className="link small danger" disabled={busy} onClick={() => ask({ op: "drop", queue, index: r.index })}>
                            drop
                          </button>
                        </div>
                      </td>
                    </tr>
                    {asking && (
                      <tr>
                        <td colSpan={7}>{confirmBar(pending, r)}</td>
                      </tr>
                    )}
                    {isOpen && (
                      <tr>
                        <td colSpan={7}>
                          {typeof r.detail === "string" ? (
                            <>
                              <p className="muted small">Not JSON; as text:</p>
                              <pre className="json">{r.detail}</pre>
                            </>
                          ) : (
                            <Json value={r.detail} />
                          )}
                        </td>
                      </tr>
                    )}
                  </Fragment>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {(offset > 0 || more) && (
        <div className="row" style={{ marginTop: "0.5rem" }}>
          <button className="secondary" disabled={offset === 0} onClick={() => page(Math.max(0, offset - PAGE))}>
            ← Previous {PAGE}
          </button>
          <span className="muted small">
            entries {offset}–{offset + rows.length - 1}
          </span>
          <button className="secondary" disabled={!more} onClick={() => page(offset + PAGE)}>
            Next {PAGE} →
          </button>
        </div>
      )}
    </>
  );
}

function OutcomeView({ outcome }: { outcome: Outcome | null }) {
  if (!outcome) return null;
  if (outcome.kind === "problem") return <Notice kind="error">{outcome.message}</Notice>;
  if (outcome.kind === "dropped") return <Notice kind="ok">{dropSummary(outcome.dropped)}</Notice>;
  const r = outcome.result;
  return (
    <div className={`notice ${r.kept > 0 ? "warn" : "ok"}`} role="status">
      {replaySummary(r)}
      {r.outcomes.length > 0 && (
        <ul className="small" style={{ margin: "0.3rem 0 0", paddingLeft: "1.2rem", color: "var(--fg)" }}>
          {r.outcomes.map((o) => (
            <li key={`${o.index}:${o.chatId}`}>
              <span className="mono">#{o.index}</span> chat <span className="mono">{o.chatId}</span>: <span className={`badge ${statusClass(o.status)}`}>{o.status.toLowerCase().replace("_", " ")}</span>{" "}
              {STATUS_TEXT[o.status]}
              {o.error && <span className="danger-text"> — {o.error}</span>}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
