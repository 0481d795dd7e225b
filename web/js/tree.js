// The process tree: built once from a listing, then changed in place by each
// pushed change batch, and listed as the rows a view shows. Pure data in,
// data out: no DOM, so it can be read (and tested) on its own.
//
// Facts the tree must respect (see DESIGN.md):
// - A pid is not an identity: a process is (pid, start time).
// - A parent pid can point at a process that has exited (the child then sits
//   at the root), or at an unrelated process that reused the pid: a "parent"
//   that started after its child cannot be its real parent.
// - Parent links can form cycles (A -> B -> A, or a process its own parent).
//   Every process must still appear exactly once, so cycles are cut.
// Everything is iterative: a deep or hostile chain cannot overflow the stack.
//
// Cost: a batch touches only the processes it names. Each parent keeps its
// children sorted for the current order and re-sorts them only when one was
// added or one's sort key moved; listing the rows walks the open part of the
// tree once.

import { METRICS, compareBy } from "./fields.js";

/** How long a started process shows green, and an exited one stays red. */
export const HIGHLIGHT_MS = 3000;

/** A process's identity within one host: pid plus start time. */
export function processKey(process) {
  return `${process.pid}@${process.start_time}`;
}

/**
 * @typedef {object} TreeNode
 * @property {string} key          unique within the tree (see processKey)
 * @property {object} process      the ProcessSample, updated in place
 * @property {TreeNode|null} parent
 * @property {TreeNode[]} children
 * @property {number} descendants  size of the subtree below this node
 * @property {number} bornAt       when a pushed batch started it (ms), else 0
 * @property {number} exitedAt     when a pushed batch ended it (ms), else 0
 */

/**
 * Builds the tree. Returns `{ roots, nodes, byPid, ... }`: the root nodes,
 * and a Map from key to node holding every process exactly once.
 */
export function buildTree(processes, { collectedAt = null } = {}) {
  const nodes = new Map();
  const byPid = new Map();
  const list = [];

  for (const process of processes) {
    const node = makeNode(process, nodes);
    list.push(node);
    if (!byPid.has(process.pid)) byPid.set(process.pid, node);
  }

  for (const node of list) {
    const candidate = parentCandidate(byPid, node);
    if (candidate) node.parent = candidate;
  }

  breakCycles(list);

  const roots = [];
  for (const node of list) {
    if (node.parent) node.parent.children.push(node);
    else roots.push(node);
  }
  countDescendants(roots);
  return {
    roots,
    nodes,
    byPid,
    /** Bumped by every change, so views know to list rows again. */
    version: 0,
    /** When the current state was collected (ms), for disk rates. */
    collectedAt: collectedAt ? Date.parse(collectedAt) : 0,
    /** Sorted-children cache of the roots, as a node keeps its own. */
    top: { sorted: null, sortedFor: null, dirty: false },
    /** Every process sorted, for the flat list. */
    flat: { sorted: null, sortedFor: null, dirty: false },
    /** Processes that exited and wait for their red highlight to end. */
    leaving: new Set(),
  };
}

function makeNode(process, nodes) {
  let key = processKey(process);
  // The same identity twice is malformed input; show both rather than lose one.
  for (let n = 2; nodes.has(key); n += 1) key = `${processKey(process)}#${n}`;
  const node = {
    key,
    process,
    startMs: Date.parse(process.start_time),
    parent: null,
    children: [],
    descendants: 0,
    bornAt: 0,
    exitedAt: 0,
    readRate: 0,
    writeRate: 0,
    rateAt: 0,
    sorted: null,
    sortedFor: null,
    dirty: false,
  };
  nodes.set(key, node);
  return node;
}

/** The node the process's parent pid names, if it can be its parent. */
function parentCandidate(byPid, node) {
  const parentPid = node.process.parent_pid;
  if (parentPid == null) return null;
  const candidate = byPid.get(parentPid);
  if (!candidate || candidate === node) return null;
  // A parent younger than its child holds a reused pid: not the real parent.
  if (candidate.startMs > node.startMs) return null;
  return candidate;
}

// Walks up from every node; a walk that meets its own path has found a cycle,
// which is cut at its oldest member (the likeliest real ancestor), so the
// result does not depend on the order the processes arrived in.
function breakCycles(list) {
  const UNSEEN = 0;
  const ON_PATH = 1;
  const DONE = 2;
  const state = new Map();
  for (const start of list) {
    if (state.get(start) === DONE) continue;
    const path = [];
    let current = start;
    while (current && (state.get(current) ?? UNSEEN) === UNSEEN) {
      state.set(current, ON_PATH);
      path.push(current);
      current = current.parent;
    }
    if (current && state.get(current) === ON_PATH) {
      const cycle = path.slice(path.indexOf(current));
      let oldest = cycle[0];
      for (const node of cycle) {
        if (compareAge(node, oldest) < 0) oldest = node;
      }
      oldest.parent = null;
    }
    for (const node of path) state.set(node, DONE);
  }
}

