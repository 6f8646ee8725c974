/** A bot's pages: a header (name, project, your role) and tabs; children get the bot and role. */
import { Link, NavLink, Outlet, useOutletContext, useParams } from "react-router";
import { useQuery } from "urql";
import { BotProjectQuery, BotQuery } from "../api/operations";
import type { BotQuery as BotQueryResult } from "../gql/graphql";
import { ErrorBox, Loading, Notice } from "../components/ui";
import { can, roleLabel, type Action, type Role } from "../lib/roles";

export type BotInfo = NonNullable<BotQueryResult["bot"]>;

export interface BotContext {
  bot: BotInfo;
  role: Role | null;
  refetchBot: () => void;
}

export function useBot(): BotContext {
  return useOutletContext<BotContext>();
}

const TABS: { to: string; label: string; end?: boolean; soon?: boolean; need?: Action }[] = [
  { to: "", label: "Overview", end: true },
  { to: "spec", label: "Spec" },
  { to: "versions", label: "Versions" },
  { to: "deploy", label: "Generate & deploy" },
  { to: "secrets", label: "Secrets" },
  { to: "analytics", label: "Analytics" },
  { to: "simulator", label: "Simulator" },
  { to: "dead-letters", label: "Dead letters", need: "deadLetters" },
];

export function BotLayout() {
  const { botId = "" } = useParams();
  const [{ data, fetching, error }, refetch] = useQuery({ query: BotQuery, variables: { botId } });
  const bot = data?.bot;
  const [project] = useQuery({
    query: BotProjectQuery,
    variables: { projectId: bot?.projectId ?? "" },
    pause: !bot,
  });
  if (fetching && !data) return <Loading />;
  if (error) return <ErrorBox error={error} />;
  if (!bot) return <Notice kind="error">No bot “{botId}”, or you are not a member of its project.</Notice>;
  const p = project.data?.project;
  const role = p?.viewerRole ?? null;
  const context: BotContext = { bot, role, refetchBot: () => refetch({ requestPolicy: "network-only" }) };
  return (
    <section>
      <nav className="crumbs">
        <Link to="/">Projects</Link> /{p ? <Link to={`/projects/${p.id}`}>{p.name}</Link> : <span>…</span>} /
      </nav>
      <h1>
        {bot.name}
        <span className="muted mono small">{bot.id}</span>
        {bot.telegramUsername && (
          <a className="small" href={`https://t.me/${bot.telegramUsername}`} target="_blank" rel="noreferrer">
            @{bot.telegramUsername}
          </a>
        )}
        {p && <span className="badge">{roleLabel(role)}</span>}
      </h1>
      <nav className="tabs">
        {TABS.filter((t) => !t.need || can(role, t.need)).map((t) => (
          <NavLink key={t.to} to={t.to} end={t.end ?? false}>
            {t.label}
            {t.soon && <span className="soon muted"> soon</span>}
          </NavLink>
        ))}
      </nav>
      {project.fetching && !p ? <Loading /> : <Outlet context={context} />}
    </section>
  );
}
