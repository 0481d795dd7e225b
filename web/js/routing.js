// The URL hash as the page's address: host, selected process, search, time
// shown and the start of the marked changes are taken from it on opening,
// on Back and Forward, and when a link changes it (state.js writes it).

import { bookkeeping, readHash, state, update } from "./state.js";

const $ = (id) => document.getElementById(id);

/**
 * @param {object} deps
 *   treeView   the table (its rows and scroll forgotten for a new host)
 *   pollNow()  asks the server at once
 * @returns {{ applyHash(options), listen() }}
 */
export function createRouting({ treeView, pollNow }) {
  /** Takes host, selection and search from the URL hash (a link, Back, Forward). */
  function applyHash({ poll: pollOnChange = true } = {}) {
    const { host, p, q, at, since } = readHash();
    const changes = {};
    // history: the time shown and the start of the marked changes.
    const atMs = at ? Date.parse(at) : null;
    const shownAt = Number.isNaN(atMs) ? null : atMs;
    if (shownAt !== state.at) Object.assign(changes, { at: shownAt, listing: null, tree: null, listingError: null });
    const sinceMs = since ? Date.parse(since) : null;
    changes.since = Number.isNaN(sinceMs) ? null : sinceMs;
    if (host && host !== state.hostId) {
      treeView.reset();
      Object.assign(changes, { hostId: host, listing: null, tree: null, listingError: null });
    }
    changes.selectedKey = p;
    if (p && p !== state.selectedKey) bookkeeping.revealKey = p;
    changes.selectedProcess = p && state.tree ? state.tree.nodes.get(p)?.process ?? null : null;
    if ((q ?? "") !== state.query) {
      changes.query = q ?? "";
      $("search").value = changes.query;
    }
    update(changes);
    if ((changes.hostId || "at" in changes) && pollOnChange) pollNow();
  }

  /** Follows the hash from now on: links, Back and Forward. */
  function listen() {
    window.addEventListener("hashchange", () => applyHash());
    window.addEventListener("popstate", () => applyHash());
  }

  return { applyHash, listen };
}