function compareAge(a, b) {
  const byStart = (a.startMs || 0) - (b.startMs || 0);
  return byStart !== 0 ? byStart : a.process.pid - b.process.pid;
}

function countDescendants(roots) {
  const preorder = [];
  const stack = [...roots];
  while (stack.length > 0) {
    const node = stack.pop();
    preorder.push(node);
    for (const child of node.children) stack.push(child);
  }
  // Children come after their parent in preorder, so summing in reverse
  // finishes every subtree before its parent reads it.
  for (let i = preorder.length - 1; i >= 0; i -= 1) {
    const node = preorder[i];
    if (node.parent) node.parent.descendants += node.descendants + 1;
  }
}

// ---- changing the tree in place ----------------------------------------------

/** The holder of a node's sibling list: its parent, or the tree's top. */
function holderOf(tree, node) {
  return node.parent ?? tree.top;
}

function attach(tree, node, parent) {
  node.parent = parent;
  const siblings = parent ? parent.children : tree.roots;
  siblings.push(node);
  const holder = holderOf(tree, node);
  if (holder.sorted) {
    holder.sorted.push(node);
    holder.dirty = true;
  }
  for (let n = parent; n; n = n.parent) n.descendants += node.descendants + 1;
}

function detach(tree, node) {
  const parent = node.parent;
  const siblings = parent ? parent.children : tree.roots;
  removeFrom(siblings, node);
  const holder = holderOf(tree, node);
  // Taking one out leaves the others in order.
  if (holder.sorted) removeFrom(holder.sorted, node);
  for (let n = parent; n; n = n.parent) n.descendants -= node.descendants + 1;
  node.parent = null;
}

function removeFrom(list, item) {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}

/** Whether `node` is `ancestor` or below it. */
function isWithin(node, ancestor) {
  for (let n = node; n; n = n.parent) if (n === ancestor) return true;
  return false;
}

/**
 * Applies a pushed ChangeBatch: exits first (the process stays, marked, for
 * HIGHLIGHT_MS), then starts (marked as new), then changed fields. Returns
 * false when the batch names processes this tree does not have (it was made
 * against another base: the caller reloads).
 *
 * @param {object} batch     ChangeBatch from GET /api/live/
 * @param {number} now       browser clock, ms
 * @param {string} sortField the process field the current order compares
 *                           (its parents re-sort when it moves), or "*"
 */
export function applyBatch(tree, batch, now, sortField = null) {
  const collectedAt = Date.parse(batch.collected_at);
  const seconds = tree.collectedAt ? (collectedAt - tree.collectedAt) / 1000 : 0;
  for (const pid of batch.exited ?? []) {
    const node = tree.byPid.get(pid);
    if (!node) return false;
    tree.byPid.delete(pid);
    node.exitedAt = now;
    tree.leaving.add(node);
  }
  for (const process of batch.started ?? []) {
    const node = makeNode(process, tree.nodes);
    node.bornAt = now;
    tree.byPid.set(process.pid, node);
    tree.flat.sorted?.push(node);
    tree.flat.dirty = true;
    // A new process has no children yet, so it cannot close a cycle.
    attach(tree, node, parentCandidate(tree.byPid, node));
  }
  for (const update of batch.changed ?? []) {
    const node = tree.byPid.get(update.pid);
    if (!node) return false;
    const p = node.process;
    if ("disk_read_bytes" in update || "disk_written_bytes" in update) {
      if (seconds > 0) {
        node.readRate = Math.max(0, ((update.disk_read_bytes ?? p.disk_read_bytes) - p.disk_read_bytes) / seconds);
        node.writeRate = Math.max(0, ((update.disk_written_bytes ?? p.disk_written_bytes) - p.disk_written_bytes) / seconds);
        node.rateAt = collectedAt;
      }
    }
    const reparented = "parent_pid" in update && update.parent_pid !== p.parent_pid;
    Object.assign(p, update);
    if (sortField === "*" || (sortField && sortField in update)) {
      holderOf(tree, node).dirty = true;
      tree.flat.dirty = true;
    }
    if (reparented) {
      const parent = parentCandidate(tree.byPid, node);
      if (parent !== node.parent && !(parent && isWithin(parent, node))) {
        detach(tree, node);
        attach(tree, node, parent);
      }
    }
  }
  tree.collectedAt = collectedAt;
  tree.snapshotId = batch.id;
  tree.version += 1;
  return true;
}

