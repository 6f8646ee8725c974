/**
 * The chat simulator: talk to the bot as a Telegram user would, one `simulate` call per
 * message, nothing stored or sent. The target is the draft (the editor's unsaved text when it
 * shares it, else the latest saved spec version, editable here; reference interpreter) or a
 * stored revision (its bot.js in QuickJS). The chat's state, the clock and the fixture's
 * progress live in the browser (lib/simSession.ts); the bubbles and keyboards come from
 * lib/chat.ts.
 */
import { useEffect, useMemo, useRef, useState, type FormEvent } from "react";
import { Link } from "react-router";
import { useClient, useQuery } from "urql";
import { RevisionsQuery, SpecVersionQuery } from "../api/operations";
import { SimulateMutation, SimulatorExamplesQuery } from "../api/simulatorOperations";
import type { SimulateInput } from "../gql/graphql";
import { Empty, ErrorBox, errorText, Json, Loading, Notice } from "../components/ui";
import { fileName, outgoingProblem, toEvent, type ChatMessage, type InlineButton, type Outgoing } from "../lib/chat";
import {
  advanceClock,
  applyTurn,
  clockLabel,
  exampleForSpec,
  fixtureForTurn,
  newSession,
  parseDraft,
  parseFixture,
  requestFailed,
  toTurnResult,
  type Session,
  type Turn,
} from "../lib/simSession";
import { sharedDraft } from "../lib/draftSpec";
import { shortHash } from "../lib/format";
import { useBot } from "./BotLayout";
import "./SimulatorPage.css";

const DRAFT = "draft";

interface Draft {
  text: string;
  /** where the text came from: "the editor's unsaved text", "v3", or "nothing saved yet" */
  source: string;
}

