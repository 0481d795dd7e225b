// The host list: one button per host with its name, OS, labels, online state,
// how many alerts fire on it, when it was last heard from, and its totals with
// CPU and memory bars; for an admin,
// an offline host also has a button to remove it. A filter box and a sort
// order sit above it. Items are reused across refreshes and every value from
// a machine is set as text.

import { formatAgo, formatBytes, formatDateTime, formatPercent } from "./format.js";

/** The host's CPU use as a share of the machine, 0 to 100. */
const cpuShare = (s) => s.cpu_percent_total / Math.max(1, s.host.cpu_count);
/** Resident memory as a share of the machine's, 0 to 100 (0 when unknown). */
const memoryShare = (s) =>
  s.host.memory_total_bytes ? (100 * s.memory_rss_total_bytes) / s.host.memory_total_bytes : 0;

const SORTS = {
  name: ["name", (a, b) => a.display_name.localeCompare(b.display_name)],
  cpu: ["CPU", (a, b) => cpuShare(b) - cpuShare(a)],
  memory: ["memory", (a, b) => memoryShare(b) - memoryShare(a) || b.memory_rss_total_bytes - a.memory_rss_total_bytes],
  seen: ["last seen", (a, b) => Date.parse(b.last_seen) - Date.parse(a.last_seen)],
};

/**
 * @param {HTMLElement} list   the <ul> to fill
 * @param {(hostId: string) => void} onSelect
 * @param {(hostId: string) => void} onRemove
 */
export function createHostList(list, onSelect, onRemove) {
  const items = new Map(); // host id -> { li, button, remove, fields }

  const controls = document.createElement("div");
  controls.className = "host-controls";
  const filter = document.createElement("input");
  filter.type = "search";
  filter.id = "host-filter";
  filter.placeholder = "Filter hosts";
  filter.setAttribute("aria-label", "Filter hosts by name, OS, label or id");
  filter.autocomplete = "off";
  filter.spellcheck = false;
  const sort = document.createElement("select");
  sort.id = "host-sort";
  sort.setAttribute("aria-label", "Sort hosts by");
  for (const [value, [label]] of Object.entries(SORTS)) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = `by ${label}`;
    sort.append(option);
  }
  controls.append(filter, sort);
  list.before(controls);
  let last = null; // the arguments of the last render, to redraw on a new filter
  const redraw = () => last && render(...last);
  filter.addEventListener("input", redraw);
  sort.addEventListener("change", redraw);

  list.addEventListener("click", (event) => {
    const remove = event.target.closest("button[data-remove-host]");
    if (remove) {
      onRemove(remove.dataset.removeHost);
      return;
    }
    const button = event.target.closest("button[data-host-id]");
    if (button) onSelect(button.dataset.hostId);
  });

  function makeItem(hostId) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "host";
    button.dataset.hostId = hostId;
    const part = (className, parent = button) => {
      const span = document.createElement("span");
      span.className = className;
      parent.append(span);
      return span;
    };
    const top = part("host-top");
    const fields = {
      name: part("host-name", top),
      alerts: part("badge badge-alerts", top),
      badge: part("badge", top),
      os: part("host-os"),
      labels: part("host-labels"),
      stats: part("host-stats"),
      bars: part("host-bars"),
      seen: part("host-seen"),
    };
    fields.cpuBar = part("host-bar host-bar-cpu", fields.bars);
    fields.memoryBar = part("host-bar host-bar-memory", fields.bars);
    // Beside the host's button, not in it: a button holds no other button.
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "host-remove quiet";
    remove.dataset.removeHost = hostId;
    remove.textContent = "Remove";
    remove.hidden = true;
    li.className = "host-item";
    li.append(button, remove);
    return { li, button, remove, fields };
  }

  /**
   * Shows `hosts` (HostSummary[]), marking `selectedId`; `now` is server time
   * in ms; `canRemove` (an admin) offers to remove offline hosts; `firing`
   * is a Map of host id to its firing alerts (alert-feed.js firingByHost).
   */
  function render(hosts, selectedId, now, canRemove, firing = new Map()) {
    last = [hosts, selectedId, now, canRemove, firing];
    // A fleet of one needs neither filter nor order.
    controls.hidden = hosts.length < 2;
    const needle = filter.value.trim().toLowerCase();
    const shown = hosts
      .filter((s) => !needle || [s.display_name, s.host.id, s.host.os_name, s.host.os_version, ...(s.host.labels ?? [])]
        .some((t) => String(t ?? "").toLowerCase().includes(needle)))
      .sort(SORTS[sort.value][1]);
    list.dataset.shown = String(shown.length);
    const seen = new Set();
    let cursor = list.firstChild;
    for (const summary of shown) {
      const id = summary.host.id;
      seen.add(id);
      let item = items.get(id);
      if (!item) {
        item = makeItem(id);
        items.set(id, item);
      }
      fill(item, summary, id === selectedId, now, firing.get(id) ?? []);
      item.remove.hidden = !(canRemove && !summary.online);
      item.remove.setAttribute("aria-label", `Remove ${summary.display_name}`);
      if (item.li !== cursor) list.insertBefore(item.li, cursor);
      else cursor = cursor.nextSibling;
    }
    for (const [id, item] of items) {
      if (!seen.has(id)) {
        item.li.remove();
        items.delete(id);
      }
    }
  }

  return { render };
}

