/**
 * The spec editor: the latest spec version (or another one as a starting point), edited with
 * schema completion and errors, the flow graph beside it, saved with `expectedVersion`.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { useClient, useMutation, useQuery } from "urql";
import { parse as parseJsonc, type ParseError } from "jsonc-parser";
import { ExamplesQuery, SaveSpecMutation, SpecVersionQuery, ValidateSpecQuery } from "../api/operations";
import { SpecEditor, type ServerProblem, type SpecEditorHandle } from "../components/SpecEditor";
import { FlowGraph } from "../components/FlowGraph";
import { DiffView } from "../components/DiffView";
import { LeaveConfirm, useLeaveGuard } from "../components/LeaveGuard";
import { ErrorBox, Loading, Notice } from "../components/ui";
import { formatSpec, starterSpec } from "../lib/specFormat";
import { nodeForPointer, specToGraph, type SpecGraph } from "../lib/specGraph";
import { pointerAt, pointerRange } from "../lib/pointer";
import { can } from "../lib/roles";
import { shareDraft } from "../lib/draftSpec";
import { useBot } from "./BotLayout";

interface Loaded {
  text: string;
  /** the version an edit is based on (expectedVersion); 0 before the first save */
  baseVersion: number;
  /** the version whose text was loaded (differs from baseVersion when editing from an older one) */
  fromVersion: number;
}

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

export function SpecPage() {
  const { bot, role, refetchBot } = useBot();
  const client = useClient();
  const [params, setParams] = useSearchParams();
  const from = params.get("from");
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);

  const load = useCallback(
    async (fromVersion: number | null) => {
      setLoadError(null);
      const latest = await client.query(SpecVersionQuery, { botId: bot.id, version: null }, { requestPolicy: "network-only" }).toPromise();
      if (latest.error) return setLoadError(latest.error.message);
      const latestVersion = latest.data?.specVersion?.version ?? 0;
      let spec = latest.data?.specVersion?.spec;
      let shown = latestVersion;
      if (fromVersion !== null && fromVersion !== latestVersion) {
        const old = await client.query(SpecVersionQuery, { botId: bot.id, version: fromVersion }, { requestPolicy: "network-only" }).toPromise();
        if (old.data?.specVersion) {
          spec = old.data.specVersion.spec;
          shown = fromVersion;
        }
      }
      const text = spec === undefined ? formatSpec(starterSpec(bot.id, bot.name)) : formatSpec(spec);
      setLoaded({ text, baseVersion: latestVersion, fromVersion: shown });
    },
    [client, bot.id, bot.name],
  );

  useEffect(() => {
    void load(from === null ? null : Number(from));
  }, [load, from]);

  if (loadError) return <Notice kind="error">{loadError}</Notice>;
  if (!loaded) return <Loading what="Loading the spec" />;
  return (
    <Editor
      key={`${loaded.baseVersion}:${loaded.fromVersion}:${loaded.text.length}`}
      loaded={loaded}
      botId={bot.id}
      readOnly={!can(role, "saveSpec")}
      reload={(v) => {
        if (from !== null) setParams({});
        void load(v ?? null);
      }}
      onSaved={refetchBot}
    />
  );
}