export function SimulatorPage() {
  const { bot } = useBot();
  const client = useClient();
  const [revisionsResult] = useQuery({ query: RevisionsQuery, variables: { botId: bot.id } });
  const [latestResult] = useQuery({ query: SpecVersionQuery, variables: { botId: bot.id, version: null } });
  const [examplesResult] = useQuery({ query: SimulatorExamplesQuery });
  const revisions = useMemo(() => revisionsResult.data?.revisions.edges.map((e) => e.node) ?? [], [revisionsResult.data]);
  const examples = useMemo(() => examplesResult.data?.examples ?? [], [examplesResult.data]);
  const latest = latestResult.data?.specVersion ?? null;

  const [target, setTarget] = useState<string | null>(null);
  const [draft, setDraft] = useState<Draft | null>(null);
  const [fixtureText, setFixtureText] = useState<string | null>(null);
  const [fixtureFrom, setFixtureFrom] = useState<string>("");
  const [session, setSession] = useState<Session>(() => newSession(Date.now()));
  const [userName, setUserName] = useState("Tester");
  const [language, setLanguage] = useState("en");
  const [sending, setSending] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);

  // the draft: the editor's unsaved text if it shared one, else the latest saved version
  useEffect(() => {
    if (draft !== null || latestResult.fetching || !latestResult.data) return;
    const shared = sharedDraft(bot.id);
    if (shared !== null) setDraft({ text: shared, source: "the spec editor's unsaved text" });
    else if (latest) setDraft({ text: JSON.stringify(latest.spec, null, 2), source: `saved version v${latest.version}` });
    else setDraft({ text: "", source: "nothing saved yet" });
  }, [draft, latest, latestResult.fetching, latestResult.data, bot.id]);

  // the default target: the draft when there is one, else the revision that serves
  useEffect(() => {
    if (target !== null || draft === null || !revisionsResult.data) return;
    setTarget(draft.text.trim() !== "" || !bot.activeRevHash ? DRAFT : bot.activeRevHash);
  }, [target, draft, revisionsResult.data, bot.activeRevHash]);

  // the fixture: the example's, when the bot's spec came from one (same meta.name)
  const draftSpec = useMemo(() => (draft ? parseDraft(draft.text) : null), [draft]);
  const matched = useMemo(() => (draftSpec?.ok ? exampleForSpec(draftSpec.value, examples) : null), [draftSpec, examples]);
  useEffect(() => {
    if (fixtureText !== null || !examplesResult.data || draft === null) return;
    if (matched?.apiFixture != null && Object.keys(matched.apiFixture as object).length > 0) {
      setFixtureText(JSON.stringify(matched.apiFixture, null, 2));
      setFixtureFrom(`example “${matched.name}” (meta.name “${matched.title}”)`);
    } else setFixtureText("");
  }, [fixtureText, examplesResult.data, draft, matched]);

  const fixture = useMemo(() => parseFixture(fixtureText ?? ""), [fixtureText]);

  if ((latestResult.fetching && !latestResult.data) || (revisionsResult.fetching && !revisionsResult.data) || draft === null || target === null) {
    return (
      <>
        <ErrorBox error={latestResult.error ?? revisionsResult.error} />
        <Loading what="Loading the bot's spec and revisions" />
      </>
    );
  }

  const revision = target === DRAFT ? null : (revisions.find((r) => r.revHash === target) ?? null);
  const targetLabel = target === DRAFT ? "draft" : `revision ${shortHash(target, 12)}`;

  async function reloadSaved() {
    const r = await client.query(SpecVersionQuery, { botId: bot.id, version: null }, { requestPolicy: "network-only" }).toPromise();
    const saved = r.data?.specVersion;
    if (r.error) setProblem(errorText(r.error));
    else if (saved) setDraft({ text: JSON.stringify(saved.spec, null, 2), source: `saved version v${saved.version}` });
  }

  function reset() {
    setProblem(null);
    setSession(newSession(Date.now()));
  }

  async function send(sent: Outgoing) {
    setProblem(null);
    const refused = outgoingProblem(sent);
    if (refused) return setProblem(refused);
    if (!fixture.ok) return setProblem(fixture.error);
    const input: SimulateInput = {
      event: { ...toEvent(sent), userName: userName.trim() || "Tester", language: language.trim() || "en" },
      state: session.state,
      now: session.now,
      apiFixture: fixture.value ? fixtureForTurn(fixture.value, session.fixtureUse) : null,
    };
    if (target === DRAFT) {
      if ((draft?.text ?? "").trim() === "") return setProblem("There is no draft yet: write one in the spec editor (or below), or pick a revision.");
      if (!draftSpec || !draftSpec.ok) return setProblem(draftSpec?.error ?? "The draft is not JSON.");
      input.spec = draftSpec.value;
    } else input.revHash = target;
    setSending(true);
    try {
      const r = await client.mutation(SimulateMutation, { botId: bot.id, input }).toPromise();
      const result = r.error ? requestFailed(errorText(r.error)) : r.data ? toTurnResult(r.data.simulate) : requestFailed("The API gave no answer.");
      setSession((s) => applyTurn(s, sent, targetLabel, result, fixture.value));
    } finally {
      setSending(false);
    }
  }

  const last = session.turns.at(-1);
  const lastFailure = last && !last.result.ok ? last : null;

  return (
    <div className="sim">
      <div className="toolbar">
        <label className="sim-target">
          Run
          <select value={target} onChange={(e) => setTarget(e.target.value)} aria-label="What to run">
            <option value={DRAFT}>The draft ({draft.source}) — reference interpreter</option>
            {revisions.map((r) => (
              <option key={r.revHash} value={r.revHash}>
                Revision {shortHash(r.revHash, 12)}
                {r.specVersion != null ? ` (v${r.specVersion})` : ""}
                {r.revHash === bot.activeRevHash ? " · active" : ""} — QuickJS
              </option>
            ))}
          </select>
        </label>
        <label className="sim-small">
          Name
          <input value={userName} maxLength={64} onChange={(e) => setUserName(e.target.value)} aria-label="The user's first name" />
        </label>
        <label className="sim-small">
          Language
          <input value={language} maxLength={35} onChange={(e) => setLanguage(e.target.value)} aria-label="The user's language" />
        </label>
        <span className="grow" />
        <button className="secondary" onClick={reset} disabled={sending} title="Forget the chat: a new chat, state null, the clock back to now">
          Reset
        </button>
      </div>
      {revision === null && target !== DRAFT && <Notice kind="warn">That revision is not in the list of this bot's revisions.</Notice>}
      {problem && <Notice kind="error">{problem}</Notice>}
      {lastFailure && <Failure turn={lastFailure} />}
      <div className="sim-layout">
        <Chat session={session} sending={sending} onSend={(s) => void send(s)} onShowKeyboard={() => setSession((s) => (s.keyboard ? { ...s, keyboard: { ...s.keyboard, hidden: !s.keyboard.hidden } } : s))} />
        <div className="sim-side">
          <section className="panel">
            <h3 className="row spread">
              State
              <span className="muted small mono" title="The next message's time; +1 s per message">
                {clockLabel(session.now)}
              </span>
            </h3>
            <div className="row small">
              <span className="muted">Let time pass:</span>
              {[
                ["+1 min", 60_000],
                ["+1 h", 3_600_000],
                ["+1 day", 86_400_000],
              ].map(([label, ms]) => (
                <button key={label} className="secondary" onClick={() => setSession((s) => advanceClock(s, Number(ms)))}>
                  {label}
                </button>
              ))}
            </div>
            {session.state == null ? <p className="muted small">null — a new chat (nothing sent yet, or reset).</p> : <Json value={session.state} />}
          </section>
          <section>
            <h3>Turns</h3>
            {session.turns.length === 0 ? (
              <Empty>Send /start (or any text) to begin.</Empty>
            ) : (
              [...session.turns].reverse().map((t) => <TurnView key={t.n} turn={t} open={t.n === session.turns.length} />)
            )}
          </section>
          {target === DRAFT && (
            <details className="panel">
              <summary>Draft spec ({draft.source})</summary>
              <p className="muted small">
                Runs as it is here, unsaved. Edit it, or <Link to="../spec">open the spec editor</Link>.{" "}
                {latest && (
                  <button className="link" onClick={() => void reloadSaved()}>
                    Reload the latest saved version
                  </button>
                )}
              </p>
              <textarea className="sim-code" aria-label="Draft spec" spellCheck={false} value={draft.text} onChange={(e) => setDraft({ text: e.target.value, source: "edited here" })} />
              {draftSpec && !draftSpec.ok && <Notice kind="error">{draftSpec.error}</Notice>}
            </details>
          )}
          <details className="panel" open={fixtureText !== null && fixtureText !== ""}>
            <summary>API fixture{fixture.ok && fixture.value ? ` (${Object.keys(fixture.value).length} keys)` : " (none)"}</summary>
            <p className="muted small">
              Scripted answers to apiCalls, <code>{'{"METHOD URL": result or [results…]}'}</code>; a list answers in turn over the chat. Without one every apiCall fails as a network error:
              nothing is ever sent.
              {fixtureFrom && <> Prefilled from the {fixtureFrom}.</>}
            </p>
            <div className="row small">
              <select
                aria-label="Load an example's fixture"
                value=""
                onChange={(e) => {
                  const ex = examples.find((x) => x.name === e.target.value);
                  if (!ex) return;
                  setFixtureText(ex.apiFixture == null ? "" : JSON.stringify(ex.apiFixture, null, 2));
                  setFixtureFrom(`example “${ex.name}”`);
                }}
              >
                <option value="">Load an example's fixture…</option>
                {examples.map((x) => (
                  <option key={x.name} value={x.name}>
                    {x.name} — {x.title}
                  </option>
                ))}
              </select>
              {Object.keys(session.fixtureUse).length > 0 && <span className="muted">used so far: {Object.entries(session.fixtureUse).map(([k, n]) => `${k} ×${n}`).join(", ")}</span>}
            </div>
            <textarea
              className="sim-code"
              aria-label="API fixture"
              spellCheck={false}
              placeholder='{"GET https://api.example.com/*": {"status": 200, "body": {}}}'
              value={fixtureText ?? ""}
              onChange={(e) => {
                setFixtureText(e.target.value);
                setFixtureFrom("");
              }}
            />
            {!fixture.ok && <Notice kind="error">{fixture.error}</Notice>}
          </details>
        </div>
      </div>
    </div>
  );
}

