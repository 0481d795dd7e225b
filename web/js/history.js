// The time control: shows a host's tree at any past time (a slider over the
// host's history and a date-time field), goes back to live in one click, and
// marks what changed between two times (started green, exited red and struck,
// changed facts named). The time shown and the start of the compared span
// live in the page's state (and so in the URL); this module only reads them
// and asks for changes through `actions`.

import { fetchChanges } from "./history-api.js";
import { ApiError } from "./api.js";
import { formatCommandLine, formatDateTime, formatTime, fromLocalInput, toLocalInput } from "./format.js";
import { el } from "./dom.js";

/** Spans offered for "changes in the last …", in ms. */
const SPANS = [
  ["", "No changes marked"],
  [String(60e3), "Changes: last minute"],
  [String(5 * 60e3), "Changes: last 5 min"],
  [String(15 * 60e3), "Changes: last 15 min"],
  [String(3600e3), "Changes: last hour"],
  [String(86400e3), "Changes: last day"],
  ["custom", "Changes since…"],
];
/** How often changes up to "now" are asked again while live. */
const LIVE_CHANGES_MS = 10_000;

/**
 * @param {HTMLElement} root   the time bar's container (#timebar)
 * @param {HTMLElement} rows   the tree's <tbody>, whose rows get marked
 * @param {object} actions     { showAt(ms|null), setSince(ms|null), select(key),
 *                               showExited(key, atMs): the tree just before a process exited }
 */
export function createTimeControl(root, rows, actions) {
  const live = el("button", "time-live", "Live");
  live.type = "button";
  live.id = "time-live";
  live.title = "Back to the live tree";
  const slider = el("input", "time-slider");
  slider.type = "range";
  slider.id = "time-slider";
  slider.step = "1";
  slider.setAttribute("aria-label", "Time shown");
  const field = el("input", "time-field");
  field.type = "datetime-local";
  field.id = "time-field";
  field.step = "1";
  field.setAttribute("aria-label", "Time shown (your local time)");
  const zone = el("span", "time-zone");
  const spans = el("select", "time-changes");
  spans.id = "changes-span";
  spans.setAttribute("aria-label", "Mark changes over");
  for (const [value, label] of SPANS) {
    const option = el("option", null, label);
    option.value = value;
    spans.append(option);
  }
  const sinceField = el("input", "time-field");
  sinceField.type = "datetime-local";
  sinceField.id = "changes-since";
  sinceField.step = "1";
  sinceField.setAttribute("aria-label", "Mark changes since (your local time)");
  const note = el("span", "time-note");
  note.id = "time-note";
  note.setAttribute("role", "status");
  const controls = el("div", "time-controls");
  controls.append(live, slider, field, zone, spans, sinceField, note);

  const panel = el("details", "changes");
  panel.id = "changes";
  const summary = el("summary", "changes-summary");
  const list = el("ul", "changes-list");
  panel.append(summary, list);
  panel.hidden = true;
  panel.open = true;
  root.append(controls, panel);

  let hostId = null;
  let at = null;
  let since = null;
  let maxMs = Date.now();
  let minMs = 0; // the oldest time kept
  let changes = null; // HostChanges shown, or null
  let asked = ""; // host|since|at of the request in flight or answered
  let askedAt = 0;
  let marks = new Map(); // row key -> "started" | "changed"

  live.addEventListener("click", () => actions.showAt(null));
  slider.addEventListener("input", () => {
    // Dragging shows where it would land; letting go goes there.
    field.value = toLocalInput(Number(slider.value) * 1000);
  });
  slider.addEventListener("change", () => {
    const ms = Number(slider.value) * 1000;
    actions.showAt(ms >= maxMs - 1000 ? null : ms);
  });
  field.addEventListener("change", () => {
    const ms = fromLocalInput(field.value);
    // A time typed before the oldest kept shows the oldest kept.
    if (ms != null) actions.showAt(Math.max(ms, minMs));
  });
  spans.addEventListener("change", () => {
    if (spans.value === "custom") {
      // A time of one's own: the field shows, starting an hour back.
      sinceField.hidden = false;
      actions.setSince(since ?? (at ?? maxMs) - 3600e3);
      return;
    }
    const span = Number(spans.value);
    actions.setSince(span ? (at ?? maxMs) - span : null);
  });
  sinceField.addEventListener("change", () => actions.setSince(fromLocalInput(sinceField.value)));
  list.addEventListener("click", (event) => {
    const item = event.target.closest("button[data-key]");
    if (!item) return;
    if (item.dataset.exitedAt) actions.showExited(item.dataset.key, Number(item.dataset.exitedAt));
    else actions.select(item.dataset.key);
  });

  // Rows are recycled as the tree scrolls (a row element takes another
  // process's key): mark each one whenever it is drawn for a process.
  const markRows = () => {
    for (const row of rows.querySelectorAll(".row[data-key]")) {
      const mark = marks.get(row.dataset.key);
      row.classList.toggle("change-started", mark === "started");
      row.classList.toggle("change-changed", mark === "changed");
    }
  };
  new MutationObserver(markRows).observe(rows, {
    childList: true,
    subtree: true,
    attributes: true,
    attributeFilter: ["data-key"],
  });

  /**
   * @param {object} state        the page's state
   * @param {object|null} host    HostSummary of the chosen host
   * @param {number} now          server time, ms
   */
  function render(state, host, now) {
    hostId = state.hostId;
    at = state.at;
    since = state.since;
    maxMs = now;
    root.hidden = hostId == null;
    if (!hostId) return;

    // As far back as snapshots are kept (the server's retention, or since
    // the host was first seen): before it there is nothing to show.
    const first = host ? Date.parse(host.history_from ?? host.first_seen) : now - 3600e3;
    const min = Math.min(first, now - 60e3, at ?? now);
    minMs = min;
    field.min = toLocalInput(min);
    slider.min = String(Math.floor(min / 1000));
    slider.max = String(Math.ceil(now / 1000));
    if (document.activeElement !== slider) slider.value = String(Math.round((at ?? now) / 1000));
    if (document.activeElement !== field) field.value = toLocalInput(at ?? now);
    field.max = toLocalInput(now);
    zone.textContent = formatTime(new Date(at ?? now)).split(" ").slice(1).join(" ");
    live.setAttribute("aria-pressed", String(at == null));
    document.body.classList.toggle("in-history", at != null);
    if (document.activeElement !== sinceField) sinceField.value = since == null ? "" : toLocalInput(since);
    const span = since == null ? "" : String((at ?? now) - since);
    spans.value = since == null ? "" : SPANS.some(([v]) => v === span) ? span : "custom";
    sinceField.hidden = spans.value !== "custom";

    const listing = state.listing;
    note.textContent =
      at == null
        ? ""
        : listing
          ? `As it was at ${formatDateTime(new Date(at))} (snapshot of ${formatTime(new Date(listing.collected_at))})`
          : `Loading the tree as it was at ${formatDateTime(new Date(at))}…`;

    loadChanges(now);
    renderChanges();
  }

  async function loadChanges(now) {
    if (since == null || hostId == null) {
      if (changes == null && marks.size === 0) return;
      changes = null;
      asked = "";
      setMarks(null);
      return;
    }
    const to = at ?? now;
    const key = `${hostId}|${since}|${at}`;
    // The past does not change; "now" moves on, so ask again now and then.
    if (key === asked && (at != null || now - askedAt < LIVE_CHANGES_MS)) return;
    asked = key;
    askedAt = now;
    // The two times in either order: changes after the earlier, up to the later.
    try {
      const answer = await fetchChanges(hostId, Math.min(since, to), Math.max(since, to));
      if (asked !== key) return;
      changes = answer;
      changes.error = null;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (asked !== key) return;
      changes = { started: [], exited: [], changed: [], error: error.message };
    }
    setMarks(changes);
    renderChanges();
  }

  function setMarks(answer) {
    marks = new Map();
    if (answer) {
      for (const c of answer.changed) marks.set(keyOf(c.after), "changed");
      for (const s of answer.started) marks.set(keyOf(s.process), "started");
    }
    markRows();
  }

  let drawn = null;
  function renderChanges() {
    panel.hidden = changes == null;
    if (!changes || drawn === changes) return;
    drawn = changes;
    const { started, exited, changed } = changes;
    summary.textContent = changes.error
      ? `Changes could not be read: ${changes.error}`
      : `Between ${formatDateTime(new Date(changes.from))} and ${formatDateTime(new Date(changes.to))}: ${started.length} started · ${exited.length} exited · ` +
        `${changed.length} changed${changes.truncated ? " (first 1000 only)" : ""}`;
    const items = [];
    for (const s of started) items.push([s.at, item("started", s.process, s.at, "started")]);
    for (const e of exited) items.push([e.at, item("exited", e.process, e.at, "exited")]);
    for (const c of changed) items.push([c.at, changedItem(c)]);
    items.sort((a, b) => Date.parse(a[0]) - Date.parse(b[0]));
    list.replaceChildren(...items.map(([, li]) => li));
  }

  return { render };
}

