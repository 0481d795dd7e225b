// Charts of the selected process over a chosen span (15 min, 1 h, 1 day,
// 7 days), drawn with uPlot: an average line, and a band from minimum to
// maximum where a point stands for many samples (roll-ups). Also small
// sparklines for the host's meters. Every chart keeps the values it draws in
// its `data-points` attribute, [time s, avg, min, max] per point, so what is
// drawn can be checked.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { fetchProcessSeries } from "./history-api.js";
import { ApiError } from "./api.js";
import { formatBytes, formatCpu, formatDateTime, zoneName } from "./format.js";
import { el } from "./dom.js";

export const RANGES = [
  ["15m", "15 min", 15 * 60e3],
  ["1h", "1 h", 3600e3],
  ["1d", "1 day", 86400e3],
  ["7d", "7 days", 7 * 86400e3],
];
/** How often a chart that ends "now" is asked again. */
const REFRESH_MS = 10_000;

const CHARTS = [
  { metric: "cpu_percent", title: "CPU %", format: (v) => formatCpu(v), color: "#f59e0b" },
  { metric: "memory_rss_bytes", title: "Memory (resident)", format: formatBytes, color: "#2563eb" },
];

/** Reads a CSS custom property of the page (the theme's colours). */
function cssVar(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

/**
 * The charts section of the details pane, appended to `pane`.
 * @returns {{ render(hostId, process, at, now) }}
 */
export function createProcessCharts(pane) {
  const section = el("section", "charts");
  section.id = "process-charts";
  section.setAttribute("aria-label", "History of this process");
  const head = el("div", "charts-head");
  const heading = el("h3", "charts-title", "History");
  const ranges = el("div", "chart-ranges");
  ranges.setAttribute("role", "group");
  ranges.setAttribute("aria-label", "Span");
  for (const [id, label] of RANGES) {
    const b = el("button", "chart-range", label);
    b.type = "button";
    b.dataset.range = id;
    ranges.append(b);
  }
  head.append(heading, ranges);
  const status = el("p", "charts-status");
  section.append(head, status);
  const charts = CHARTS.map((spec) => {
    const box = el("div", "chart");
    box.dataset.metric = spec.metric;
    const title = el("div", "chart-title", spec.title);
    const plotBox = el("div", "chart-plot");
    box.append(title, plotBox);
    section.append(box);
    return { spec, box, plotBox, plot: null, title };
  });
  pane.append(section);

  let range = "1h";
  let shownKey = "";
  let fetchedAt = 0;
  let current = null; // { hostId, process, at }

  ranges.addEventListener("click", (event) => {
    const b = event.target.closest("button[data-range]");
    if (!b) return;
    range = b.dataset.range;
    shownKey = "";
    if (current) render(current.hostId, current.process, current.at, current.now);
  });
  new ResizeObserver(() => {
    for (const c of charts) {
      if (c.plot) c.plot.setSize(size(c.plotBox));
    }
  }).observe(section);

  function render(hostId, process, at, now) {
    current = { hostId, process, at, now };
    for (const b of ranges.children) b.setAttribute("aria-pressed", String(b.dataset.range === range));
    if (!hostId || !process) return;
    const key = `${hostId}|${process.pid}@${process.start_time}|${range}|${at}`;
    if (key === shownKey && (at != null || now - fetchedAt < REFRESH_MS)) return;
    shownKey = key;
    fetchedAt = now;
    load(key, hostId, process, at ?? now);
  }

  async function load(key, hostId, process, to) {
    const span = RANGES.find(([id]) => id === range)[2];
    const from = to - span;
    let series;
    try {
      series = await fetchProcessSeries(hostId, process.pid, process.start_time, from, to, 500);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (key === shownKey) status.textContent = `History could not be read: ${error.message}`;
      return;
    }
    if (key !== shownKey) return;
    const resolution = { raw: "every sample", minute: "one-minute roll-ups", hour: "one-hour roll-ups" }[series.resolution] ?? series.resolution;
    status.textContent = series.points.length
      ? `${formatDateTime(new Date(from))} to ${formatDateTime(new Date(to))}, ${resolution}`
      : "No samples of this process in this span.";
    for (const c of charts) draw(c, series, from, to);
  }

  function draw(chart, series, from, to) {
    const index = series.metrics.indexOf(chart.spec.metric);
    const xs = [];
    const avg = [];
    const min = [];
    const max = [];
    for (const p of series.points) {
      xs.push(Date.parse(p.at) / 1000);
      avg.push(p.avg[index] ?? null);
      min.push(p.min[index] ?? null);
      max.push(p.max[index] ?? null);
    }
    chart.box.dataset.points = JSON.stringify(xs.map((x, i) => [x, avg[i], min[i], max[i]]));
    chart.box.dataset.resolution = series.resolution;
    const data = [xs, max, min, avg];
    const scale = { x: { time: true, min: from / 1000, max: to / 1000 } };
    if (chart.plot && chart.plot.__metricSpan === `${from}|${to}`) {
      chart.plot.setData(data, false);
      chart.plot.setScale("x", { min: from / 1000, max: to / 1000 });
      return;
    }
    chart.plot?.destroy();
    chart.plotBox.replaceChildren();
    const color = chart.spec.color;
    const reading = (u, v) => (v == null ? "–" : chart.spec.format(v));
    const fg = cssVar("--fg-soft", "#5b6474");
    const grid = cssVar("--border", "#dde1e7");
    const axis = (values) => {
      const a = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
      if (values) a.values = values;
      return a;
    };
    chart.plot = new uPlot(
      {
        ...size(chart.plotBox),
        scales: { ...scale, y: { range: (u, lo, hi) => [0, Math.max(hi * 1.1, chart.spec.metric === "cpu_percent" ? 1 : 1024)] } },
        // The legend reads out the values under the pointer.
        legend: { show: true, live: true },
        cursor: { points: { size: 5 } },
        axes: [
          axis(null),
          { ...axis((u, ticks) => ticks.map((v) => chart.spec.format(v))), size: 64 },
        ],
        series: [
          { label: "at", value: (u, v) => (v == null ? "" : formatDateTime(new Date(v * 1000))) },
          { label: "max", stroke: "transparent", points: { show: false }, value: reading },
          { label: "min", stroke: "transparent", points: { show: false }, value: reading },
          { label: "avg", stroke: color, width: 1.5, points: { show: (u) => u.data[0].length < 3 }, value: reading },
        ],
        bands: [{ series: [1, 2], fill: `${color}33` }],
      },
      data,
      chart.plotBox,
    );
    chart.plot.__metricSpan = `${from}|${to}`;
    chart.title.title = `Times in ${zoneName(new Date(to))}`;
  }

  return { render };
}

function size(box) {
  const width = Math.max(160, Math.floor(box.clientWidth || box.parentElement?.clientWidth || 300));
  return { width, height: 130 };
}

/**
 * A sparkline: a line of values over time, no axes, in `box`. From zero up
 * to at least `max` (a share of a whole: CPU, memory), or, with
 * `fromZero: false`, fitted to the values (counts that move little).
 * @returns {{ set(times: number[] (ms), values: (number|null)[], max?: number) }}
 */
export function createSparkline(box, color, { fromZero = true } = {}) {
  let plot = null;
  let top = 0; // the scale's least top, read by the range function at each redraw
  function set(times, values, max) {
    top = max ?? 0;
    const data = [times.map((t) => t / 1000), values];
    box.dataset.points = String(values.length);
    const width = Math.max(60, box.clientWidth || 120);
    if (plot && plot.width !== width) {
      plot.destroy();
      plot = null;
    }
    if (plot) {
      plot.setData(data);
      return;
    }
    box.replaceChildren();
    plot = new uPlot(
      {
        width,
        height: 20,
        pxAlign: false,
        cursor: { show: false },
        select: { show: false },
        legend: { show: false },
        scales: {
          x: { time: false },
          y: {
            range: (u, lo, hi) => {
              if (fromZero) return [0, Math.max(top, hi ?? 0, 1e-9)];
              const pad = Math.max(1, ((hi ?? 0) - (lo ?? 0)) * 0.2);
              return [Math.max(0, (lo ?? 0) - pad), (hi ?? 0) + pad];
            },
          },
        },
        axes: [{ show: false }, { show: false }],
        series: [{}, { stroke: color, width: 1.25, fill: `${color}22`, points: { show: false } }],
      },
      data,
      box,
    );
  }
  return { set };
}
