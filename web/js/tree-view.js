// Draws the process rows. It is given the rows to show (from tree.js
// visibleRows) and shows the few in view: a tall box stands for all of them,
// and a small pool of row elements, absolutely placed with a transform, is
// moved and refilled as the view scrolls, so 10,000 processes cost the DOM
// of about sixty rows and no table layout. A row keeps its element while it
// stays in view, so an update touches only the text that changed. Values
// from a machine are only ever set with textContent or attributes.

import { COLUMNS } from "./fields.js";
import { HIGHLIGHT_MS, subtreeTotals } from "./tree.js";

/** Rows drawn beyond each edge of the view, so a fast scroll shows no gap. */
const OVERSCAN = 8;
/** A box this wide shows every chosen column. */
const WIDE = 1000;

/**
 * @param {HTMLElement} table     the treegrid: holds the header and the rows
 * @param {HTMLElement} scroller  the element that scrolls them
 * @param {object} actions  { toggle(key, expand?), select(key), sort(column) }
 */
export function createTreeView(table, scroller, actions) {
  const header = table.querySelector(".header-row");
  const body = table.querySelector(".rows");
  const drawn = new Map(); // key -> entry, the rows in the DOM now
  const spare = []; // entries not in use, hidden
  let shown = []; // the TreeRow list last rendered, top to bottom
  let indexOf = new Map(); // key -> index in shown
  let context = null;
  let columns = [];
  let columnsKey = "";
  let selectedKey = null;
  let rowHeight = 0;
  let timer = 0;
  /** Blank room below the last row (px), kept so the row being read stays put. */
  let spacer = 0;

  body.addEventListener("click", (event) => {
    const row = event.target.closest(".row[data-key]");
    if (!row) return;
    if (event.target.closest("button.toggle")) {
      actions.toggle(row.dataset.key);
      return;
    }
    actions.select(row.dataset.key);
  });
  body.addEventListener("dblclick", (event) => {
    const row = event.target.closest(".row[data-key]");
    if (row && !event.target.closest("button.toggle")) actions.toggle(row.dataset.key);
  });
  header.addEventListener("click", (event) => {
    const th = event.target.closest("[data-sort]");
    if (th) actions.sort(th.dataset.sort, th.classList.contains("num"));
  });
  scroller.addEventListener("keydown", (event) => onKey(event));

  // Scrolling shows other rows: draw them once per frame.
  let frame = 0;
  const drawSoon = () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      trimSpacer();
      drawWindow();
    });
  };
  scroller.addEventListener("scroll", drawSoon, { passive: true });
  // A narrower box (window, details pane) shows fewer columns.
  new ResizeObserver(() => {
    if (!context) return;
    setColumns(context);
    drawSoon();
  }).observe(scroller);

  // Arrow keys move the selection, Left/Right fold and unfold, as in a file tree.
  function onKey(event) {
    if (event.altKey || event.ctrlKey || event.metaKey || shown.length === 0) return;
    const index = indexOf.get(selectedKey) ?? -1;
    const row = shown[index];
    const go = (i) => {
      const target = Math.max(0, Math.min(shown.length - 1, i));
      actions.select(shown[target].node.key);
      scrollToIndex(target);
    };
    const page = Math.max(1, Math.floor(viewHeight() / height()) - 1);
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
        else if (row.node.parent) go(indexOf.get(row.node.parent.key) ?? index);
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
   * Makes the view show `rows`.
   * @param {object[]} rows      TreeRow list, top to bottom
   * @param {object} ctx         { tree, chosen: Set of column ids, sort, cpuScale, cpuCount, memoryTotal, os, rates,
   *                               alerting: Map of "pid@start ms" to firing alerts }
   * @param {string|null} selected key of the selected process
   * @param {boolean} rowsChanged whether `rows` differs from the last call's
   */
  function render(rows, ctx, selected, rowsChanged = true) {
    context = ctx;
    selectedKey = selected;
    setColumns(ctx);
    if (rowsChanged) {
      const anchor = anchorOf();
      shown = rows;
      indexOf = new Map();
      let maxDepth = 0;
      for (let i = 0; i < rows.length; i += 1) {
        indexOf.set(rows[i].node.key, i);
        if (rows[i].depth > maxDepth) maxDepth = rows[i].depth;
      }
      // The header row counts as a row for assistive technology.
      table.setAttribute("aria-rowcount", String(rows.length + 1));
      // The name column widens with the deepest open row (see style.css).
      if (table.style.getPropertyValue("--max-depth") !== String(maxDepth)) {
        table.style.setProperty("--max-depth", String(maxDepth));
      }
      spacer = 0;
      body.style.height = `${rows.length * height()}px`;
      keepInPlace(anchor);
    }
    drawWindow();
    scheduleHighlightEnd();
  }

  /** The row a person is reading: the selected one if in view, else the top one. */
  function anchorOf() {
    if (shown.length === 0) return null;
    const top = scroller.scrollTop - body.offsetTop;
    const h = height();
    const selected = indexOf.get(selectedKey);
    if (selected != null && selected * h >= top && selected * h < top + viewHeight()) {
      return { key: selectedKey, offset: selected * h - top };
    }
    const first = Math.max(0, Math.min(shown.length - 1, Math.ceil(top / h)));
    if (top <= 0) return null; // at the top: stay there
    return { key: shown[first].node.key, offset: first * h - top };
  }

  /**
   * Scrolls so the anchor row is where it was on screen (rows came or went
   * above it). When rows below it went and the list's end came up into
   * view, the box would have to scroll back and move the row down: blank
   * room below the last row keeps it where it is instead (until the view
   * scrolls up, see trimSpacer), as a desktop process list does.
   */
  function keepInPlace(anchor) {
    if (!anchor) return;
    const index = indexOf.get(anchor.key);
    if (index == null) return;
    const want = index * height() - anchor.offset + body.offsetTop;
    const room = () => scroller.scrollHeight - scroller.clientHeight;
    if (want > room()) {
      // scrollHeight is never less than the view's height, so while the
      // rows end above the view's bottom it hides how much room is missing:
      // first make more than enough, then take back what is too much.
      setSpacer(Math.ceil(want) + scroller.clientHeight);
      setSpacer(spacer - Math.floor(room() - want));
    }
    if (Math.abs(scroller.scrollTop - want) >= 1) scroller.scrollTop = want;
  }

  function setSpacer(px) {
    spacer = Math.max(0, px);
    body.style.height = `${shown.length * height() + spacer}px`;
  }

  /** Gives back the blank room below the last row that the view no longer reaches. */
  function trimSpacer() {
    if (spacer === 0) return;
    const below = scroller.scrollHeight - scroller.clientHeight - scroller.scrollTop;
    const keep = Math.max(0, Math.ceil(spacer - below));
    if (keep === spacer) return;
    setSpacer(keep);
  }

  function height() {
    if (!rowHeight) {
      rowHeight = parseFloat(getComputedStyle(table).getPropertyValue("--row-height")) || 24;
    }
    return rowHeight;
  }

  function viewHeight() {
    return Math.max(0, scroller.clientHeight - body.offsetTop);
  }

  /** The columns to show: chosen ones that fit the box, name first. */
  function setColumns(ctx) {
    const width = scroller.clientWidth || window.innerWidth;
    // A phone has room for the numbers only if they are narrower.
    const phone = width < 500;
    const widthOf = (c) => (phone && c.phoneWidth) || c.width;
    // In a narrow box (phone, details pane open, small window), chosen
    // columns that do not fit give way, the least needed (highest
    // `narrowest`) first; a wide one shows them all, scrolling sideways
    // if it must.
    const visible = COLUMNS.filter((c) => ctx.chosen.has(c.id));
    const nameRoom = phone ? 110 : 180;
    let fixed = visible.reduce((sum, c) => sum + widthOf(c), 0);
    const yielding = visible.filter((c) => c.narrowest).sort((a, b) => b.narrowest - a.narrowest);
    for (const column of yielding) {
      if (width >= WIDE || fixed + nameRoom <= width) break;
      visible.splice(visible.indexOf(column), 1);
      fixed -= widthOf(column);
    }
    const labels = visible.map((c) => c.header(ctx));
    const key = `${visible.map((c) => c.id).join(",")}|${labels.join(",")}|${phone}`;
    if (key !== columnsKey) {
      columnsKey = key;
      columns = visible;
      table.style.setProperty("--fixed-columns", `${fixed}px`);
      table.style.setProperty(
        "--columns",
        `minmax(var(--name-min), 1fr) ${visible.map((c) => `${widthOf(c)}px`).join(" ")}`,
      );
      header.replaceChildren(
        headerCell({ id: "name", num: false }, "Name"),
        ...visible.map((c, i) => headerCell(c, labels[i])),
      );
      // Row elements stay (a reference to one stays good); their cells follow.
      for (const entry of drawn.values()) setCells(entry, columns);
      for (const entry of spare) setCells(entry, columns);
    }
    for (const th of header.children) {
      const active = th.dataset.sort === ctx.sort.column;
      th.setAttribute("aria-sort", active ? (ctx.sort.descending ? "descending" : "ascending") : "none");
    }
  }

  function drawWindow() {
    const h = height();
    const top = scroller.scrollTop - body.offsetTop;
    let first = Math.floor(top / h) - OVERSCAN;
    let last = Math.ceil((top + scroller.clientHeight) / h) + OVERSCAN;
    first = Math.max(0, Math.min(first, shown.length));
    last = Math.max(first, Math.min(last, shown.length));

    const wanted = new Set();
    for (let i = first; i < last; i += 1) wanted.add(shown[i].node.key);
    for (const [key, entry] of drawn) {
      if (!wanted.has(key)) {
        drawn.delete(key);
        release(entry);
      }
    }
    const now = Date.now();
    for (let i = first; i < last; i += 1) {
      const row = shown[i];
      const key = row.node.key;
      let entry = drawn.get(key);
      if (!entry) {
        entry = spare.pop() ?? makeRow(body, columns);
        entry.key = key;
        entry.row.dataset.key = key;
        entry.row.hidden = false;
        drawn.set(key, entry);
      }
      fill(entry, row, i, key === selectedKey, now);
    }
    // The DOM lists the rows in the order they show, for assistive
    // technology and for reading the page; moving a recycled row is one
    // insertBefore.
    let cursor = body.firstChild;
    for (let i = first; i < last; i += 1) {
      const element = drawn.get(shown[i].node.key).row;
      if (element !== cursor) body.insertBefore(element, cursor);
      else cursor = cursor.nextSibling;
    }
  }

  // Started and exited processes are highlighted for a while: draw again
  // when the next highlight ends.
  /** Puts a row element aside for reuse: hidden, naming no process. */
  function release(entry) {
    entry.row.hidden = true;
    entry.key = null;
    delete entry.row.dataset.key;
    entry.row.classList.remove("selected");
    entry.last.selected = false;
    spare.push(entry);
  }

  function scheduleHighlightEnd() {
    clearTimeout(timer);
    const now = Date.now();
    let next = Infinity;
    for (const entry of drawn.values()) {
      const since = entry.highlightSince;
      if (since) next = Math.min(next, since + HIGHLIGHT_MS - now);
    }
    if (next !== Infinity) timer = setTimeout(() => drawWindow(), Math.max(50, next + 20));
  }

  function fill(entry, row, index, selected, now) {
    const { node, depth, hasChildren, expanded, matched, searching } = row;
    const p = node.process;
    const { row: element, last } = entry;
    const h = height();
    if (last.index !== index) {
      element.style.transform = `translateY(${index * h}px)`;
      // Position among all rows, counting the header, as ARIA numbers them.
      element.setAttribute("aria-rowindex", String(index + 2));
      last.index = index;
    }
    if (last.depth !== depth) {
      entry.nameCell.style.setProperty("--depth", depth);
      element.setAttribute("aria-level", depth + 1);
      last.depth = depth;
    }
    const toggleState = hasChildren ? String(expanded) : "none";
    if (last.toggleState !== toggleState || last.name !== p.name) {
      entry.toggle.hidden = !hasChildren;
      if (hasChildren) {
        entry.toggle.setAttribute("aria-expanded", String(expanded));
        entry.toggle.setAttribute("aria-label", `${expanded ? "Collapse" : "Expand"} ${p.name}`);
        element.setAttribute("aria-expanded", String(expanded));
      } else {
        entry.toggle.removeAttribute("aria-expanded");
        element.removeAttribute("aria-expanded");
      }
      last.toggleState = toggleState;
    }
    if (last.searching !== searching) {
      entry.toggle.disabled = searching;
      last.searching = searching;
    }
    setText(entry, "name", entry.name, p.name);
    // Firing alerts on this process (keyed as alert-feed.js processIdentity: pid and start in ms).
    const alerts = context.alerting?.get(`${p.pid}@${node.startMs}`);
    const alertText = alerts ? (alerts.length > 1 ? `${alerts.length} alerts` : alerts[0].severity) : "";
    setText(entry, "alert", entry.alert, alertText);
    if (last.alertOn !== (alerts != null)) {
      entry.alert.hidden = !alerts;
      element.classList.toggle("alerting", alerts != null);
      last.alertOn = alerts != null;
    }
    const alertTitle = alerts ? alerts.map((a) => `Firing, ${a.severity}: ${a.summary}`).join("\n") : "";
    if (last.alertTitle !== alertTitle) {
      entry.alert.title = alertTitle;
      entry.alert.dataset.severity = alerts ? alerts[0].severity : "";
      last.alertTitle = alertTitle;
    }
    // A folded row stands for its subtree: its numbers are the subtree's.
    const totals = hasChildren && !expanded ? subtreeTotals(node) : null;
    setText(entry, "folded", entry.folded, totals ? `+${totals.count - 1}` : "");
    const tooltip = p.cmd?.length ? p.cmd.join(" ") : p.exe ?? p.name;
    if (last.tooltip !== tooltip) {
      entry.name.title = tooltip;
      last.tooltip = tooltip;
    }
    for (const column of columns) {
      const cell = entry.cells[column.id];
      setText(entry, column.id, cell, column.text(node, context, totals));
      if (column.heat) {
        const heat = heatOf(column.id, node, totals);
        if (last[`heat-${column.id}`] !== heat) {
          cell.style.setProperty("--heat", heat);
          cell.classList.toggle("idle", heat === "0.00");
          last[`heat-${column.id}`] = heat;
        }
      }
    }
    if (last.summed !== (totals !== null)) {
      element.classList.toggle("summed", totals !== null);
      last.summed = totals !== null;
    }
    if (last.selected !== selected) {
      element.classList.toggle("selected", selected);
      element.setAttribute("aria-selected", String(selected));
      last.selected = selected;
    }
    if (last.matched !== matched) {
      element.classList.toggle("context", !matched);
      last.matched = matched;
    }
    const exited = node.exitedAt > 0;
    const born = !exited && node.bornAt > 0 && now - node.bornAt < HIGHLIGHT_MS;
    const highlight = exited ? "exited" : born ? "born" : "";
    if (last.highlight !== highlight || last.highlightKey !== node.key) {
      element.classList.toggle("exited", exited);
      element.classList.toggle("born", born);
      // The green fades over the process's first seconds, wherever the row
      // is drawn (a row scrolled into view joins the fade part-way).
      element.style.animationDelay = born ? `${node.bornAt - now}ms` : "";
      last.highlight = highlight;
      last.highlightKey = node.key;
    }
    entry.highlightSince = exited ? node.exitedAt : born ? node.bornAt : 0;
  }

  function heatOf(column, node, totals) {
    if (column === "cpu") {
      const cpu = totals ? totals.cpu : node.process.cpu_percent ?? 0;
      const share = context.cpuScale === "machine" ? cpu / (100 * Math.max(1, context.cpuCount || 1)) : cpu / 100;
      return Math.min(1, Math.max(0, share)).toFixed(2);
    }
    const memory = totals ? totals.memory : node.process.memory_rss_bytes ?? 0;
    // Full at a tenth of the machine's memory: one process rarely takes more.
    const share = context.memoryTotal ? (memory / context.memoryTotal) * 10 : 0;
    return Math.min(1, Math.max(0, share)).toFixed(2);
  }

  /**
   * Brings the row at `index` into view: scrolled just enough (moving through
   * the rows), or to the middle of the view (jumping to a row elsewhere, so
   * its surroundings show too).
   */
  function scrollToIndex(index, { center = false } = {}) {
    if (index < 0 || index >= shown.length) return;
    const h = height();
    const top = scroller.scrollTop - body.offsetTop;
    const view = viewHeight();
    const y = index * h;
    let target = null;
    if (y < top || y + h > top + view) {
      if (center) target = y - (view - h) / 2;
      else if (y < top) target = y;
      else target = y + h - view;
    }
    if (target === null) return;
    scroller.scrollTop = Math.max(0, target + body.offsetTop);
    drawWindow();
  }

  /** Scrolls the row of process `key` to the middle of the view, if it is out of view. */
  function reveal(key) {
    scrollToIndex(indexOf.get(key) ?? -1, { center: true });
  }

  /** Forgets every row (another host was chosen). */
  function reset() {
    for (const entry of drawn.values()) release(entry);
    drawn.clear();
    shown = [];
    indexOf = new Map();
    spacer = 0;
    body.style.height = "0px";
    scroller.scrollTop = 0;
  }

  return { render, reveal, reset };
}

