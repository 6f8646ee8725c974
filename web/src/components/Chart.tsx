/**
 * A uPlot chart that fills its container's width (ResizeObserver) — uPlot is small (~50 KB),
 * fast and draws time series well; days are x values in seconds (UTC midnight).
 */
import { useEffect, useRef } from "react";
import uPlot, { type AlignedData, type Options } from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Series {
  label: string;
  color: string;
  values: (number | null)[];
  /** bars instead of a line */
  bars?: boolean;
  format?: (v: number) => string;
}

function cssVar(name: string, fallback: string): string {
  if (typeof document === "undefined") return fallback;
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

export function Chart({ days, series, height = 180, yLabel }: { days: string[]; series: Series[]; height?: number; yLabel?: string }) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const xs = days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000);
    const data = [xs, ...series.map((s) => s.values)] as AlignedData;
    const axisColor = cssVar("--muted", "#78716c");
    const grid = cssVar("--line", "#e7e5e4");
    const fmt = series[0]?.format;
    const opts: Options = {
      width: Math.max(el.clientWidth, 200),
      height,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      scales: { x: { time: true }, y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
      axes: [
        { stroke: axisColor, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
        { stroke: axisColor, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 50, ...(yLabel ? { label: yLabel } : {}), ...(fmt ? { values: (_u, vals) => vals.map((v) => fmt(v)) } : {}) },
      ],
      series: [
        { label: "day", value: (_u, v) => (v == null ? "" : new Date(v * 1000).toISOString().slice(0, 10)) },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          fill: s.bars ? s.color + "66" : undefined,
          width: s.bars ? 0 : 2,
          spanGaps: false,
          points: { show: days.length < 40 },
          ...(s.format ? { value: (_u: uPlot, v: number | null) => (v == null ? "—" : s.format!(v)) } : {}),
          ...(s.bars ? { paths: uPlot.paths.bars!({ size: [0.6, 40] }) } : {}),
        })),
      ],
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
    };
    const plot = new uPlot(opts, data, el);
    const ro = new ResizeObserver(() => plot.setSize({ width: Math.max(el.clientWidth, 200), height }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, [days, series, height, yLabel]);
  return <div ref={host} />;
}
