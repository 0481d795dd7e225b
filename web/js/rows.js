// The tree's rows at each render: listed again only when something they
// depend on changed (the tree, a pushed batch, what is folded, the order,
// the search, the view), kept in their order while the pointer is over
// them, the way to a process opened when a link or search asks; and the
// marks the page benchmark reads.

import { alertingProcesses } from "./alert-feed.js";
import { bookkeeping, collapsedKeys, state, update } from "./state.js";
import { diskRates, kernelThreads, visibleRows } from "./tree.js";

/** Draws the rows of `tree` (matching `match`) in `treeView`; returns them. */
export function renderTree(treeView, tree, match, summary) {
  const revealNode = bookkeeping.revealKey && tree ? tree.nodes.get(bookkeeping.revealKey) : null;
  if (revealNode) {
    for (let n = revealNode.parent; n; n = n.parent) collapsedKeys().delete(n.key);
    bookkeeping.collapsedVersion += 1;
  }
  // Rows keep their order while the pointer moves over them: a person is
  // reading or about to click (new ones still appear, at the end of their
  // siblings); they are sorted again once it rests or leaves.
  const frozen = Date.now() < bookkeeping.frozenUntil;
  const view = state.view;
  const hide = tree && view.hideKernel ? kernelThreads(tree) : null;
  const key = tree
    ? [tree.version, bookkeeping.collapsedVersion, state.sort.column, state.sort.descending, state.query, view.flat, hide != null, frozen]
        .join("|")
    : null;
  const changed = tree !== bookkeeping.rowsFor?.tree || key !== bookkeeping.rowsFor?.key;
  if (changed) {
    bookkeeping.rows = tree
      ? visibleRows(tree, { collapsed: collapsedKeys(), sort: state.sort, match, flat: view.flat, hide, frozen })
      : [];
    bookkeeping.rowsFor = { tree, key };
  }
  if (frozen) {
    clearTimeout(bookkeeping.thawTimer);
    bookkeeping.thawTimer = setTimeout(() => update({}), bookkeeping.frozenUntil - Date.now() + 10);
  }
  const rows = bookkeeping.rows;
  treeView.render(rows, {
    tree,
    chosen: new Set(view.columns),
    sort: state.sort,
    cpuScale: view.cpuScale,
    cpuCount: summary?.host.cpu_count ?? 1,
    memoryTotal: summary?.host.memory_total_bytes ?? 0,
    os: summary?.host.os_name ?? "",
    rates: (node) => diskRates(tree, node),
    alerting: alertingProcesses(state.alerts, state.hostId),
  }, state.selectedKey, changed);
  if (revealNode) {
    treeView.reveal(bookkeeping.revealKey);
    bookkeeping.revealKey = null;
  }
  if (bookkeeping.pushedAt) {
    // From a pushed batch's arrival to the frame that shows it.
    const since = bookkeeping.pushedAt;
    bookkeeping.pushedAt = 0;
    requestAnimationFrame(() => window.procmonMeasure.pushToFrame.push(performance.now() - since));
  }
  if (rows.length > 0 && performance.getEntriesByName("procmon-first-rows").length === 0) {
    performance.mark("procmon-first-rows");
    requestAnimationFrame(() => {
      performance.mark("procmon-first-frame");
      bookkeeping.treePainted();
    });
  }
  return rows;
}
