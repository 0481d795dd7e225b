// The chosen host's processes in the state: live by the stream (live.js
// brings the listing and the pushed batches; here they become the tree), or
// (history) as they were at the time shown, fetched once per time.

import { ApiError } from "./api.js";
import { fetchProcessesAt } from "./history-api.js";
import { onLoad } from "./meters.js";
import { bookkeeping, state, update } from "./state.js";
import { applyBatch, buildTree, changesBetween, expire, sortField } from "./tree.js";

/**
 * @param {object} deps
 *   liveFeed                 the chosen host's live feed (live.js)
 *   connectionFailed(error)  a 401 or an unreachable server (poll.js)
 * @returns {{ followChosenHost(), showListing(listing), applyPushed(batch, receivedAt), listingFailed(error) }}
 */
export function createListing({ liveFeed, connectionFailed }) {
  /** history: the chosen host's listing at the time shown (asked once per time). */
  function fetchListing(hostId) {
    const key = `${hostId}|${state.at}`;
    if (state.listing && bookkeeping.pastShown === key) return Promise.resolve(null);
    return fetchProcessesAt(hostId, state.at).then((listing) => {
      bookkeeping.pastShown = key;
      return listing;
    });
  }

  /**
   * The chosen host: live, by the stream; or (history) as it was at the time
   * shown, fetched once per time, with nothing pushed over it.
   */
  function followChosenHost() {
    if (state.at == null) {
      liveFeed.watch(state.hostId);
      return;
    }
    liveFeed.stop();
    const { hostId, at } = state;
    if (!hostId) return;
    fetchListing(hostId).then(
      (listing) => {
        if (listing && hostId === state.hostId && at === state.at) showListing(listing);
      },
      (error) => {
        if (!(error instanceof ApiError)) throw error;
        if (hostId === state.hostId && at === state.at) listingFailed(error);
      },
    );
  }

  /**
   * A full listing of the chosen host. The first one (or one of a past time)
   * builds the tree; later ones of the live view (polling, or a reload of the
   * stream) are applied to it as the changes they make, so new processes
   * still flash and rows keep their places.
   */
  function showListing(listing) {
    if (listing.host.host.id !== state.hostId) return;
    const changes = {
      // The processes live in the tree from now on; the listing keeps the rest.
      listing: { ...listing, processes: null },
      listingError: null,
      connection: "live",
      lastSuccessAt: Date.now(),
    };
    let tree = null;
    const current = state.tree;
    if (current?.live && state.at == null) {
      if (current.snapshotId === listing.snapshot_id) {
        update(changes);
        return;
      }
      if (applyBatch(current, changesBetween(current, listing), Date.now(), sortField(state.sort))) {
        scheduleExpiry();
        tree = current;
      }
    }
    if (!tree) {
      tree = buildTree(listing.processes, { collectedAt: listing.collected_at });
      tree.snapshotId = listing.snapshot_id;
      tree.live = state.at == null;
      changes.tree = tree;
    }
    const node = state.selectedKey ? tree.nodes.get(state.selectedKey) : null;
    if (node) changes.selectedProcess = node.process;
    update(changes);
  }

  /** A pushed change batch: applied to the tree in place. False when it does not fit. */
  function applyPushed(batch, receivedAt) {
    const tree = state.tree;
    if (!tree || batch.host_id !== state.hostId || batch.base_id !== tree.snapshotId) return false;
    if (!applyBatch(tree, batch, Date.now(), sortField(state.sort))) return false;
    bookkeeping.pushedAt = receivedAt;
    scheduleExpiry();
    // history: the meters' sparklines move with each pushed load.
    if (batch.load) onLoad(batch.host_id, { at: batch.collected_at, load: batch.load });
    const listing = { ...state.listing, collected_at: batch.collected_at, snapshot_id: batch.id };
    if (batch.host) listing.host = { ...listing.host, host: batch.host };
    update({ listing, lastSuccessAt: Date.now(), connection: "live" });
    return true;
  }

  function listingFailed(error) {
    if (error.kind === "unauthorized" || error.kind === "unreachable") {
      connectionFailed(error);
      return;
    }
    update({ listingError: error.message, listing: null, tree: null });
  }

  // Exited processes stay, red, for a few seconds, then go.
  function scheduleExpiry() {
    if (bookkeeping.expiryTimer || !state.tree || state.tree.leaving.size === 0) return;
    bookkeeping.expiryTimer = setTimeout(() => {
      bookkeeping.expiryTimer = 0;
      if (!state.tree) return;
      if (expire(state.tree, Date.now())) update({});
      scheduleExpiry();
    }, 500);
  }

  return { followChosenHost, showListing, applyPushed, listingFailed };
}
