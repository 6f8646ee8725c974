import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { useMutation, useQuery } from "urql";
import {
  BotsQuery,
  CreateBotMutation,
  InviteMemberMutation,
  ProjectQuery,
  RemoveMemberMutation,
  SetMemberRoleMutation,
} from "../api/operations";
import { Can, Empty, ErrorBox, Loading, Notice } from "../components/ui";
import { useAuth } from "../lib/auth";
import { ago, shortHash, when } from "../lib/format";
import { ROLES, can, roleLabel, type Role } from "../lib/roles";

export function ProjectPage() {
  const { projectId = "" } = useParams();
  const [{ data, fetching, error }, refetch] = useQuery({ query: ProjectQuery, variables: { projectId } });
  const project = data?.project;
  if (fetching && !data) return <Loading />;
  if (error) return <ErrorBox error={error} />;
  if (!project) return <Notice kind="error">This project does not exist, or you are not a member.</Notice>;
  const role = project.viewerRole ?? null;
  return (
    <section>
      <nav className="crumbs">
        <Link to="/">Projects</Link> /
      </nav>
      <h1>
        {project.name} <span className="badge">{roleLabel(role)}</span>
      </h1>
      <Bots projectId={project.id} role={role} />
      <Members project={project} role={role} refresh={() => refetch({ requestPolicy: "network-only" })} />
    </section>
  );
}

