/**
 * Who is signed in, and the GraphQL client that goes with it.
 *
 * The session lives in an HttpOnly cookie the console cannot read; `viewer` tells. Signing in
 * or out replaces the urql client (and its WebSocket), so no cached answer or open
 * subscription of the previous user survives.
 */
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { Provider, type Client } from "urql";
import { makeClients, type Clients } from "./client";
import { ViewerQuery, SignOutMutation } from "../api/operations";

export interface Viewer {
  id: string;
  email: string;
  displayName: string;
}

interface AuthState {
  viewer: Viewer | null;
  loading: boolean;
  error: string | null;
  /** Call after signUp/signIn succeeded (the cookies are already set). */
  signedIn(viewer: Viewer): void;
  signOut(): Promise<void>;
  client: Client;
  /** the WebSocket client (subscriptions): its connection state is shown next to live panels */
  ws: Clients["ws"];
}

const AuthContext = createContext<AuthState | null>(null);

export function useAuth(): AuthState {
  const value = useContext(AuthContext);
  if (value === null) throw new Error("useAuth outside <AuthProvider>");
  return value;
}

export function AuthProvider({ children, clients: given }: { children: ReactNode; clients?: () => Clients }) {
  const factory = given ?? makeClients;
  const [clients, setClients] = useState<Clients>(factory);
  const [viewer, setViewer] = useState<Viewer | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => () => void clients.ws.dispose(), [clients]);

  useEffect(() => {
    let live = true;
    clients.urql
      .query(ViewerQuery, {}, { requestPolicy: "network-only" })
      .toPromise()
      .then((r) => {
        if (!live) return;
        setError(r.error ? r.error.message : null);
        setViewer(r.data?.viewer ?? null);
        setLoading(false);
      });
    return () => {
      live = false;
    };
  }, [clients]);

  const signedIn = useCallback(
    (v: Viewer) => {
      setViewer(v);
      setClients(factory());
    },
    [factory],
  );

  const signOut = useCallback(async () => {
    await clients.urql.mutation(SignOutMutation, {}).toPromise();
    setViewer(null);
    setClients(factory());
  }, [clients, factory]);

  const value = useMemo<AuthState>(
    () => ({ viewer, loading, error, signedIn, signOut, client: clients.urql, ws: clients.ws }),
    [viewer, loading, error, signedIn, signOut, clients],
  );
  return (
    <AuthContext.Provider value={value}>
      <Provider value={clients.urql}>{children}</Provider>
    </AuthContext.Provider>
  );
}
