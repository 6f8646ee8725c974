/** A bot's spec versions, and the diff of any two (?a=&b=). */
import { Link, useSearchParams } from "react-router";
import { useQuery } from "urql";
import { SpecVersionQuery, SpecVersionsQuery } from "../api/operations";
import { DiffView } from "../components/DiffView";
import { Empty, ErrorBox, Loading } from "../components/ui";
import { when, shortHash } from "../lib/format";
import { formatSpec } from "../lib/specFormat";
import { can } from "../lib/roles";
import { useBot } from "./BotLayout";

export function VersionsPage() {
  const { bot, role } = useBot();
  const [params, setParams] = useSearchParams();
  const [{ data, fetching, error }] = useQuery({ query: SpecVersionsQuery, variables: { botId: bot.id }, requestPolicy: "cache-and-network" });
  const versions = data?.specVersions.edges.map((e) => e.node) ?? [];
  const latest = versions[0]?.version ?? 0;
  const b = Number(params.get("b") ?? latest);
  const a = Number(params.get("a") ?? (versions[1]?.version ?? 0));
  const pick = (which: "a" | "b", v: number) => {
    const next = new URLSearchParams(params);
    next.set("a", String(which === "a" ? v : a));
    next.set("b", String(which === "b" ? v : b));
    setParams(next, { replace: true });
  };
  if (fetching && !data) return <Loading />;
  if (error) return <ErrorBox error={error} />;
  if (versions.length === 0) return <Empty>No spec versions yet: write one in the Spec tab.</Empty>;
  return (
    <>
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th title="old side of the diff">A</th>
              <th title="new side of the diff">B</th>
              <th>Version</th>
              <th>Message</th>
              <th>Saved</th>
              <th>Spec hash</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {versions.map((v) => (
              <tr key={v.version} className={v.version === a || v.version === b ? "selected" : ""}>
                <td>
                  <input type="radio" name="a" aria-label={`Compare from v${v.version}`} checked={v.version === a} onChange={() => pick("a", v.version)} />
                </td>
                <td>
                  <input type="radio" name="b" aria-label={`Compare to v${v.version}`} checked={v.version === b} onChange={() => pick("b", v.version)} />
                </td>
                <td>
                  v{v.version} {v.version === latest && <span className="badge active">latest</span>}
                </td>
                <td>{v.message || <span className="muted">—</span>}</td>
                <td className="small">{when(v.createdAt)}</td>
                <td className="mono small" title={v.specHash}>
                  {shortHash(v.specHash)}
                </td>
                <td className="small">
                  {v.version !== latest && can(role, "saveSpec") ? <Link to={`../spec?from=${v.version}`}>edit from here</Link> : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>
        Diff v{a || "∅"} → v{b}
      </h2>
      <Diff botId={bot.id} a={a} b={b} />
    </>
  );
}

function Diff({ botId, a, b }: { botId: string; a: number; b: number }) {
  const [left] = useQuery({ query: SpecVersionQuery, variables: { botId, version: a }, pause: !a });
  const [right] = useQuery({ query: SpecVersionQuery, variables: { botId, version: b }, pause: !b });
  if (left.error || right.error) return <ErrorBox error={left.error ?? right.error} />;
  if ((a && !left.data) || (b && !right.data)) return <Loading />;
  const oldText = a && left.data?.specVersion ? formatSpec(left.data.specVersion.spec) : "";
  const newText = b && right.data?.specVersion ? formatSpec(right.data.specVersion.spec) : "";
  return <DiffView oldText={oldText} newText={newText} oldLabel={a ? `v${a}` : "nothing"} newLabel={`v${b}`} />;
}