/**
 * The change batch that turns the tree into `listing`, a full listing of
 * the same host (fetched while polling, or on a reload of the stream): so
 * it is applied as a pushed batch would be, with started processes green,
 * exited ones red, and rows in their places. Processes are matched by pid
 * and start time, as the server matches them.
 */
export function changesBetween(tree, listing) {
  const exited = [];
  const started = [];
  const changed = [];
  const kept = new Set();
  for (const process of listing.processes) {
    const node = tree.byPid.get(process.pid);
    if (!node || node.process.start_time !== process.start_time || kept.has(process.pid)) {
      started.push(process);
      continue;
    }
    kept.add(process.pid);
    const update = fieldsChanged(node.process, process);
    if (update) changed.push(update);
  }
  for (const pid of tree.byPid.keys()) {
    if (!kept.has(pid)) exited.push(pid);
  }
  return {
    id: listing.snapshot_id,
    base_id: tree.snapshotId,
    host_id: listing.host.host.id,
    collected_at: listing.collected_at,
    exited,
    started,
    changed,
  };
}

/** `{ pid, field: new value, ... }` for the fields that differ; null if none. */
function fieldsChanged(before, after) {
  let update = null;
  for (const field in after) {
    if (!sameValue(before[field], after[field])) (update ??= { pid: after.pid })[field] = after[field];
  }
  // A field left out now (an optional one that became unknown).
  for (const field in before) {
    if (!(field in after) && before[field] != null) (update ??= { pid: after.pid })[field] = null;
  }
  return update;
}

function sameValue(a, b) {
  if (a === b) return true;
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
  return a.every((item, i) => item === b[i]);
}

/**
 * Drops processes whose exit was shown long enough; their children, if the
 * batch did not move them, become roots (their parent is gone). Returns
 * whether anything was dropped.
 */
export function expire(tree, now) {
  let dropped = false;
  for (const node of tree.leaving) {
    if (now - node.exitedAt < HIGHLIGHT_MS) continue;
    tree.leaving.delete(node);
    for (const child of [...node.children]) {
      detach(tree, child);
      attach(tree, child, null);
    }
    detach(tree, node);
    tree.nodes.delete(node.key);
    if (tree.flat.sorted) removeFrom(tree.flat.sorted, node);
    dropped = true;
  }
  if (dropped) tree.version += 1;
  return dropped;
}

/** The disk rates of a node, bytes per second, as of the tree's latest state. */
export function diskRates(tree, node) {
  const current = node.rateAt === tree.collectedAt;
  return { read: current ? node.readRate : 0, write: current ? node.writeRate : 0 };
}

/** CPU %, resident memory and process count of a node and everything below it. */
export function subtreeTotals(node) {
  let cpu = 0;
  let memory = 0;
  let count = 0;
  const stack = [node];
  while (stack.length > 0) {
    const n = stack.pop();
    cpu += n.process.cpu_percent ?? 0;
    memory += n.process.memory_rss_bytes ?? 0;
    count += 1;
    for (const child of n.children) stack.push(child);
  }
  return { cpu, memory, count };
}

/**
 * Linux kernel threads: kthreadd (pid 2) and its children. Returns a
 * predicate, or null when the host has none.
 */
export function kernelThreads(tree) {
  const kthreadd = tree.byPid.get(2);
  if (!kthreadd || kthreadd.process.name !== "kthreadd") return null;
  return (node) => node === kthreadd || node.parent === kthreadd;
}

// ---- order and rows ------------------------------------------------------------

/** The columns a tree can be sorted by, with how each compares two processes. */
export const SORT_COLUMNS = {
  name: (a, b) => compareText(a.name, b.name),
  pid: (a, b) => a.pid - b.pid,
  user: (a, b) => compareText(a.user ?? "", b.user ?? ""),
  ...Object.fromEntries(METRICS.map((m) => [m.column, compareBy(m)])),
  started: (a, b) => compareText(a.start_time, b.start_time),
  command: (a, b) => compareText((a.cmd ?? []).join(" "), (b.cmd ?? []).join(" ")),
};

/** Columns compared on the node (computed values), not the process. */
const NODE_COLUMNS = {
  readRate: (a, b) => a.readRate - b.readRate,
  writeRate: (a, b) => a.writeRate - b.writeRate,
};

