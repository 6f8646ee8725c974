/**
 * The spec editor: CodeMirror 6 with JSON, completion, hover help and inline errors from the
 * BotSpec JSON Schema (codemirror-json-schema), plus the server's semantic problems as diagnostics.
 *
 * Server problems are kept as pointers, not positions: each lint pass maps them onto the
 * current text (lib/pointer.ts), so they stay on the right line while the user edits around
 * them. A problem whose target is gone is shown at its nearest existing ancestor.
 */
import { forwardRef, useEffect, useImperativeHandle, useRef } from "react";
import { basicSetup } from "codemirror";
import { EditorView, hoverTooltip, keymap } from "@codemirror/view";
import { Compartment, EditorSelection, EditorState, StateEffect } from "@codemirror/state";
import { json, jsonLanguage, jsonParseLinter } from "@codemirror/lang-json";
import { linter, lintGutter, type Diagnostic } from "@codemirror/lint";
import { oneDark } from "@codemirror/theme-one-dark";
import { handleRefresh, jsonCompletion, jsonSchemaHover, jsonSchemaLinter, stateExtensions } from "codemirror-json-schema";
import { BOTSPEC_SCHEMA } from "../lib/schema";
import { pointerRange } from "../lib/pointer";

export interface ServerProblem {
  pointer: string;
  code: string;
  message: string;
  hint?: string | null;
}

export interface SpecEditorHandle {
  /** Put the cursor on the first of `pointers` that exists (else the last's nearest ancestor), scroll to it, focus. */
  goTo(...pointers: string[]): void;
  /** Replace the whole text (loading a version); undo history is kept. */
  setText(text: string): void;
  getText(): string;
}

interface Props {
  initialText: string;
  readOnly: boolean;
  problems: readonly ServerProblem[];
  onChange(text: string): void;
  onCursor?(offset: number): void;
  onSave?(): void;
}

export function serverDiagnostics(text: string, problems: readonly ServerProblem[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const p of problems) {
    const r = pointerRange(text, p.pointer);
    if (!r) continue;
    const where = r.exact ? "" : ` (at ${p.pointer || "/"})`;
    out.push({
      from: r.from,
      to: Math.max(r.to, r.from + 1),
      severity: "error",
      source: `server: ${p.code}`,
      message: `${p.message}${where}${p.hint ? `\nHint: ${p.hint}` : ""}`,
    });
  }
  return out;
}

/** Dispatched when the server's problems change, so the lint pass runs again without an edit. */
const problemsChanged = StateEffect.define<null>();

const prefersDark = () => typeof window !== "undefined" && window.matchMedia?.("(prefers-color-scheme: dark)").matches;

export const SpecEditor = forwardRef<SpecEditorHandle, Props>(function SpecEditor(props, ref) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const latest = useRef(props);
  latest.current = props;
  const readOnly = useRef(new Compartment());

  useEffect(() => {
    const serverLint = linter((v) => serverDiagnostics(v.state.doc.toString(), latest.current.problems), {
      delay: 250,
      needsRefresh: (u) => u.transactions.some((tr) => tr.effects.some((e) => e.is(problemsChanged))),
    });
    const state = EditorState.create({
      doc: props.initialText,
      extensions: [
        basicSetup,
        json(),
        linter(jsonParseLinter(), { delay: 300 }),
        linter(jsonSchemaLinter(), { delay: 300, needsRefresh: handleRefresh }),
        jsonLanguage.data.of({ autocomplete: jsonCompletion() }),
        hoverTooltip(jsonSchemaHover()),
        stateExtensions(BOTSPEC_SCHEMA as Parameters<typeof stateExtensions>[0]),
        serverLint,
        lintGutter(),
        readOnly.current.of([EditorState.readOnly.of(props.readOnly), EditorView.editable.of(!props.readOnly)]),
        keymap.of([
          {
            key: "Mod-s",
            preventDefault: true,
            run: () => {
              latest.current.onSave?.();
              return true;
            },
          },
        ]),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) latest.current.onChange(u.state.doc.toString());
          if (u.selectionSet || u.docChanged) latest.current.onCursor?.(u.state.selection.main.head);
        }),
        EditorView.theme({ "&": { fontSize: "13px" }, ".cm-scroller": { fontFamily: "var(--mono)" } }),
        ...(prefersDark() ? [oneDark] : []),
      ],
    });
    const v = new EditorView({ state, parent: host.current! });
    view.current = v;
    return () => {
      v.destroy();
      view.current = null;
    };
    // the editor is created once; later prop changes go through effects and refs
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  useEffect(() => {
    view.current?.dispatch({
      effects: readOnly.current.reconfigure([EditorState.readOnly.of(props.readOnly), EditorView.editable.of(!props.readOnly)]),
    });
  }, [props.readOnly]);

  useEffect(() => {
    view.current?.dispatch({ effects: problemsChanged.of(null) });
  }, [props.problems]);

  useImperativeHandle(
    ref,
    () => ({
      goTo(...pointers: string[]) {
        const v = view.current;
        if (!v) return;
        const text = v.state.doc.toString();
        const ranges = pointers.map((p) => pointerRange(text, p));
        const r = ranges.find((x) => x?.exact) ?? ranges[ranges.length - 1];
        if (!r) return;
        v.dispatch({ selection: EditorSelection.cursor(r.from), effects: EditorView.scrollIntoView(r.from, { y: "center" }) });
        v.focus();
      },
      setText(text: string) {
        const v = view.current;
        if (!v) return;
        v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: text } });
      },
      getText() {
        return view.current?.state.doc.toString() ?? "";
      },
    }),
    [],
  );

  return <div className="cm-host" ref={host} />;
});
