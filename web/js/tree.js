// Builds the process tree from a flat list of processes, and lists the rows a
// view shows. Pure data in, data out: no DOM, so it can be read (and tested)
// on its own.
//
// Facts the tree must respect (see DESIGN.md):
// - A pid is not an identity: a process is (pid, start time).
// - A parent pid can point at a process that has exited (the child then sits
//   at the root), or at an unrelated process that reused the pid: a "parent"
//   that started after its child cannot be its real parent.
// - Parent links can form cycles (A -> B -> A, or a process its own parent).
//   Every process must still appear exactly once, so cycles are cut.
// Everything is iterative: a deep or hostile chain cannot overflow the stack.

import { METRICS, compareBy } from "./fields.js";

/** A process's identity within one host: pid plus start time. */
export function processKey(process) {
  return `${process.pid}@${process.start_time}`;
}

/**
 * @typedef {object} TreeNode
 * @property {string} key          unique within the tree (see processKey)
 * @property {object} process      the ProcessSample as received
 * @property {TreeNode|null} parent
 * @property {TreeNode[]} children
 * @property {number} descendants  size of the subtree below this node
 */

/**
 * Builds the tree. Returns `{ roots, nodes }`: the root nodes, and a Map from
 * key to node holding every process exactly once.
 */
export function buildTree(processes) {
  const nodes = new Map();
  const byPid = new Map();
  const list = [];

  for (const process of processes) {
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
    };
    nodes.set(key, node);
    list.push(node);
    if (!byPid.has(process.pid)) byPid.set(process.pid, node);
  }

  for (const node of list) {
    const parentPid = node.process.parent_pid;
    if (parentPid == null) continue;
    const candidate = byPid.get(parentPid);
    if (!candidate || candidate === node) continue;
    // A parent younger than its child holds a reused pid: not the real parent.
    if (candidate.startMs > node.startMs) continue;
    node.parent = candidate;
  }

  breakCycles(list);

  const roots = [];
  for (const node of list) {
    if (node.parent) node.parent.children.push(node);
    else roots.push(node);
  }
  countDescendants(roots);
  return { roots, nodes };
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

/** The columns a tree can be sorted by, with how each compares two processes. */
export const SORT_COLUMNS = {
  name: (a, b) => compareText(a.name, b.name),
  pid: (a, b) => a.pid - b.pid,
  user: (a, b) => compareText(a.user ?? "", b.user ?? ""),
  ...Object.fromEntries(METRICS.map((m) => [m.column, compareBy(m)])),
  started: (a, b) => compareText(a.start_time, b.start_time),
};

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
 * children, siblings sorted by `sort` ({ column, descending }).
 *
 * With a `match` predicate, only matching processes and their ancestors are
 * listed (all shown open, so every match is in view).
 */
export function visibleRows(tree, { collapsed = new Set(), sort = null, match = null } = {}) {
  const compare = siblingOrder(sort);
  let shown = null;
  if (match) {
    shown = new Set();
    for (const node of tree.nodes.values()) {
      if (!match(node.process)) continue;
      for (let n = node; n && !shown.has(n); n = n.parent) shown.add(n);
    }
  }
  const keep = (node) => shown === null || shown.has(node);

  const rows = [];
  const stack = [];
  const pushSiblings = (siblings, depth) => {
    const sorted = siblings.filter(keep).sort(compare);
    for (let i = sorted.length - 1; i >= 0; i -= 1) stack.push([sorted[i], depth]);
  };
  pushSiblings(tree.roots, 0);
  while (stack.length > 0) {
    const [node, depth] = stack.pop();
    const children = shown === null ? node.children : node.children.filter(keep);
    const hasChildren = children.length > 0;
    const expanded = hasChildren && (shown !== null || !collapsed.has(node.key));
    rows.push({
      node,
      depth,
      hasChildren,
      expanded,
      matched: shown === null || match(node.process),
      searching: shown !== null,
    });
    if (expanded) pushSiblings(children, depth + 1);
  }
  return rows;
}

function siblingOrder(sort) {
  const column = sort && SORT_COLUMNS[sort.column];
  const byPid = SORT_COLUMNS.pid;
  if (!column) return (a, b) => byPid(a.process, b.process);
  const sign = sort.descending ? -1 : 1;
  return (a, b) => sign * column(a.process, b.process) || byPid(a.process, b.process);
}

/** Keys of every node that has children: what "collapse all" collapses. */
export function parentKeys(tree) {
  const keys = new Set();
  for (const node of tree.nodes.values()) {
    if (node.children.length > 0) keys.add(node.key);
  }
  return keys;
}