function fill({ button, fields }, summary, selected, now, alerts) {
  const { host } = summary;
  setText(fields.name, summary.display_name);
  button.title = `${summary.display_name} (id ${host.id})`;
  setText(fields.alerts, alerts.length ? `${alerts.length} firing` : "");
  fields.alerts.hidden = alerts.length === 0;
  fields.alerts.title = alerts.map((a) => `${a.severity}: ${a.rule_name}`).join("\n");
  fields.alerts.dataset.severity = alerts.some((a) => a.severity === "critical")
    ? "critical"
    : alerts.some((a) => a.severity === "warning") ? "warning" : "info";
  button.classList.toggle("alerting", alerts.length > 0);
  setText(fields.badge, summary.online ? "online" : "offline");
  fields.badge.className = `badge ${summary.online ? "badge-online" : "badge-offline"}`;
  setText(fields.os, [host.os_name, host.os_version, host.arch].filter(Boolean).join(" · "));
  labels(fields.labels, host.labels ?? []);

  // The total is in "100 = one core" units; per machine it reads better as a share.
  const cpu = cpuShare(summary);
  const memory = host.memory_total_bytes
    ? `${formatBytes(summary.memory_rss_total_bytes)} / ${formatBytes(host.memory_total_bytes)}`
    : formatBytes(summary.memory_rss_total_bytes);
  setText(
    fields.stats,
    `${summary.process_count} processes · CPU ${formatPercent(cpu)} · ${memory}`,
  );
  bar(fields.cpuBar, cpu, `CPU ${formatPercent(cpu)} of the machine`);
  bar(fields.memoryBar, memoryShare(summary), `Memory ${formatPercent(memoryShare(summary))} of the machine`);
  const seenAt = new Date(summary.last_seen);
  setText(fields.seen, `last seen ${formatAgo(seenAt.getTime(), now)}`);
  fields.seen.title = formatDateTime(seenAt);
  button.setAttribute("aria-current", selected ? "true" : "false");
  button.classList.toggle("offline", !summary.online);
}

/** The host's labels as chips; redrawn only when they changed. */
function labels(element, given) {
  const text = given.join(",");
  element.hidden = given.length === 0;
  if (element.dataset.labels === text) return;
  element.dataset.labels = text;
  element.setAttribute("aria-label", `labels: ${given.join(", ")}`);
  element.replaceChildren(...given.map((label) => {
    const chip = document.createElement("span");
    chip.className = "host-label";
    chip.textContent = label;
    return chip;
  }));
}

function bar(element, percent, label) {
  const fill = Math.min(1, Math.max(0, percent / 100)).toFixed(3);
  if (element.style.getPropertyValue("--fill") !== fill) element.style.setProperty("--fill", fill);
  element.title = label;
  element.setAttribute("aria-label", label);
}

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}