function Editor({ loaded, botId, readOnly, reload, onSaved }: { loaded: Loaded; botId: string; readOnly: boolean; reload(v?: number): void; onSaved(): void }) {
  const editor = useRef<SpecEditorHandle>(null);
  const [text, setText] = useState(loaded.text);
  const [savedText, setSavedText] = useState(loaded.fromVersion === loaded.baseVersion ? loaded.text : "");
  // the text of the version last loaded or saved: edits beyond it are what leaving would lose
  // (unlike `dirty`, a version opened with ?from=N is not an edit until it is changed)
  const [cleanText, setCleanText] = useState(loaded.text);
  const [base, setBase] = useState(loaded.baseVersion);
  // problems from the last save (kept until the text they point at changes) and from live validation
  const [saveProblems, setSaveProblems] = useState<{ problem: ServerProblem; snapshot: string | null }[]>([]);
  const [liveProblems, setLiveProblems] = useState<ServerProblem[]>([]);
  const [notice, setNotice] = useState<{ kind: "ok" | "error" | "warn" | "info"; text: string } | null>(
    loaded.fromVersion !== loaded.baseVersion ? { kind: "info", text: `Editing from v${loaded.fromVersion}; saving makes a new version on top of v${loaded.baseVersion}.` } : null,
  );
  const [conflict, setConflict] = useState<{ current: number; theirs: string | null } | null>(null);
  const [showConflictDiff, setShowConflictDiff] = useState(false);
  const [message, setMessage] = useState("");
  const [cursor, setCursor] = useState(0);
  const [result, save] = useMutation(SaveSpecMutation);
  const client = useClient();
  const dirty = text !== savedText;
  const unsaved = !readOnly && text !== cleanText;
  // the simulator's "draft" target starts from the editor's unsaved text (lib/draftSpec.ts)
  useEffect(() => shareDraft(botId, dirty ? text : null), [botId, dirty, text]);

  // the graph follows the text, debounced; while the JSON is broken it keeps the last good one
  const debounced = useDebounced(text, 400);
  const lastGraph = useRef<SpecGraph>({ groups: [], nodes: [], edges: [] });
  const parsed = useMemo(() => {
    const errors: ParseError[] = [];
    const value: unknown = parseJsonc(debounced, errors, { allowTrailingComma: false, disallowComments: true });
    if (errors.length === 0) lastGraph.current = specToGraph(value);
    return { graph: lastGraph.current, broken: errors.length > 0 };
  }, [debounced]);
  const debouncedCursor = useDebounced(cursor, 150);

  // live validation: the server's validateSpec on the debounced text, when it parses
  const validated = useDebounced(text, 700);
  useEffect(() => {
    let spec: unknown;
    try {
      spec = JSON.parse(validated);
    } catch {
      return; // the JSON linter reports syntax errors
    }
    let current = true;
    void client
      .query(ValidateSpecQuery, { spec }, { requestPolicy: "network-only" })
      .toPromise()
      .then((r) => {
        if (current && r.data) setLiveProblems(r.data.validateSpec);
      });
    return () => {
      current = false;
    };
  }, [validated, client]);

  const problems = useMemo(() => {
    const seen = new Set<string>();
    const out: ServerProblem[] = [];
    const kept = saveProblems.filter(({ problem, snapshot }) => {
      const r = pointerRange(validated, problem.pointer);
      return snapshot === null || (r !== null && validated.slice(r.from, r.to) === snapshot);
    });
    for (const p of [...kept.map((k) => k.problem), ...liveProblems]) {
      const key = `${p.pointer}|${p.code}|${p.message}`;
      if (!seen.has(key)) {
        seen.add(key);
        out.push(p);
      }
    }
    return out.sort((a, b) => (a.pointer < b.pointer ? -1 : a.pointer > b.pointer ? 1 : 0));
  }, [saveProblems, liveProblems, validated]);
  const selected = useMemo(() => nodeForPointer(parsed.graph, pointerAt(debounced, Math.min(debouncedCursor, debounced.length))), [parsed, debounced, debouncedCursor]);

  const doSave = useCallback(
    async (expectedVersion: number) => {
      if (readOnly) return;
      const current = editor.current?.getText() ?? text;
      let spec: unknown;
      try {
        spec = JSON.parse(current);
      } catch (e) {
        setNotice({ kind: "error", text: `Not valid JSON: ${(e as Error).message}` });
        return;
      }
      setNotice(null);
      const r = await save({ botId, spec, expectedVersion, message: message.trim() });
      const res = r.data?.saveSpecVersion;
      if (!res) return;
      switch (res.__typename) {
        case "SpecSaved":
          setBase(res.specVersion.version);
          setSavedText(current);
          setCleanText(current);
          setSaveProblems([]);
          setLiveProblems([]);
          setConflict(null);
          setMessage("");
          setNotice({ kind: "ok", text: res.created ? `Saved as v${res.specVersion.version}.` : `No change: identical to v${res.specVersion.version}.` });
          onSaved();
          break;
        case "SpecInvalid":
          setSaveProblems(
            res.errors.map((problem) => {
              const r = pointerRange(current, problem.pointer);
              return { problem, snapshot: r && r.exact ? current.slice(r.from, r.to) : null };
            }),
          );
          setNotice({ kind: "error", text: `Not saved: ${res.errors.length} problem${res.errors.length === 1 ? "" : "s"} (marked in the editor).` });
          break;
        case "VersionConflict": {
          const theirs = await client.query(SpecVersionQuery, { botId, version: res.currentVersion }, { requestPolicy: "network-only" }).toPromise();
          const spec2 = theirs.data?.specVersion?.spec;
          setConflict({ current: res.currentVersion, theirs: spec2 === undefined ? null : formatSpec(spec2) });
          setShowConflictDiff(false);
          break;
        }
        case "InvalidInput":
          setNotice({ kind: "error", text: `${res.field}: ${res.message}` });
          break;
      }
    },
    [botId, client, message, onSaved, readOnly, save, text],
  );

  // an unsaved edit survives a reload: kept in localStorage while the text differs from what was saved
  const draftKey = `botkiln:spec-draft:${botId}`;
  const [draft, setDraft] = useState<Draft | null>(() => (readOnly ? null : readDraft(draftKey, loaded.text)));
  const storeDraft = useCallback(
    (t: string) => {
      try {
        if (t !== savedText && t !== loaded.text) localStorage.setItem(draftKey, JSON.stringify({ base, text: t, at: Date.now() }));
        else localStorage.removeItem(draftKey);
      } catch {
        // storage full or disabled: drafts are a convenience
      }
    },
    [savedText, loaded.text, draftKey, base],
  );
  useEffect(() => {
    if (readOnly || draft) return; // while a stored draft is offered, do not overwrite it
    storeDraft(debounced);
  }, [debounced, storeDraft, readOnly, draft]);

  // leaving with unsaved edits asks first (in the app) or lets the browser ask (reload, close, another
  // address); either way the text as it is now is kept as the draft, not only its debounced copy
  // (and it replaces an offered older draft: these edits are the newer work)
  const guard = useLeaveGuard(
    unsaved,
    useCallback(() => storeDraft(editor.current?.getText() ?? text), [storeDraft, text]),
  );

  const goTo = (pointer: string) => editor.current?.goTo(pointer);
  /** From the graph: the line naming the step or route (its id, command or data), else the object. */
  const goToNode = (pointer: string) => editor.current?.goTo(...["id", "command", "data", "prefix"].map((k) => `${pointer}/${k}`), pointer);

  return (
    <>
      <LeaveConfirm guard={guard}>You have unsaved changes to the spec. Leave anyway? Your draft stays in this browser and can be restored.</LeaveConfirm>
      <div className="toolbar">
        <span className="muted small">
          {base ? `Based on v${base}` : "No saved version yet"}
          {dirty ? " · unsaved changes" : ""}
          {readOnly ? " · read only (editors and owners can save)" : ""}
        </span>
        <span className="grow" />
        <Link to="../versions" className="small">
          Versions & diff
        </Link>
        {!readOnly && (
          <>
            <ExamplePicker botId={botId} onPick={(t) => editor.current?.setText(t)} />
            <input aria-label="What changed" placeholder="What changed (optional)" value={message} maxLength={500} onChange={(e) => setMessage(e.target.value)} />
            <button onClick={() => void doSave(base)} disabled={result.fetching || !dirty} title="Save (Ctrl/⌘-S)">
              {result.fetching ? "Saving…" : "Save"}
            </button>
          </>
        )}
      </div>
      {notice && <Notice kind={notice.kind}>{notice.text}</Notice>}
      {draft && (
        <div className="notice info" role="status">
          You have an unsaved draft from {new Date(draft.at).toLocaleString()}
          {draft.base !== base ? ` (it started from v${draft.base}; saving it makes a version on top of v${base})` : ""}.
          <div className="row" style={{ marginTop: "0.4rem" }}>
            <button
              className="secondary"
              onClick={() => {
                editor.current?.setText(draft.text);
                setDraft(null);
              }}
            >
              Restore the draft
            </button>
            <button
              className="secondary"
              onClick={() => {
                try {
                  localStorage.removeItem(draftKey);
                } catch {
                  // nothing to discard
                }
                setDraft(null);
              }}
            >
              Discard it
            </button>
          </div>
        </div>
      )}
      <ErrorBox error={result.error} />
      {conflict && (
        <div className="notice warn" role="alert">
          Someone saved v{conflict.current} after v{base}, which your edit started from. Your text is still here.
          <div className="row" style={{ marginTop: "0.4rem" }}>
            <button
              className="secondary"
              onClick={() => {
                guard.release(); // the user chose to discard: dropping ?from= must not ask again
                reload();
              }}
            >
              Reload v{conflict.current} (discard my edits)
            </button>
            {conflict.theirs !== null && (
              <button className="secondary" onClick={() => setShowConflictDiff((s) => !s)}>
                {showConflictDiff ? "Hide" : "Show"} differences
              </button>
            )}
            <button className="secondary" onClick={() => void doSave(conflict.current)}>
              Save mine on top of v{conflict.current}
            </button>
          </div>
          {showConflictDiff && conflict.theirs !== null && (
            <div style={{ marginTop: "0.5rem", color: "var(--fg)" }}>
              <DiffView oldText={conflict.theirs} newText={text} oldLabel={`v${conflict.current}`} newLabel="your edit" />
            </div>
          )}
        </div>
      )}
      {problems.length > 0 && (
        <ul className="problems" aria-label="Problems">
          {problems.map((p, i) => (
            <li key={i}>
              <button className="link" onClick={() => goTo(p.pointer)}>
                <code>{p.pointer || "/"}</code>
              </button>{" "}
              <span className="muted small">{p.code}</span> {p.message}
              {p.hint && <div className="muted small">Hint: {p.hint}</div>}
            </li>
          ))}
        </ul>
      )}
      <div className="editor-layout">
        <div className="editor-pane">
          <SpecEditor ref={editor} initialText={loaded.text} readOnly={readOnly} problems={problems} onChange={setText} onCursor={setCursor} onSave={() => void doSave(base)} />
        </div>
        <div className="graph-pane">
          <div className="graph-host">
            <FlowGraph graph={parsed.graph} selected={selected} onSelect={goToNode} />
          </div>
          <p className="muted small">
            {parsed.broken ? "The JSON does not parse: the graph shows the last version that did. " : ""}
            Click a step to jump to it. Edges: solid next · dashed else · <span style={{ color: "var(--warn)" }}>invalid</span> ·{" "}
            <span style={{ color: "var(--err)" }}>error</span> · <span style={{ color: "var(--accent)" }}>entry points</span>
          </p>
        </div>
      </div>
    </>
  );
}

