// The details pane: everything known about the selected process. The fields
// are built once and their text updated on each refresh, so a person can
// select and copy a command line while the page keeps refreshing.

import { METRICS, detailText } from "./fields.js";
import { formatCommandLine, formatDateTime, formatDuration, formatStatus } from "./format.js";

// Facts first, then every number (fields.js), then the long texts.
const FIELDS = [
  ["pid", "PID"],
  ["parent", "Parent"],
  ["children", "Children"],
  ["user", "User"],
  ["status", "Status"],
  ["started", "Started"],
  ...METRICS.map((m) => [m.column, m.label]),
  ["exe", "Executable"],
  ["cmd", "Command line"],
];

/**
 * @param {HTMLElement} pane
 * @param {object} actions  { select(key), close() }
 * @returns {{ render(node, process, tree, now), actionsBox: HTMLElement }}
 */
export function createDetails(pane, actions) {
  const heading = document.createElement("h2");
  heading.className = "details-title";
  heading.id = "details-title";
  const close = document.createElement("button");
  close.type = "button";
  close.className = "details-close";
  close.setAttribute("aria-label", "Close details");
  close.textContent = "×";
  close.addEventListener("click", () => actions.close());
  const note = document.createElement("p");
  note.className = "details-note";
  const list = document.createElement("dl");
  list.className = "details-list";
  const values = {};
  for (const [field, label] of FIELDS) {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.className = `field-${field}`;
    list.append(dt, dd);
    values[field] = dd;
  }
  const header = document.createElement("div");
  header.className = "details-header";
  header.append(heading, close);
  // What may be done to the process (actions.js fills it), above its facts.
  const actionsBox = document.createElement("div");
  actionsBox.className = "details-actions";
  pane.append(header, note, actionsBox, list);
  pane.setAttribute("aria-labelledby", heading.id);

  values.parent.addEventListener("click", (event) => {
    const link = event.target.closest("button[data-key]");
    if (link) actions.select(link.dataset.key);
  });

  /**
   * @param {object|null} node     the selected TreeNode, or null if it exited
   * @param {object|null} process  the selected process as last seen
   * @param {object|null} tree     the current tree
   * @param {number} now           server time, ms
   */
  function render(node, process, tree, now) {
    pane.hidden = process == null;
    if (process == null) return;
    const p = node ? node.process : process;
    heading.textContent = p.name;
    note.textContent = node ? "" : "This process has exited; these are its last known figures.";
    note.hidden = node != null;

    const startMs = Date.parse(p.start_time);
    set(values.pid, String(p.pid));
    renderParent(values.parent, node, p, tree);
    set(
      values.children,
      node ? `${node.children.length} direct, ${node.descendants} in all` : "",
    );
    set(values.user, p.user ?? "not readable");
    set(values.status, formatStatus(p.status));
    set(
      values.started,
      `${formatDateTime(new Date(startMs))} (running ${formatDuration((now - startMs) / 1000)})`,
    );
    for (const metric of METRICS) set(values[metric.column], detailText(metric, p));
    set(values.exe, p.exe ?? "not readable");
    set(values.cmd, p.cmd?.length ? formatCommandLine(p.cmd) : "not readable");
  }

  return { render, actionsBox };
}

// The tree's parent when it has one; otherwise why the reported parent pid
// is not shown as one.
function renderParent(dd, node, p, tree) {
  if (p.parent_pid == null) {
    set(dd, "none");
    return;
  }
  const parent = node?.parent;
  if (parent) {
    const key = `link:${parent.key}:${parent.process.name}`;
    if (dd.dataset.shown === key) return;
    const link = document.createElement("button");
    link.type = "button";
    link.className = "link";
    link.dataset.key = parent.key;
    link.textContent = `${parent.process.name} (${parent.process.pid})`;
    dd.replaceChildren(link);
    dd.dataset.shown = key;
    return;
  }
  let reason = "exited";
  const holder = tree && [...tree.nodes.values()].find((n) => n.process.pid === p.parent_pid);
  if (holder && holder.process !== p) {
    reason = Date.parse(holder.process.start_time) > Date.parse(p.start_time)
      ? "exited; its pid now belongs to a newer process"
      : "parent link ignored: it loops back to this process";
  } else if (holder) {
    reason = "its own parent";
  }
  set(dd, `pid ${p.parent_pid} (${reason})`);
}

function set(element, text) {
  if (element.dataset.shown === text && element.firstChild?.nodeType === Node.TEXT_NODE) return;
  element.textContent = text;
  element.dataset.shown = text;
}