/** The process field an order compares: what, when it moves, re-sorts. */
export function sortField(sort) {
  if (!sort) return "pid";
  if (sort.column in NODE_COLUMNS) return "*";
  const metric = METRICS.find((m) => m.column === sort.column);
  if (metric) return metric.key;
  return { started: "start_time", command: "cmd" }[sort.column] ?? sort.column;
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
function compareText(a, b) {
  return collator.compare(String(a), String(b));
}

/**
 * A search as a predicate: the query matches a process when its name, user or
 * command line contains it (any case), or it is the process's pid.
 * Returns null for an empty query (no filtering).
 */
export function matcher(query) {
  const needle = String(query ?? "").trim().toLowerCase();
  if (needle === "") return null;
  return (process) =>
    String(process.pid) === needle ||
    String(process.name ?? "").toLowerCase().includes(needle) ||
    String(process.user ?? "").toLowerCase().includes(needle) ||
    (process.exe != null && String(process.exe).toLowerCase().includes(needle)) ||
    (Array.isArray(process.cmd) && process.cmd.join(" ").toLowerCase().includes(needle));
}

/**
 * @typedef {object} TreeRow
 * @property {TreeNode} node
 * @property {number} depth         0 for a root
 * @property {boolean} hasChildren  whether a toggle is shown
 * @property {boolean} expanded
 * @property {boolean} matched      false for an ancestor shown only because a
 *                                  descendant matched the search
 * @property {boolean} searching    true when a search decides what is open
 */

/**
 * The rows to show, top to bottom: roots and, under every expanded node, its
 * children, siblings sorted by `sort` ({ column, descending }). With `flat`,
 * every process at depth 0, sorted.
 *
 * With a `match` predicate, only matching processes and their ancestors are
 * listed (all shown open, so every match is in view). `hide` leaves out the
 * processes it accepts (kernel threads). With `frozen`, sibling lists keep
 * their current order (new rows at their end) until a later call.
 */
export function visibleRows(
  tree,
  { collapsed = new Set(), sort = null, match = null, flat = false, hide = null, frozen = false } = {},
) {
  const order = siblingOrder(sort);
  if (flat) {
    const rows = [];
    for (const node of sortedList(tree.flat, () => [...tree.nodes.values()], order, frozen)) {
      if (hide && hide(node)) continue;
      if (match && !match(node.process)) continue;
      rows.push({ node, depth: 0, hasChildren: false, expanded: false, matched: true, searching: match !== null });
    }
    return rows;
  }
  let shown = null;
  if (match) {
    shown = new Set();
    for (const node of tree.nodes.values()) {
      if (!match(node.process) || (hide && hide(node))) continue;
      for (let n = node; n && !shown.has(n); n = n.parent) shown.add(n);
    }
  }
  const keep = (node) => (shown === null || shown.has(node)) && !(hide && hide(node));

  const rows = [];
  const stack = [];
  const pushSiblings = (holder, siblings, depth) => {
    const sorted = sortedList(holder, () => siblings, order, frozen);
    for (let i = sorted.length - 1; i >= 0; i -= 1) {
      if (keep(sorted[i])) stack.push(sorted[i], depth);
    }
  };
  pushSiblings(tree.top, tree.roots, 0);
  while (stack.length > 0) {
    const depth = stack.pop();
    const node = stack.pop();
    let hasChildren = false;
    for (const child of node.children) {
      if (keep(child)) {
        hasChildren = true;
        break;
      }
    }
    const expanded = hasChildren && (shown !== null || !collapsed.has(node.key));
    rows.push({
      node,
      depth,
      hasChildren,
      expanded,
      matched: shown === null || match(node.process),
      searching: shown !== null,
    });
    if (expanded) pushSiblings(node, node.children, depth + 1);
  }
  return rows;
}

/**
 * The holder's list in `order`: sorted when first asked or when the order
 * changed, re-sorted only when marked dirty (and not frozen).
 */
function sortedList(holder, items, order, frozen) {
  if (!holder.sorted || holder.sortedFor !== order.id) {
    holder.sorted = items().slice().sort(order.compare);
    holder.sortedFor = order.id;
    holder.dirty = false;
  } else if (holder.dirty && !frozen) {
    // Nearly sorted already: the engine's merge sort takes about one pass.
    holder.sorted.sort(order.compare);
    holder.dirty = false;
  }
  return holder.sorted;
}

function siblingOrder(sort) {
  const byPid = (a, b) => a.process.pid - b.process.pid;
  const nodeColumn = sort && NODE_COLUMNS[sort.column];
  const column = sort && SORT_COLUMNS[sort.column];
  if (!nodeColumn && !column) return { id: "pid", compare: byPid };
  const sign = sort.descending ? -1 : 1;
  const compare = nodeColumn
    ? (a, b) => sign * nodeColumn(a, b) || byPid(a, b)
    : (a, b) => sign * column(a.process, b.process) || byPid(a, b);
  return { id: `${sort.column}:${sort.descending}`, compare };
}

/** Keys of every node that has children: what "collapse all" collapses. */
export function parentKeys(tree) {
  const keys = new Set();
  for (const node of tree.nodes.values()) {
    if (node.children.length > 0) keys.add(node.key);
  }
  return keys;
}
