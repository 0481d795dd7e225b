// What is shown: the host chosen, the time (history), the process selected
// and which nodes are folded. The views call these; a new host or time is
// asked for at once.

import { bookkeeping, collapsedKeys, state, update } from "./state.js";
import { matcher } from "./tree.js";

/**
 * @param {object} deps
 *   treeView     the table (its rows and scroll forgotten for a new host)
 *   fleetSearch  the fleet search (closed on jumping to what it found)
 *   pollNow()    asks the server at once
 * @returns {{ chooseHost(hostId), toggle(key, expand), showHostAt(at), jumpTo(hostId, key, at, options), select(key, options) }}
 */
export function createNavigation({ treeView, fleetSearch, pollNow }) {
  function chooseHost(hostId) {
    if (hostId === state.hostId) {
      if (matchMedia("(max-width: 700px)").matches) update({ hostsFolded: true });
      return;
    }
    treeView.reset();
    update({
      hostId,
      listing: null,
      tree: null,
      listingError: null,
      selectedKey: null,
      selectedProcess: null,
      hostsFolded: true,
    });
    pollNow();
  }

  function toggle(key, expand) {
    // While searching, every ancestor of a match stays open so no match hides.
    if (matcher(state.query)) return;
    const collapsed = collapsedKeys();
    const open = expand ?? collapsed.has(key);
    if (open) collapsed.delete(key);
    else collapsed.add(key);
    bookkeeping.collapsedVersion += 1;
    update({});
  }

  // history: shows the chosen host's tree as it was at `at` (ms), or live (null).
  function showHostAt(at) {
    if (at === state.at) return;
    update({ at, listing: null, tree: null, listingError: null });
    pollNow();
  }

  // history: opens `hostId` at `at` (null: live) with the process `key` selected.
  function jumpTo(hostId, key, at, { since = state.since } = {}) {
    if (hostId !== state.hostId) treeView.reset();
    const sameView = hostId === state.hostId && at === state.at;
    bookkeeping.revealKey = key;
    update({
      hostId,
      at,
      since,
      selectedKey: key,
      selectedProcess: sameView ? state.tree?.nodes.get(key)?.process ?? null : null,
      hostsFolded: true,
      ...(sameView ? {} : { listing: null, tree: null, listingError: null }),
    });
    fleetSearch.close();
    pollNow();
  }

  function select(key, { reveal = false } = {}) {
    const node = key && state.tree?.nodes.get(key);
    if (reveal) bookkeeping.revealKey = key;
    update({ selectedKey: key, selectedProcess: node ? node.process : null });
  }

  return { chooseHost, toggle, showHostAt, jumpTo, select };
}
