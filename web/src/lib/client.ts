/**
 * The urql client: queries and mutations over HTTP POST (same origin, cookies sent),
 * subscriptions over graphql-ws (graphql-transport-ws) on the same /graphql path.
 *
 * Every HTTP request carries `X-CSRF-Token` from the `botkiln_csrf` cookie (docs/api.md#csrf).
 * The API hands that cookie out with the first GraphQL response, and changes it with every new
 * session; a mutation refused with `extensions.code == "CSRF"` is retried once if the response
 * brought a different cookie (a first visit, or a session that ended elsewhere).
 *
 * The WebSocket reads the session cookie once, at its handshake: after signing in or out the
 * whole client is rebuilt (see auth.tsx), which also drops every cached answer of the old user.
 */
import { Client, cacheExchange, fetchExchange, subscriptionExchange } from "urql";
import { createClient as createWsClient, type Client as WsClient } from "graphql-ws";
import { CSRF_HEADER, csrfToken } from "./csrf";

export const GRAPHQL_PATH = "/graphql";

function wsUrl(): string {
  const { protocol, host } = window.location;
  return `${protocol === "https:" ? "wss:" : "ws:"}//${host}${GRAPHQL_PATH}`;
}

function isCsrfRefusal(body: unknown): boolean {
  if (typeof body !== "object" || body === null) return false;
  const errors = (body as { errors?: { extensions?: { code?: string } }[] }).errors;
  return Array.isArray(errors) && errors.some((e) => e.extensions?.code === "CSRF");
}

/** fetch with the CSRF header, retried once when the API just (re)issued the token. */
export const csrfFetch: typeof fetch = async (input, init) => {
  const send = (token: string | null) => {
    const headers = new Headers(init?.headers);
    if (token) headers.set(CSRF_HEADER, token);
    return fetch(input, { ...init, headers, credentials: "same-origin" });
  };
  const before = csrfToken();
  const response = await send(before);
  if (response.status !== 200) return response;
  const after = csrfToken();
  if (after && after !== before) {
    const body: unknown = await response.clone().json().catch(() => null);
    if (isCsrfRefusal(body)) return send(after);
  }
  return response;
};

export interface Clients {
  urql: Client;
  ws: WsClient;
}

export function makeClients(): Clients {
  const ws = createWsClient({
    url: wsUrl(),
    lazy: true,
    retryAttempts: Infinity,
    shouldRetry: () => true,
    keepAlive: 20_000,
  });
  const urql = new Client({
    url: GRAPHQL_PATH,
    fetch: csrfFetch,
    fetchOptions: { credentials: "same-origin" },
    preferGetMethod: false,
    requestPolicy: "cache-and-network",
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || "" };
          return {
            subscribe(sink) {
              const unsubscribe = ws.subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
    ],
  });
  return { urql, ws };
}