function Chat({ session, sending, onSend, onShowKeyboard }: { session: Session; sending: boolean; onSend(s: Outgoing): void; onShowKeyboard(): void }) {
  const [text, setText] = useState("");
  const end = useRef<HTMLDivElement>(null);
  useEffect(() => {
    end.current?.scrollIntoView?.({ block: "end" });
  }, [session.messages.length, sending]);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (sending || text.trim() === "") return;
    onSend({ kind: "text", text });
    setText("");
  };
  const press = (b: InlineButton) => {
    if (b.data !== null && !sending) onSend({ kind: "callback", data: b.data, label: b.text });
  };
  const kb = session.keyboard;
  return (
    <div className="sim-chat" aria-label="Chat">
      <div className="sim-messages" role="log" aria-live="polite">
        {session.messages.length === 0 && <p className="muted small sim-hint">A new chat. Say /start.</p>}
        {session.messages.map((m) => (
          <Bubble key={m.id} m={m} onPress={press} disabled={sending} />
        ))}
        {sending && <div className="sim-bubble bot sim-typing">…</div>}
        <div ref={end} />
      </div>
      {kb && !kb.hidden && (
        <div className="sim-keyboard" aria-label="Reply keyboard">
          {kb.rows.map((row, i) => (
            <div key={i} className="sim-kb-row">
              {row.map((label, j) => (
                <button key={j} className="secondary" disabled={sending} onClick={() => onSend({ kind: "text", text: label, viaKeyboard: true })}>
                  {label}
                </button>
              ))}
            </div>
          ))}
        </div>
      )}
      <form className="sim-input" onSubmit={submit}>
        {kb && (
          <button type="button" className="secondary" onClick={onShowKeyboard} title={kb.hidden ? "Show the bot's keyboard" : "Hide the bot's keyboard"} aria-label="Toggle the reply keyboard">
            ⌨
          </button>
        )}
        <input value={text} onChange={(e) => setText(e.target.value)} placeholder="Message" aria-label="Message" autoFocus />
        <button type="submit" disabled={sending || text.trim() === ""}>
          Send
        </button>
      </form>
    </div>
  );
}

