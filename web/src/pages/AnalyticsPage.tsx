/** A bot's analytics (`analytics(botId, days)`): traffic, error rate, latency, and a flow's funnel. */
import { useMemo, useState } from "react";
import { useQuery } from "urql";
import { AnalyticsQuery, FunnelQuery, SpecVersionQuery } from "../api/operations";
import { Chart, type Series } from "../components/Chart";
import { Empty, ErrorBox, Loading } from "../components/ui";
import { funnelRows, ms, percent, totals } from "../lib/analytics";
import { useBot } from "./BotLayout";

const WINDOWS = [7, 14, 30, 90];

export function AnalyticsPage() {
  const { bot } = useBot();
  const [days, setDays] = useState(14);
  const [{ data, fetching, error }, refetch] = useQuery({ query: AnalyticsQuery, variables: { botId: bot.id, days } });
  const a = data?.analytics;
  const daily = useMemo(() => a?.daily ?? [], [a]);
  const t = totals(daily);
  const dayLabels = useMemo(() => daily.map((d) => d.day), [daily]);
  const traffic = useMemo<Series[]>(
    () => [
      { label: "updates", color: "#2563eb", values: daily.map((d) => d.updates), bars: true },
      { label: "messages sent", color: "#c2410c", values: daily.map((d) => d.messagesSent) },
    ],
    [daily],
  );
  const errors = useMemo<Series[]>(() => [{ label: "error rate", color: "#b91c1c", values: daily.map((d) => (d.updates ? d.errorRate : null)), format: percent }], [daily]);
  const latency = useMemo<Series[]>(
    () => [
      { label: "p50", color: "#15803d", values: daily.map((d) => d.p50LatencyMs), format: ms },
      { label: "p95", color: "#a16207", values: daily.map((d) => d.p95LatencyMs), format: ms },
    ],
    [daily],
  );

  return (
    <>
      <div className="row spread">
        <h2 style={{ margin: 0 }}>Analytics</h2>
        <div className="row">
          <label className="row" style={{ flexDirection: "row" }}>
            Last
            <select value={days} onChange={(e) => setDays(Number(e.target.value))} aria-label="Window">
              {WINDOWS.map((d) => (
                <option key={d} value={d}>
                  {d} days
                </option>
              ))}
            </select>
          </label>
          <button className="secondary" onClick={() => refetch({ requestPolicy: "network-only" })} disabled={fetching}>
            Refresh
          </button>
        </div>
      </div>
      <ErrorBox error={error} />
      {fetching && !a ? (
        <Loading />
      ) : !a ? null : (
        <>
          <p className="muted small">
            {a.since} – {a.until} (UTC days)
          </p>
          <div className="kpis">
            <div className="kpi">
              <span className="muted small">updates</span>
              <b>{t.updates}</b>
            </div>
            <div className="kpi">
              <span className="muted small">messages sent</span>
              <b>{t.messagesSent}</b>
            </div>
            <div className="kpi">
              <span className="muted small">error rate</span>
              <b>{percent(t.errorRate)}</b>
            </div>
            <div className="kpi">
              <span className="muted small">worst daily p95</span>
              <b>{t.worstP95 == null ? "—" : ms(t.worstP95)}</b>
            </div>
          </div>
          {t.updates === 0 && <Empty>No traffic in this window yet: the charts fill in as people talk to the bot.</Empty>}
          <div className="charts">
            <div className="chart">
              <h3>Messages per day</h3>
              <Chart days={dayLabels} series={traffic} />
            </div>
            <div className="chart">
              <h3>Error rate</h3>
              <Chart days={dayLabels} series={errors} />
            </div>
            <div className="chart">
              <h3>Latency (webhook → sent)</h3>
              <Chart days={dayLabels} series={latency} />
            </div>
            <div className="chart">
              <h3>Events</h3>
              {a.eventCounts.length === 0 ? (
                <Empty>No events.</Empty>
              ) : (
                <table>
                  <tbody>
                    {a.eventCounts.slice(0, 12).map((e) => (
                      <tr key={e.type}>
                        <td className="mono small">{e.type}</td>
                        <td style={{ textAlign: "right" }}>{e.count}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </div>
          </div>
          <Funnel botId={bot.id} days={days} />
        </>
      )}
    </>
  );
}

function Funnel({ botId, days }: { botId: string; days: number }) {
  const [spec] = useQuery({ query: SpecVersionQuery, variables: { botId, version: null } });
  const flows = useMemo(() => {
    const s = spec.data?.specVersion?.spec as { flows?: { id?: unknown }[] } | undefined;
    return (s?.flows ?? []).map((f) => f.id).filter((id): id is string => typeof id === "string");
  }, [spec.data]);
  const [chosen, setChosen] = useState<string | null>(null);
  const flowId = chosen ?? flows[0] ?? null;
  const [{ data, fetching, error }] = useQuery({ query: FunnelQuery, variables: { botId, days, flowId: flowId ?? "" }, pause: !flowId });
  const rows = funnelRows(data?.analytics.funnel ?? []);
  return (
    <>
      <h2 className="row">
        Flow funnel
        {flows.length > 0 && (
          <select aria-label="Flow" value={flowId ?? ""} onChange={(e) => setChosen(e.target.value)} style={{ fontWeight: "normal" }}>
            {flows.map((f) => (
              <option key={f} value={f}>
                {f}
              </option>
            ))}
          </select>
        )}
      </h2>
      <ErrorBox error={error ?? spec.error} />
      {!flowId ? (
        <Empty>No flows: save a spec first.</Empty>
      ) : fetching && !data ? (
        <Loading />
      ) : (
        <div className="panel funnel" aria-label={`Funnel of ${flowId}`}>
          <p className="muted small" style={{ margin: 0 }}>
            Distinct chats that reached each stage of <b>{flowId}</b>.
          </p>
          {rows.map((r, i) => (
            <div key={i} className="bar" title={`${r.chats} chats · ${percent(r.ofStart)} of starts · ${percent(r.ofPrevious)} of the stage before`}>
              <span className="mono small">{r.label}</span>
              <div>
                <div className="fill" style={{ width: `${Math.max(r.ofStart * 100, 0.5)}%` }} />
              </div>
              <span className="n">{r.chats}</span>
            </div>
          ))}
        </div>
      )}
    </>
  );
}