function Bots({ projectId, role }: { projectId: string; role: Role | null }) {
  const [{ data, fetching, error }] = useQuery({ query: BotsQuery, variables: { projectId } });
  const bots = data?.bots.edges.map((e) => e.node) ?? [];
  return (
    <>
      <h2>Bots</h2>
      <ErrorBox error={error} />
      {fetching && !data ? (
        <Loading />
      ) : bots.length === 0 ? (
        <Empty>No bots yet.{can(role, "createBot") ? " Add one with its Telegram token below." : ""}</Empty>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Bot</th>
                <th>Telegram</th>
                <th>Spec</th>
                <th>Active revision</th>
              </tr>
            </thead>
            <tbody>
              {bots.map((b) => (
                <tr key={b.id}>
                  <td>
                    <Link to={`/bots/${b.id}`}>{b.name}</Link>
                    <div className="muted small mono">{b.id}</div>
                  </td>
                  <td>{b.telegramUsername ? `@${b.telegramUsername}` : "—"}</td>
                  <td>{b.latestSpecVersion ? `v${b.latestSpecVersion}` : "none"}</td>
                  <td className="mono" title={b.activeRevHash ?? ""}>
                    {shortHash(b.activeRevHash)} {b.activeSince && <span className="muted small">{ago(b.activeSince)}</span>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Can role={role} action="createBot">
        <CreateBot projectId={projectId} />
      </Can>
    </>
  );
}

const BOT_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;

function CreateBot({ projectId }: { projectId: string }) {
  const [botId, setBotId] = useState("");
  const [name, setName] = useState("");
  const [token, setToken] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [result, createBot] = useMutation(CreateBotMutation);
  const navigate = useNavigate();

  async function submit(e: FormEvent) {
    e.preventDefault();
    setProblem(null);
    const r = await createBot({ projectId, botId, name: name.trim() || botId, token: token.trim() });
    const res = r.data?.createBot;
    if (!res) return;
    if (res.__typename === "BotCreated") {
      setToken("");
      void navigate(`/bots/${res.bot.id}`);
    } else {
      setProblem(
        res.message +
          (res.__typename === "TelegramUnavailable" && res.retryAfterSeconds ? ` (try again in ${res.retryAfterSeconds} s)` : ""),
      );
    }
  }

  return (
    <details className="panel">
      <summary>Add a bot</summary>
      <form onSubmit={(e) => void submit(e)} className="stack">
        <label>
          Bot id <span className="muted">(lowercase letters, digits, _ and -; never reused)</span>
          <input
            required
            pattern="[a-z0-9][a-z0-9_\-]{0,63}"
            maxLength={64}
            value={botId}
            onChange={(e) => setBotId(e.target.value.toLowerCase())}
            placeholder="my-shop-bot"
          />
        </label>
        <label>
          Name
          <input maxLength={128} value={name} onChange={(e) => setName(e.target.value)} placeholder="My shop" />
        </label>
        <label>
          Telegram token <span className="muted">(from @BotFather; write-only, never shown again)</span>
          <input
            required
            type="password"
            autoComplete="off"
            spellCheck={false}
            value={token}
            onChange={(e) => setToken(e.target.value)}
            placeholder="123456789:AA…"
          />
        </label>
        {problem && <Notice kind="error">{problem}</Notice>}
        <ErrorBox error={result.error} />
        <button type="submit" disabled={result.fetching || !BOT_ID.test(botId) || !token.trim()}>
          {result.fetching ? "Checking the token…" : "Add bot"}
        </button>
      </form>
    </details>
  );
}

interface ProjectShape {
  id: string;
  members: { role: Role; addedAt: string; user?: { id: string; email: string; displayName: string } | null }[];
}

function Members({ project, role, refresh }: { project: ProjectShape; role: Role | null; refresh: () => void }) {
  const { viewer } = useAuth();
  const [problem, setProblem] = useState<string | null>(null);
  const [, setMemberRole] = useMutation(SetMemberRoleMutation);
  const [, removeMember] = useMutation(RemoveMemberMutation);
  const manage = can(role, "manageMembers");

  async function changeRole(userId: string, newRole: Role) {
    setProblem(null);
    const r = await setMemberRole({ projectId: project.id, userId, role: newRole });
    const res = r.data?.setMemberRole;
    if (r.error) setProblem(r.error.message);
    else if (res && res.__typename !== "MemberSet") setProblem(res.message);
    refresh();
  }

  async function remove(userId: string, label: string) {
    if (!window.confirm(`Remove ${label} from the project?`)) return;
    setProblem(null);
    const r = await removeMember({ projectId: project.id, userId });
    const res = r.data?.removeMember;
    if (r.error) setProblem(r.error.message);
    else if (res && res.__typename !== "MemberRemoved") setProblem(res.message);
    refresh();
  }

  return (
    <>
      <h2>Members</h2>
      {problem && <Notice kind="error">{problem}</Notice>}
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th>Member</th>
              <th>Role</th>
              <th>Since</th>
              {manage && <th aria-label="Actions" />}
            </tr>
          </thead>
          <tbody>
            {project.members.map((m, i) => {
              const u = m.user;
              const label = u ? u.displayName || u.email : "deleted account";
              return (
                <tr key={u?.id ?? i}>
                  <td>
                    {label}
                    {u && u.displayName && <div className="muted small">{u.email}</div>}
                    {u?.id === viewer?.id && <span className="badge">you</span>}
                  </td>
                  <td>
                    {manage && u ? (
                      <select aria-label={`Role of ${label}`} value={m.role} onChange={(e) => void changeRole(u.id, e.target.value as Role)}>
                        {ROLES.map((r) => (
                          <option key={r} value={r}>
                            {roleLabel(r)}
                          </option>
                        ))}
                      </select>
                    ) : (
                      roleLabel(m.role)
                    )}
                  </td>
                  <td className="small">{when(m.addedAt)}</td>
                  {manage && (
                    <td>
                      {u && (
                        <button className="link danger" onClick={() => void remove(u.id, label)}>
                          Remove
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <Can role={role} action="manageMembers">
        <Invite projectId={project.id} refresh={refresh} />
      </Can>
    </>
  );
}

function Invite({ projectId, refresh }: { projectId: string; refresh: () => void }) {
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<Role>("VIEWER");
  const [problem, setProblem] = useState<string | null>(null);
  const [result, invite] = useMutation(InviteMemberMutation);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setProblem(null);
    const r = await invite({ projectId, email: email.trim(), role });
    const res = r.data?.inviteMember;
    if (res?.__typename === "MemberSet") {
      setEmail("");
      refresh();
    } else if (res) setProblem(res.message);
  }

  return (
    <form onSubmit={(e) => void submit(e)} className="inline-form">
      <input type="email" aria-label="Email of an existing account" placeholder="Email of an existing account" required value={email} onChange={(e) => setEmail(e.target.value)} />
      <select aria-label="Role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
        {ROLES.map((r) => (
          <option key={r} value={r}>
            {roleLabel(r)}
          </option>
        ))}
      </select>
      <button type="submit" disabled={result.fetching}>
        Invite
      </button>
      {problem && <Notice kind="error">{problem}</Notice>}
      <ErrorBox error={result.error} />
    </form>
  );
}
