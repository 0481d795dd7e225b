// The chosen host at a glance: CPU (and each core when the agent sends it),
// memory used and available, swap, load average, uptime and process count,
// each with a sparkline of the last hour. Points come from the server's
// load points (GET /api/live/load/), asked every few seconds, or pushed by
// the live stream through onLoad(); any part of the hour they lack comes
// from stored history (GET /api/history/host/), which has CPU, memory and
// process count only. While the page shows a past time,
// the meters show the hour before it, from stored history.

import { ApiError } from "./api.js";
import { createSparkline } from "./charts.js";
import { fetchHostSeries, fetchLoad } from "./history-api.js";
import { formatBytes, formatDuration, formatPercent, formatTime } from "./format.js";
import { el } from "./dom.js";

const HOUR_MS = 3600e3;
const POLL_MS = 5000;
/** How often the older part of the hour is asked of stored history. */
const BACKFILL_MS = 60_000;

const METERS = [
  ["cpu", "CPU", "#f59e0b"],
  ["memory", "Memory", "#2563eb"],
  ["swap", "Swap", "#7c3aed"],
  ["load", "Load", "#0891b2"],
  ["uptime", "Uptime", null],
  ["processes", "Processes", "#16a34a"],
];

let active = null;

/**
 * A load point pushed by the live stream for `hostId`; ignored unless that
 * host is shown. Shaped as in GET /api/live/load/: `{ at, load }` (the
 * batch's time and HostLoad) is enough; `cpu_percent`, `memory_rss_bytes`
 * and `processes` (the sums over the host's processes) are taken from the
 * previous point when absent.
 */
export function onLoad(hostId, point) {
  active?.push(hostId, point);
}

/**
 * @param {HTMLElement} root  the meters' container (#meters)
 * @param {{ after?: Promise }} options  the meters start once `after` settles
 * @returns {{ render(hostId, summary, now) }}
 */