function Buttons({ rows, onPress, disabled }: { rows: InlineButton[][]; onPress(b: InlineButton): void; disabled: boolean }) {
  if (rows.length === 0) return null;
  return (
    <div className="sim-inline">
      {rows.map((row, i) => (
        <div key={i} className="sim-kb-row">
          {row.map((b, j) =>
            b.url !== null ? (
              <a key={j} className="sim-inline-btn" href={b.url} target="_blank" rel="noreferrer noopener" title={b.url}>
                {b.text} ↗
              </a>
            ) : (
              <button key={j} className="sim-inline-btn" disabled={disabled} onClick={() => onPress(b)} title={`callback data: ${b.data ?? ""}`}>
                {b.text}
              </button>
            ),
          )}
        </div>
      ))}
    </div>
  );
}

function Bubble({ m, onPress, disabled }: { m: ChatMessage; onPress(b: InlineButton): void; disabled: boolean }) {
  switch (m.kind) {
    case "text":
      return m.from === "user" ? (
        <div className="sim-bubble user">{m.text}</div>
      ) : (
        <div className="sim-bot">
          <div className="sim-bubble bot">{m.text || <span className="muted">(empty)</span>}</div>
          <Buttons rows={m.buttons} onPress={onPress} disabled={disabled} />
        </div>
      );
    case "press":
      return (
        <div className="sim-bubble user press" title={`callback data: ${m.data}`}>
          ▸ {m.label || m.data}
        </div>
      );
    case "photo":
    case "document":
      return (
        <div className="sim-bot">
          <div className="sim-bubble bot media">
            <div className="sim-media" title={m.source}>
              <span aria-hidden>{m.kind === "photo" ? "🖼" : "📄"}</span> {m.kind === "photo" ? "Photo" : fileName(m.source)}
              <div className="mono small muted">{m.source}</div>
            </div>
            {m.caption && <div>{m.caption}</div>}
          </div>
          <Buttons rows={m.buttons} onPress={onPress} disabled={disabled} />
        </div>
      );
    case "toast":
      return (
        <div className="sim-toast" role="status">
          {m.text}
        </div>
      );
    case "other":
      return (
        <div className="sim-system mono small" title={JSON.stringify(m.params)}>
          {m.method}
        </div>
      );
    case "error":
      return <div className="sim-system error">{m.text}</div>;
  }
}

