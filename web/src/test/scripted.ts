/**
 * Test support for the console's component tests (imported only from *.test.tsx files, so never bundled):
 * a scripted urql client that answers operations by name, and the Bot object the API returns.
 */
import { Client, makeResult, type Exchange, type Operation } from "urql";
import { filter, map, onPush, pipe } from "wonka";
import { getOperationAST } from "graphql";
import type { Clients } from "../lib/client";
import type { BotInfo } from "../pages/BotLayout";

export type Variables = Record<string, unknown>;
/** The data for one operation: a value, or a function of the operation's variables. */
export type Answer = unknown | ((variables: Variables) => unknown);

/** One operation the client was asked for. */
export interface Sent {
  name: string;
  kind: Operation["kind"];
  variables: Variables;
}

export interface ScriptedOptions {
  /** what `sent` keeps: every operation (the default), or only the mutations */
  record?: "all" | "mutations";
}

export interface Scripted {
  /** the urql client, for a `<Provider value={client}>` */
  client: Client;
  /** the same client with a WebSocket stand-in, for `<AuthProvider clients={() => clients}>` */
  clients: Clients;
  /** what was sent, in order (appended to as the components ask) */
  sent: Sent[];
}

/**
 * A client answering each query and mutation by its operation name with `answers[name]`
 * (`data: null` when there is none), synchronously; subscriptions are recorded but stay silent.
 */
export function scriptedClient(answers: Record<string, Answer>, options: ScriptedOptions = {}): Scripted {
  const sent: Sent[] = [];
  const nameOf = (op: Operation) => getOperationAST(op.query)?.name?.value ?? "";
  const exchange: Exchange = () => (ops$) =>
    pipe(
      ops$,
      filter((op: Operation) => op.kind !== "teardown"),
      onPush((op: Operation) => {
        if (options.record === "mutations" && op.kind !== "mutation") return;
        sent.push({ name: nameOf(op), kind: op.kind, variables: op.variables as Variables });
      }),
      filter((op: Operation) => op.kind === "query" || op.kind === "mutation"),
      map((op: Operation) => {
        const answer = answers[nameOf(op)];
        const data = typeof answer === "function" ? (answer as (variables: Variables) => unknown)(op.variables as Variables) : answer;
        return makeResult(op, { data: data ?? null });
      }),
    );
  const client = new Client({ url: "http://test/graphql", exchanges: [exchange] });
  const ws = { dispose: () => undefined, on: () => () => undefined } as unknown as Clients["ws"];
  return { client, clients: { urql: client, ws }, sent };
}

/** The bot as the `Bot` query returns it (with the typenames the API sends). */
export type BotFixture = BotInfo & {
  __typename: "Bot";
  activeRevision: (NonNullable<BotInfo["activeRevision"]> & { __typename: "Revision" }) | null;
};

/** Bot "b" ("Shop") of project "p", never deployed; `overrides` replace fields. */
export function botFixture(overrides: Partial<BotFixture> = {}): BotFixture {
  return {
    __typename: "Bot",
    id: "b",
    projectId: "p",
    name: "Shop",
    telegramBotId: "1",
    telegramUsername: null,
    activeRevHash: null,
    activeSince: null,
    createdAt: "2026-01-01T00:00:00Z",
    latestSpecVersion: 1,
    activeRevision: null,
    ...overrides,
  };
}
