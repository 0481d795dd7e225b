// Draws the process tree as table rows. It is given the rows to show (from
// tree.js visibleRows) and makes the table match them. Only the rows in and
// near the visible part of the table are in the DOM (spacer rows stand in for
// the rest), so a host with thousands of processes stays quick. A row element
// is kept per process (pid@start) and reused across refreshes, so only
// changed text is touched. Values from a machine are only ever set with
// textContent or attributes.

import { TABLE_METRICS, cellText } from "./fields.js";
import { formatDateTime } from "./format.js";

/** Rows drawn beyond each edge of the view, so a fast scroll shows no gap. */
const OVERSCAN = 30;

/**
 * @param {HTMLTableElement} table
 * @param {HTMLElement} scroller  the element that scrolls the table (on a
 *                                phone the window scrolls instead)
 * @param {object} actions  { toggle(key, expand?), select(key) }
 */
export function createTreeView(table, scroller, actions) {
  const body = table.tBodies[0];
  const rowsByKey = new Map();
  const topSpacer = makeSpacer();
  const bottomSpacer = makeSpacer();
  body.replaceChildren(topSpacer, bottomSpacer);
  let shown = []; // the TreeRow list last rendered, top to bottom
  let nodes = new Map();
  let selectedKey = null;
  let rowHeight = 0;

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

  // Scrolling shows other rows: draw them once per frame.
  let frame = 0;
  const redrawSoon = () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      drawWindow();
    });
  };
  scroller.addEventListener("scroll", redrawSoon, { passive: true });
  window.addEventListener("scroll", redrawSoon, { passive: true });
  window.addEventListener("resize", redrawSoon);

  // Arrow keys move the selection, Left/Right fold and unfold, as in a file tree.
  function onKey(event) {
    if (event.altKey || event.ctrlKey || event.metaKey || shown.length === 0) return;
    const index = shown.findIndex((row) => row.node.key === selectedKey);
    const row = shown[index];
    const go = (i) => {
      const target = Math.max(0, Math.min(shown.length - 1, i));
      actions.select(shown[target].node.key);
      scrollToIndex(target);
    };
    const page = Math.max(1, Math.floor(viewport().height / (rowHeight || 24)) - 1);
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
   * @param {object[]} rows        TreeRow list, top to bottom
   * @param {Map} treeNodes        every node of the current tree (to forget exited ones)
   * @param {string|null} selected key of the selected process
   */
  function render(rows, treeNodes, selected) {
    shown = rows;
    nodes = treeNodes;
    selectedKey = selected;
    // The header row counts as a row for assistive technology.
    table.setAttribute("aria-rowcount", String(rows.length + 1));
    // The name column widens with the deepest open row (see style.css).
    let maxDepth = 0;
    for (const row of rows) if (row.depth > maxDepth) maxDepth = row.depth;
    if (table.style.getPropertyValue("--max-depth") !== String(maxDepth)) {
      table.style.setProperty("--max-depth", String(maxDepth));
    }
    drawWindow();
    // Rows of processes that have exited are dropped; rows merely folded away
    // or scrolled out are kept for when they show again.
    for (const key of rowsByKey.keys()) {
      if (!nodes.has(key)) rowsByKey.delete(key);
    }
  }

  // The part of the screen where table rows can be seen, in viewport pixels.
  function viewport() {
    const box = scroller.getBoundingClientRect();
    const header = table.tHead ? table.tHead.getBoundingClientRect().height : 0;
    const top = Math.max(box.top + (scrollsItself() ? header : 0), 0);
    const bottom = Math.min(box.bottom, window.innerHeight);
    return { top, bottom, height: Math.max(0, bottom - top) };
  }

  function scrollsItself() {
    return scroller.scrollHeight > scroller.clientHeight + 1;
  }

  function drawWindow() {
    const height = rowHeight || 24;
    const view = viewport();
    const bodyTop = body.getBoundingClientRect().top;
    let first = Math.floor((view.top - bodyTop) / height) - OVERSCAN;
    let last = Math.ceil((view.bottom - bodyTop) / height) + OVERSCAN;
    first = Math.max(0, Math.min(first, shown.length));
    last = Math.max(first, Math.min(last, shown.length));
    if (last - first < OVERSCAN && shown.length > 0) {
      // Table scrolled out of sight: keep a few rows near where it was.
      last = Math.min(shown.length, first + OVERSCAN);
    }

    let cursor = topSpacer.nextSibling;
    for (let i = first; i < last; i += 1) {
      const row = shown[i];
      let entry = rowsByKey.get(row.node.key);
      if (!entry) {
        entry = makeRow(row.node.key);
        rowsByKey.set(row.node.key, entry);
      }
      fill(entry, row, i, row.node.key === selectedKey);
      if (entry.tr !== cursor) body.insertBefore(entry.tr, cursor);
      else cursor = cursor.nextSibling;
    }
    while (cursor !== bottomSpacer) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
    if (!rowHeight && last > first) {
      rowHeight = topSpacer.nextSibling.getBoundingClientRect().height || 0;
    }
    setSpacer(topSpacer, first * (rowHeight || height));
    setSpacer(bottomSpacer, (shown.length - last) * (rowHeight || height));
  }

  /**
   * Brings the row at `index` into view: scrolled just enough (moving through
   * the rows), or to the middle of the view (jumping to a row elsewhere, so
   * its surroundings show too).
   */
  function scrollToIndex(index, { center = false } = {}) {
    if (index < 0 || index >= shown.length) return;
    const height = rowHeight || 24;
    const view = viewport();
    const top = body.getBoundingClientRect().top + index * height;
    let delta = 0;
    if (top < view.top || top + height > view.bottom) {
      if (center) delta = top - (view.top + (view.height - height) / 2);
      else if (top < view.top) delta = top - view.top;
      else delta = top + height - view.bottom;
    }
    if (delta === 0) return;
    if (scrollsItself()) scroller.scrollTop += delta;
    else window.scrollBy(0, delta);
    drawWindow();
  }

  /** Scrolls the row of process `key` to the middle of the view, if it is out of view. */
  function reveal(key) {
    scrollToIndex(shown.findIndex((row) => row.node.key === key), { center: true });
  }

  /** Forgets every row (another host was chosen). */
  function reset() {
    rowsByKey.clear();
    body.replaceChildren(topSpacer, bottomSpacer);
    shown = [];
    scroller.scrollTop = 0;
  }

  return { render, reveal, reset };
}

function makeSpacer() {
  const tr = document.createElement("tr");
  tr.className = "spacer";
  tr.setAttribute("aria-hidden", "true");
  // One cell, not a colspan over all columns: columns hidden at narrow
  // widths would come back as empty ones under a colspan.
  const td = document.createElement("td");
  tr.append(td);
  tr.hidden = true;
  return tr;
}

function setSpacer(tr, pixels) {
  tr.hidden = pixels <= 0;
  tr.firstChild.style.height = `${pixels}px`;
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
    ...Object.fromEntries(TABLE_METRICS.map((m) => [m.column, cell(`col-${m.column} num`)])),
    started: cell("col-started num"),
  };
  return { tr, nameCell, toggle, name, folded, cells, last: {} };
}

function fill(entry, row, index, selected) {
  const { node, depth, hasChildren, expanded, matched, searching } = row;
  const p = node.process;
  const { tr, last } = entry;

  if (last.index !== index) {
    // Position among all rows, counting the header, as ARIA numbers them.
    tr.setAttribute("aria-rowindex", String(index + 2));
    last.index = index;
  }
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
  for (const metric of TABLE_METRICS) {
    setText(entry, metric.column, entry.cells[metric.column], cellText(metric, p));
  }
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
