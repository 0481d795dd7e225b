// Draws the process tree as table rows. It is given the rows to show (from
// tree.js visibleRows) and makes the table match them: a row element is kept
// per process (pid@start) and reused across refreshes, so expansion, focus
// and scroll position survive and only changed text is touched.
// Values from a machine are only ever set with textContent or attributes.

import { formatBytes, formatCpu, formatDateTime } from "./format.js";

/**
 * @param {HTMLTableSectionElement} body  the <tbody> to fill
 * @param {HTMLElement} scroller          the element that scrolls the table
 * @param {object} actions  { toggle(key, expand?), select(key) }
 */
export function createTreeView(body, scroller, actions) {
  const rowsByKey = new Map();
  let shown = []; // the TreeRow list last rendered, for keyboard moves
  let selectedKey = null;

  body.addEventListener("click", (event) => {
    const tr = event.target.closest("tr[data-key]");
    if (!tr) return;
    if (event.target.closest("button.toggle")) {
      actions.toggle(tr.dataset.key);
      return;
    }
    actions.select(tr.dataset.key);
  });
  body.addEventListener("dblclick", (event) => {
    const tr = event.target.closest("tr[data-key]");
    if (tr && !event.target.closest("button.toggle")) actions.toggle(tr.dataset.key);
  });
  scroller.addEventListener("keydown", (event) => onKey(event));

  // Arrow keys move the selection, Left/Right fold and unfold, as in a file tree.
  function onKey(event) {
    if (event.altKey || event.ctrlKey || event.metaKey || shown.length === 0) return;
    const index = shown.findIndex((row) => row.node.key === selectedKey);
    const row = shown[index];
    const go = (i) => {
      const target = shown[Math.max(0, Math.min(shown.length - 1, i))];
      actions.select(target.node.key);
      rowsByKey.get(target.node.key)?.tr.scrollIntoView({ block: "nearest" });
    };
    const page = Math.max(1, Math.floor(scroller.clientHeight / 24) - 1);
    switch (event.key) {
      case "ArrowDown": go(index + 1); break;
      case "ArrowUp": go(index < 0 ? 0 : index - 1); break;
      case "PageDown": go(index + page); break;
      case "PageUp": go(index - page); break;
      case "Home": go(0); break;
      case "End": go(shown.length - 1); break;
      case "ArrowRight":
        if (!row) return;
        if (row.hasChildren && !row.expanded) actions.toggle(row.node.key, true);
        else if (row.expanded) go(index + 1);
        break;
      case "ArrowLeft":
        if (!row) return;
        if (row.expanded) actions.toggle(row.node.key, false);
        else if (row.node.parent) go(shown.findIndex((r) => r.node === row.node.parent));
        break;
      case "Enter":
      case " ":
        if (!row || !row.hasChildren) return;
        actions.toggle(row.node.key);
        break;
      default:
        return;
    }
    event.preventDefault();
  }

  /**
   * Makes the table show `rows`.
   * @param {object[]} rows       TreeRow list, top to bottom
   * @param {Map} nodes           every node of the current tree (to forget exited ones)
   * @param {string|null} selected key of the selected process
   */
  function render(rows, nodes, selected) {
    shown = rows;
    selectedKey = selected;
    let cursor = body.firstChild;
    for (const row of rows) {
      let entry = rowsByKey.get(row.node.key);
      if (!entry) {
        entry = makeRow(row.node.key);
        rowsByKey.set(row.node.key, entry);
      }
      fill(entry, row, row.node.key === selected);
      if (entry.tr !== cursor) body.insertBefore(entry.tr, cursor);
      else cursor = cursor.nextSibling;
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
    // Rows of processes that have exited are dropped; rows merely folded away
    // are kept for when their parent opens again.
    for (const key of rowsByKey.keys()) {
      if (!nodes.has(key)) rowsByKey.delete(key);
    }
  }

  /** Forgets every row (another host was chosen). */
  function reset() {
    rowsByKey.clear();
    body.replaceChildren();
    shown = [];
  }

  return { render, reset };
}

function makeRow(key) {
  const tr = document.createElement("tr");
  tr.dataset.key = key;
  tr.setAttribute("role", "row");
  const cell = (className) => {
    const td = document.createElement("td");
    td.className = className;
    td.setAttribute("role", "gridcell");
    tr.append(td);
    return td;
  };
  const nameCell = cell("col-name");
  const toggle = document.createElement("button");
  toggle.type = "button";
  toggle.className = "toggle";
  toggle.tabIndex = -1; // the tree is one tab stop; the keyboard works through arrows
  const name = document.createElement("span");
  name.className = "name";
  const folded = document.createElement("span");
  folded.className = "folded-count";
  nameCell.append(toggle, name, folded);
  const cells = {
    pid: cell("col-pid num"),
    user: cell("col-user"),
    cpu: cell("col-cpu num"),
    memory: cell("col-memory num"),
    threads: cell("col-threads num"),
    started: cell("col-started num"),
  };
  return { tr, nameCell, toggle, name, folded, cells, last: {} };
}

function fill(entry, row, selected) {
  const { node, depth, hasChildren, expanded, matched, searching } = row;
  const p = node.process;
  const { tr, last } = entry;

  if (last.depth !== depth) {
    entry.nameCell.style.setProperty("--depth", depth);
    tr.setAttribute("aria-level", depth + 1);
    last.depth = depth;
  }
  const toggleState = hasChildren ? String(expanded) : "none";
  if (last.toggleState !== toggleState || last.name !== p.name) {
    entry.toggle.hidden = !hasChildren;
    if (hasChildren) {
      entry.toggle.setAttribute("aria-expanded", String(expanded));
      entry.toggle.setAttribute("aria-label", `${expanded ? "Collapse" : "Expand"} ${p.name}`);
      tr.setAttribute("aria-expanded", String(expanded));
    } else {
      entry.toggle.removeAttribute("aria-expanded");
      tr.removeAttribute("aria-expanded");
    }
    last.toggleState = toggleState;
  }
  if (last.searching !== searching) {
    entry.toggle.disabled = searching;
    last.searching = searching;
  }
  setText(entry, "name", entry.name, p.name);
  setText(entry, "folded", entry.folded, hasChildren && !expanded ? `+${node.descendants}` : "");
  const tooltip = p.cmd?.length ? p.cmd.join(" ") : p.exe ?? p.name;
  if (last.tooltip !== tooltip) {
    entry.name.title = tooltip;
    last.tooltip = tooltip;
  }

  setText(entry, "pid", entry.cells.pid, String(p.pid));
  setText(entry, "user", entry.cells.user, p.user ?? "");
  setText(entry, "cpu", entry.cells.cpu, formatCpu(p.cpu_percent));
  setText(entry, "memory", entry.cells.memory, formatBytes(p.memory_rss_bytes));
  setText(entry, "threads", entry.cells.threads, p.threads == null ? "" : String(p.threads));
  setText(entry, "started", entry.cells.started, formatDateTime(new Date(node.startMs)));

  // Heat: 0 at idle, full at one busy core, like Process Explorer's CPU tint.
  const heat = Math.min(1, Math.max(0, (p.cpu_percent ?? 0) / 100)).toFixed(2);
  if (last.heat !== heat) {
    entry.cells.cpu.style.setProperty("--heat", heat);
    entry.cells.cpu.classList.toggle("idle", heat === "0.00");
    last.heat = heat;
  }
  if (last.selected !== selected) {
    tr.classList.toggle("selected", selected);
    tr.setAttribute("aria-selected", String(selected));
    last.selected = selected;
  }
  if (last.matched !== matched) {
    tr.classList.toggle("context", !matched);
    last.matched = matched;
  }
}

function setText(entry, field, element, text) {
  if (entry.last[field] === text) return;
  element.textContent = text;
  entry.last[field] = text;
}