function sentLabel(t: Turn): string {
  return t.sent.kind === "text" ? `“${t.sent.text}”` : `button “${t.sent.label}” (${t.sent.data})`;
}

function Failure({ turn }: { turn: Turn }) {
  const r = turn.result;
  if (r.ok) return null;
  const title: Record<string, string> = {
    SpecInvalid: "The draft does not validate",
    SimulationFailed: "The bot failed on this update",
    InvalidInput: "The API refused the input",
    NotFound: "Not found",
    Error: "The request failed",
  };
  return (
    <div className="notice error" role="alert">
      <b>{title[r.kind] ?? r.kind}</b> (turn {turn.n}, {sentLabel(turn)}): {r.message}
      {r.field && (
        <>
          {" "}
          — field <code>{r.field}</code>
        </>
      )}
      {r.problems.length > 0 && <Problems problems={r.problems} />}
    </div>
  );
}

function Problems({ problems }: { problems: { pointer: string; code: string; message: string; hint?: string | null }[] }) {
  return (
    <ul className="problems" aria-label="Problems">
      {problems.map((p, i) => (
        <li key={i}>
          <code>{p.pointer || "/"}</code> <span className="muted small">{p.code}</span> {p.message}
          {p.hint && <div className="muted small">Hint: {p.hint}</div>}
        </li>
      ))}
      <li>
        <Link to="../spec">Fix it in the spec editor</Link>
      </li>
    </ul>
  );
}

function TurnView({ turn, open }: { turn: Turn; open: boolean }) {
  const r = turn.result;
  return (
    <details className="panel sim-turn" open={open}>
      <summary>
        <b>#{turn.n}</b> {sentLabel(turn)}{" "}
        <span className="muted small">
          · {turn.target}
          {r.ok ? ` · ${r.engine.toLowerCase()} · ${r.actions.length} action${r.actions.length === 1 ? "" : "s"}, ${r.events.length} event${r.events.length === 1 ? "" : "s"}` : ""} · {clockLabel(turn.at)}
        </span>{" "}
        {!r.ok && <span className="badge s-failed">{r.kind}</span>}
      </summary>
      {!r.ok ? (
        <>
          <p className="small">{r.message}</p>
          {r.problems.length > 0 && <Problems problems={r.problems} />}
        </>
      ) : (
        <>
          <h4>Telemetry</h4>
          {r.events.length === 0 ? (
            <p className="muted small">none</p>
          ) : (
            <ul className="sim-events">
              {r.events.map((e, i) => (
                <li key={i}>
                  <span className="mono">{e.type}</span> <span className="muted mono small">{compact(e.data, e.type)}</span>
                </li>
              ))}
            </ul>
          )}
          <h4>apiCall requests</h4>
          {r.requests.length === 0 ? (
            <p className="muted small">none</p>
          ) : (
            r.requests.map((q, i) => (
              <details key={i}>
                <summary className="mono small">
                  {q.method} {q.url}
                </summary>
                <Json value={q.request} />
              </details>
            ))
          )}
          <details>
            <summary className="small">Bot API calls ({r.actions.length})</summary>
            <Json value={r.actions} />
          </details>
          <details>
            <summary className="small">State after</summary>
            <Json value={r.state} />
          </details>
          <details>
            <summary className="small">State before</summary>
            <Json value={turn.stateBefore} />
          </details>
          <details>
            <summary className="small">Telegram update</summary>
            <Json value={r.update} />
          </details>
        </>
      )}
    </details>
  );
}

/** An event's fields but its type, on one line. */
function compact(data: unknown, type: string): string {
  if (typeof data !== "object" || data === null) return JSON.stringify(data);
  const rest = Object.fromEntries(Object.entries(data as Record<string, unknown>).filter(([k, v]) => !(k === "type" && v === type)));
  return Object.keys(rest).length === 0 ? "" : JSON.stringify(rest);
}
