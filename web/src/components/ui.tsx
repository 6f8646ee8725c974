/** Small shared pieces: error display, loading, role gating, JSON view, labelled form fields. */
import { cloneElement, type ReactElement, type ReactNode } from "react";
import type { CombinedError } from "urql";
import { can, type Action, type Role } from "../lib/roles";

export function errorText(error: CombinedError): string {
  if (error.networkError) return `Cannot reach the API: ${error.networkError.message}`;
  return error.graphQLErrors
    .map((e) => {
      const code = e.extensions?.code;
      const id = e.extensions?.requestId;
      return `${e.message}${code && code !== "INTERNAL_SERVER_ERROR" ? ` (${String(code)})` : ""}${id ? ` [request ${String(id)}]` : ""}`;
    })
    .join("; ");
}

export function ErrorBox({ error, children }: { error?: CombinedError | undefined | null; children?: ReactNode }) {
  if (!error && !children) return null;
  return (
    <div className="notice error" role="alert">
      {error ? errorText(error) : children}
    </div>
  );
}

export function Notice({ kind = "info", children }: { kind?: "info" | "error" | "ok" | "warn"; children: ReactNode }) {
  return (
    <div className={`notice ${kind}`} role={kind === "error" ? "alert" : "status"}>
      {children}
    </div>
  );
}

export function Loading({ what = "Loading" }: { what?: string }) {
  return <p className="muted loading">{what}…</p>;
}

/** Renders children only when `role` allows `action` (what a viewer cannot do is not offered). */
export function Can({ role, action, children, otherwise = null }: { role: Role | null | undefined; action: Action; children: ReactNode; otherwise?: ReactNode }) {
  return <>{can(role, action) ? children : otherwise}</>;
}

export function Json({ value }: { value: unknown }) {
  return <pre className="json">{JSON.stringify(value, null, 2)}</pre>;
}

export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge s-${status.toLowerCase()}`}>{status.toLowerCase()}</span>;
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="muted empty">{children}</p>;
}

/** A labelled input (or select) with its hint and its problem: the control is marked invalid and described by them. */
export function Field({ label, hint, error, id, children }: { label: string; hint?: string; error?: string | undefined; id: string; children: ReactElement<ControlProps> }) {
  const describedBy = [hint && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(" ") || undefined;
  return (
    <label>
      {label}
      {cloneElement(children, { "aria-invalid": error ? true : undefined, "aria-describedby": describedBy })}
      {hint && (
        <span id={`${id}-hint`} className="muted small">
          {hint}
        </span>
      )}
      {error && (
        <span id={`${id}-error`} className="field-error small" role="alert">
          {error}
        </span>
      )}
    </label>
  );
}

interface ControlProps {
  "aria-invalid"?: boolean | undefined;
  "aria-describedby"?: string | undefined;
}