export function createMeters(root, { after = Promise.resolve() } = {}) {
  const cards = {};
  for (const [id, label, color] of METERS) {
    const card = el("div", "meter");
    card.dataset.meter = id;
    const top = el("div", "meter-top");
    top.append(el("span", "meter-label", label), el("span", "meter-value"));
    const sub = el("div", "meter-sub");
    card.append(top, sub);
    const entry = { card, value: top.lastChild, sub };
    if (id === "cpu") {
      entry.cores = el("div", "meter-cores");
      entry.cores.setAttribute("aria-label", "CPU per core");
      card.append(entry.cores);
    }
    if (color) {
      const spark = el("div", "meter-spark");
      card.append(spark);
      entry.spark = createSparkline(spark, color, { fromZero: id !== "processes" });
    }
    cards[id] = entry;
    root.append(card);
  }

  let hostId = null;
  let summary = null;
  let live = []; // LoadPoint[] from this server's memory, oldest first
  let older = []; // points from stored history before `live` begins
  let timer = null;
  let at = null; // the past time shown (ms), or null: live
  let backfilledAt = 0;
  let lastNow = Date.now();

  async function poll() {
    clearTimeout(timer);
    const asked = hostId;
    if (!asked || at != null) return;
    try {
      const answer = await fetchLoad(asked);
      if (asked !== hostId) return;
      // Points pushed since (onLoad) are newer than the answer's: kept.
      const newest = answer.points.length ? Date.parse(answer.points[answer.points.length - 1].at) : -Infinity;
      live = [...answer.points, ...live.filter((p) => Date.parse(p.at) > newest)];
      lastNow = Date.parse(answer.now);
      await backfill(asked, lastNow);
      draw(lastNow);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      // The page's own poll says what is wrong with the connection.
    } finally {
      if (asked === hostId && at == null) timer = setTimeout(poll, document.hidden ? POLL_MS * 6 : POLL_MS);
    }
  }

  /** The hour before the past time shown, from stored history. */
  async function loadPast(asked, until) {
    try {
      const series = await fetchHostSeries(asked, until - HOUR_MS, until, 120);
      if (asked !== hostId || until !== at) return;
      older = fromSeries(series);
      draw(until);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
    }
  }

  async function backfill(asked, now) {
    const firstLive = live.length ? Date.parse(live[0].at) : now;
    if (firstLive <= now - HOUR_MS + 60e3 || now - backfilledAt < BACKFILL_MS) return;
    backfilledAt = now;
    try {
      const series = await fetchHostSeries(asked, now - HOUR_MS, firstLive - 1, 120);
      if (asked !== hostId) return;
      older = fromSeries(series);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
    }
  }

  function push(forHost, point) {
    if (forHost !== hostId || at != null) return;
    const previous = live[live.length - 1] ?? {};
    live.push({
      cpu_percent: previous.cpu_percent ?? 0,
      memory_rss_bytes: previous.memory_rss_bytes ?? 0,
      processes: previous.processes ?? 0,
      load: null,
      ...point,
    });
    const now = Date.parse(point.at);
    while (live.length && Date.parse(live[0].at) < now - HOUR_MS) live.shift();
    draw(Math.max(now, lastNow));
  }

  function draw(now) {
    const firstLive = live.length ? Date.parse(live[0].at) : Infinity;
    const points = [...older.filter((p) => Date.parse(p.at) < firstLive), ...live].filter(
      (p) => Date.parse(p.at) >= now - HOUR_MS,
    );
    root.dataset.points = String(points.length);
    const newest = points[points.length - 1] ?? null;
    const host = summary?.host;
    const cores = Math.max(1, host?.cpu_count ?? 1);
    const total = host?.memory_total_bytes ?? 0;
    const times = points.map((p) => Date.parse(p.at));
    const cpuOf = (p) => {
      const perCore = p.load?.cpu_per_core;
      if (perCore?.length) return perCore.reduce((a, b) => a + b, 0) / perCore.length;
      return p.load?.cpu_machine_percent ?? p.cpu_percent / cores;
    };
    const memoryOf = (p) => p.load?.memory_used_bytes ?? p.memory_rss_bytes;
    const load = newest?.load ?? null;
    // The host's own meters, where its agent sent them (history keeps them
    // from when the server began to: not for older times).
    const missing = at != null ? "none kept for this time" : "not sent by this agent";

    // CPU: the machine's share, 100 % = every core busy.
    let cpuSub = "";
    if (load?.cpu_per_core?.length) cpuSub = `${load.cpu_per_core.length} cores`;
    else if (load?.cpu_machine_percent != null) cpuSub = `whole machine, ${cores} cores`;
    else if (newest) cpuSub = `sum of processes, ${cores} cores`;
    set(cards.cpu, newest ? formatPercent(cpuOf(newest)) : "–", cpuSub);
    renderCores(cards.cpu.cores, load?.cpu_per_core ?? []);
    cards.cpu.spark.set(times, points.map(cpuOf), 100);

    // Memory: used and available as the host says, else what processes hold.
    if (load) {
      set(cards.memory, formatBytes(load.memory_used_bytes),
        `${formatBytes(load.memory_available_bytes)} available${total ? ` of ${formatBytes(total)}` : ""}`);
    } else {
      set(cards.memory, newest ? formatBytes(newest.memory_rss_bytes) : "–",
        newest ? `resident in processes${total ? ` of ${formatBytes(total)}` : ""}` : "");
    }
    cards.memory.spark.set(times, points.map(memoryOf), total || undefined);

    if (load && load.swap_total_bytes > 0) {
      set(cards.swap, formatBytes(load.swap_used_bytes), `of ${formatBytes(load.swap_total_bytes)}`);
    } else {
      set(cards.swap, load ? "none" : "–", load ? "no swap set up" : missing);
    }
    cards.swap.spark.set(times, points.map((p) => p.load?.swap_used_bytes ?? null), load?.swap_total_bytes || undefined);

    const averages = load?.load_average;
    set(cards.load, averages ? averages[0].toFixed(2) : "–",
      averages?.length === 3 ? `1, 5, 15 min: ${averages.map((v) => v.toFixed(2)).join(" · ")}`
        : averages ? "over 1 min" : load ? "none on this OS" : missing);
    cards.load.spark.set(times, points.map((p) => p.load?.load_average?.[0] ?? null), cores);

    const boot = host ? Date.parse(host.boot_time) : NaN;
    const booted = !Number.isNaN(boot) && boot <= now;
    set(cards.uptime, booted ? formatDuration((now - boot) / 1000) : "–",
      booted ? `booted ${formatTime(new Date(boot))}` : "");

    set(cards.processes, newest ? String(newest.processes) : "–", "");
    cards.processes.spark.set(times, points.map((p) => p.processes));
    root.dataset.at = at == null ? "live" : new Date(at).toISOString();
    root.title = at != null
      ? `The hour before ${formatTime(new Date(at))}, from stored history`
      : newest ? `Sparklines: the last hour · newest ${formatTime(new Date(newest.at))}` : "no load received in the last hour";
  }

  /**
   * @param {string|null} id   the chosen host
   * @param {object|null} host its HostSummary
   * @param {number} now       server time, ms
   * @param {number|null} past the past time shown (ms), or null: live
   */
  function render(id, host, now, past = null) {
    const arrived = summary == null && host != null;
    summary = host;
    root.hidden = id == null;
    if (id === hostId && past === at) {
      // The host's summary arrives once the page may read (signed in): ask now.
      if (arrived && id) after.then(poll);
      return;
    }
    hostId = id;
    at = past;
    live = [];
    older = [];
    backfilledAt = 0;
    lastNow = now;
    clearTimeout(timer);
    if (!id) return;
    after.then(() => {
      if (hostId !== id || at !== past) return;
      draw(at ?? now);
      if (at == null) poll();
      else loadPast(id, at);
    });
  }

  active = { push };
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && hostId) poll();
  });
  return { render };
}