function headerCell(column, label) {
  const th = document.createElement("div");
  th.setAttribute("role", "columnheader");
  th.className = `th col-${column.id}${column.num ? " num" : ""}`;
  th.dataset.sort = column.id;
  th.setAttribute("aria-sort", "none");
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  th.append(button);
  return th;
}

function makeRow(body, columns) {
  const row = document.createElement("div");
  row.className = "row";
  row.setAttribute("role", "row");
  const nameCell = document.createElement("div");
  nameCell.className = "cell col-name";
  nameCell.setAttribute("role", "gridcell");
  row.append(nameCell);
  const toggle = document.createElement("button");
  toggle.type = "button";
  toggle.className = "toggle";
  toggle.tabIndex = -1; // the tree is one tab stop; the keyboard works through arrows
  const name = document.createElement("span");
  name.className = "name";
  const folded = document.createElement("span");
  folded.className = "folded-count";
  const alert = document.createElement("span");
  alert.className = "row-alert";
  alert.hidden = true;
  nameCell.append(toggle, name, folded, alert);
  body.append(row);
  const entry = { row, nameCell, toggle, name, folded, alert, cells: {}, last: {}, key: null, highlightSince: 0 };
  setCells(entry, columns);
  return entry;
}

/** Gives a row one cell per column, after its name cell. */
function setCells(entry, columns) {
  for (const cell of Object.values(entry.cells)) cell.remove();
  entry.cells = {};
  for (const column of columns) {
    const cell = document.createElement("div");
    cell.className = `cell col-${column.id}${column.num ? " num" : ""}`;
    cell.setAttribute("role", "gridcell");
    entry.row.append(cell);
    entry.cells[column.id] = cell;
    delete entry.last[column.id];
    delete entry.last[`heat-${column.id}`];
  }
}

function setText(entry, field, element, text) {
  if (entry.last[field] === text) return;
  element.textContent = text;
  entry.last[field] = text;
}