interface Draft {
  base: number;
  text: string;
  at: number;
}

function readDraft(key: string, loadedText: string): Draft | null {
  try {
    const raw = localStorage.getItem(key);
    if (!raw) return null;
    const d = JSON.parse(raw) as Partial<Draft>;
    if (typeof d.text !== "string" || typeof d.base !== "number" || typeof d.at !== "number" || d.text === loadedText) return null;
    return { base: d.base, text: d.text, at: d.at };
  } catch {
    return null;
  }
}

/** Replaces the editor's text with an example spec, its meta.botId set to this bot (undo brings the text back). */
function ExamplePicker({ botId, onPick }: { botId: string; onPick(text: string): void }) {
  const [open, setOpen] = useState(false);
  const [{ data, error }] = useQuery({ query: ExamplesQuery, pause: !open });
  return (
    <select
      aria-label="Load an example"
      value=""
      onFocus={() => setOpen(true)}
      onMouseDown={() => setOpen(true)}
      onChange={(e) => {
        const ex = data?.examples.find((x) => x.name === e.target.value);
        if (!ex) return;
        const spec = structuredClone(ex.spec) as { meta?: { botId?: string } };
        if (spec.meta) spec.meta.botId = botId;
        onPick(formatSpec(spec));
      }}
    >
      <option value="">{error ? "examples unavailable" : "Load an example…"}</option>
      {data?.examples.map((x) => (
        <option key={x.name} value={x.name} title={x.description}>
          {x.title} ({x.name})
        </option>
      ))}
    </select>
  );
}