/**
 * Host series points (GET /api/history/host/) as load points. The host's
 * own meters are there where its agent sent them; history keeps CPU as the
 * machine's share (not per core) and the one-minute load average only.
 */
function fromSeries(series) {
  const i = (name) => series.metrics.indexOf(name);
  const value = (p, name) => (i(name) < 0 ? null : p.avg[i(name)] ?? null);
  return series.points.map((p) => {
    const used = value(p, "memory_used_bytes");
    const load1 = value(p, "load_1m");
    return {
      at: p.at,
      cpu_percent: value(p, "cpu_percent") ?? 0,
      memory_rss_bytes: value(p, "memory_rss_bytes") ?? 0,
      processes: Math.round(value(p, "process_count") ?? 0),
      load: used == null ? null : {
        cpu_machine_percent: value(p, "cpu_machine_percent"),
        memory_used_bytes: used,
        memory_available_bytes: value(p, "memory_available_bytes") ?? 0,
        swap_used_bytes: value(p, "swap_used_bytes") ?? 0,
        swap_total_bytes: value(p, "swap_total_bytes") ?? 0,
        load_average: load1 == null ? null : [load1],
      },
    };
  });
}

function set(entry, value, sub) {
  if (entry.value.textContent !== value) entry.value.textContent = value;
  if (entry.sub.textContent !== sub) entry.sub.textContent = sub;
}

function renderCores(box, perCore) {
  while (box.children.length < perCore.length) box.append(el("span", "meter-core"));
  while (box.children.length > perCore.length) box.lastChild.remove();
  perCore.forEach((value, i) => {
    const bar = box.children[i];
    bar.style.setProperty("--fill", String(Math.min(1, Math.max(0, value / 100))));
    bar.title = `CPU ${i}: ${formatPercent(value)}`;
  });
  box.hidden = perCore.length === 0;
}