/** A process's key in the tree (tree.js processKey). */
function keyOf(facts) {
  return `${facts.pid}@${facts.start_time}`;
}

function item(kind, facts, when, verb) {
  const li = el("li", `change change-${kind}`);
  const button = el("button", "link change-name", `${facts.name} (${facts.pid})`);
  button.type = "button";
  button.dataset.key = keyOf(facts);
  if (kind === "exited") {
    // Not in the tree any more: show the tree just before it went.
    button.dataset.exitedAt = String(Date.parse(when) - 1000);
    button.title = "Show the tree just before it exited";
  }
  const cmd = formatCommandLine(facts.cmd);
  li.append(
    el("span", "change-kind", verb),
    button,
    el("span", "change-when", formatTime(new Date(when))),
    el("span", "change-detail", [facts.user, cmd].filter(Boolean).join(" · ")),
  );
  return li;
}

function changedItem(change) {
  const { before, after } = change;
  const li = el("li", "change change-changed");
  const button = el("button", "link change-name", `${after.name} (${after.pid})`);
  button.type = "button";
  button.dataset.key = keyOf(after);
  const facts = [];
  const differ = (label, a, b) => {
    if (a !== b) facts.push(`${label}: ${a || "none"} → ${b || "none"}`);
  };
  differ("name", before.name, after.name);
  differ("user", before.user ?? "", after.user ?? "");
  differ("parent", String(before.parent_pid ?? ""), String(after.parent_pid ?? ""));
  differ("exe", before.exe ?? "", after.exe ?? "");
  differ("command line", formatCommandLine(before.cmd), formatCommandLine(after.cmd));
  li.append(
    el("span", "change-kind", "changed"),
    button,
    el("span", "change-when", formatTime(new Date(change.at))),
    el("span", "change-detail", facts.join("; ")),
  );
  return li;
}
