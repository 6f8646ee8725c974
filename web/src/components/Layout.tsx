import { Link, NavLink, Outlet, Navigate, useLocation } from "react-router";
import { useAuth } from "../lib/auth";
import { Loading, Notice } from "./ui";

export function Shell() {
  const { viewer, signOut } = useAuth();
  return (
    <div className="app">
      <header className="topbar">
        <Link to="/" className="brand">
          Botkiln
        </Link>
        <nav className="topnav">
          {viewer && <NavLink to="/" end>Projects</NavLink>}
        </nav>
        <div className="who">
          {viewer ? (
            <>
              <span className="muted" title={viewer.email}>
                {viewer.displayName || viewer.email}
              </span>
              <button className="link" onClick={() => void signOut()}>
                Sign out
              </button>
            </>
          ) : (
            <>
              <NavLink to="/signin">Sign in</NavLink>
              <NavLink to="/signup">Sign up</NavLink>
            </>
          )}
        </div>
      </header>
      <main className="content">
        <Outlet />
      </main>
    </div>
  );
}

/** Routes below need a signed-in user; others go to /signin and come back after. */
export function RequireAuth() {
  const { viewer, loading, error } = useAuth();
  const location = useLocation();
  if (loading) return <Loading />;
  if (error && !viewer) return <Notice kind="error">{error}</Notice>;
  if (!viewer) return <Navigate to={`/signin?next=${encodeURIComponent(location.pathname + location.search)}`} replace />;
  return <Outlet />;
}

export function NotFoundPage() {
  return (
    <section>
      <h1>Not found</h1>
      <p>
        Nothing here. <Link to="/">Back to your projects</Link>.
      </p>
    </section>
  );
}
