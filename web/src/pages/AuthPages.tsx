import { useState, type FormEvent } from "react";
import { Link, Navigate, useNavigate, useSearchParams } from "react-router";
import { useMutation } from "urql";
import { SignInMutation, SignUpMutation } from "../api/operations";
import { useAuth } from "../lib/auth";
import { ErrorBox, Notice } from "../components/ui";

/** Only same-site paths are followed after signing in (no open redirect). */
export function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

export function SignInPage() {
  const { viewer, signedIn } = useAuth();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [result, signIn] = useMutation(SignInMutation);
  const next = safeNext(params.get("next"));
  if (viewer) return <Navigate to={next} replace />;

  async function submit(e: FormEvent) {
    e.preventDefault();
    setProblem(null);
    const r = await signIn({ email, password });
    const data = r.data?.signIn;
    if (!data) return;
    if (data.__typename === "SignedIn") {
      signedIn(data.viewer);
      void navigate(next, { replace: true });
    } else {
      setProblem(data.message);
    }
  }

  return (
    <section className="narrow">
      <h1>Sign in</h1>
      <form onSubmit={(e) => void submit(e)} className="stack">
        <label>
          Email
          <input type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          Password
          <input type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        {problem && <Notice kind="error">{problem}</Notice>}
        <ErrorBox error={result.error} />
        <button type="submit" disabled={result.fetching}>
          {result.fetching ? "Signing in…" : "Sign in"}
        </button>
      </form>
      <p className="muted">
        No account? <Link to={`/signup${params.get("next") ? `?next=${encodeURIComponent(next)}` : ""}`}>Sign up</Link>
      </p>
    </section>
  );
}

export function SignUpPage() {
  const { viewer, signedIn } = useAuth();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [result, signUp] = useMutation(SignUpMutation);
  const next = safeNext(params.get("next"));
  if (viewer) return <Navigate to={next} replace />;

  async function submit(e: FormEvent) {
    e.preventDefault();
    setProblem(null);
    const r = await signUp({ email, password, displayName });
    const data = r.data?.signUp;
    if (!data) return;
    if (data.__typename === "SignedIn") {
      signedIn(data.viewer);
      void navigate(next, { replace: true });
    } else {
      setProblem(data.message);
    }
  }

  return (
    <section className="narrow">
      <h1>Create an account</h1>
      <form onSubmit={(e) => void submit(e)} className="stack">
        <label>
          Email
          <input type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          Name <span className="muted">(optional)</span>
          <input autoComplete="name" maxLength={128} value={displayName} onChange={(e) => setDisplayName(e.target.value)} />
        </label>
        <label>
          Password <span className="muted">(8 characters or more)</span>
          <input type="password" autoComplete="new-password" minLength={8} required value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        {problem && <Notice kind="error">{problem}</Notice>}
        <ErrorBox error={result.error} />
        <button type="submit" disabled={result.fetching}>
          {result.fetching ? "Creating…" : "Sign up"}
        </button>
      </form>
      <p className="muted">
        Have an account? <Link to="/signin">Sign in</Link>
      </p>
    </section>
  );
}
