// Removing a host that is gone (admins): asked first, then its history and
// agent keys go; the host list's button for it is in hosts.js.

import * as api from "./api.js";
import { ApiError } from "./api.js";
import { refreshKeys } from "./keys-admin.js";
import { state, update } from "./state.js";

/**
 * @param {object} deps
 *   treeView   the table (emptied when the host shown is removed)
 *   pollNow()  asks the server at once (after the removal)
 * @returns {(hostId: string) => Promise<void>} removes a host, after asking
 */
export function createHostRemoval({ treeView, pollNow }) {
  return async function removeHost(hostId) {
    const name = state.hosts.find((h) => h.host.id === hostId)?.display_name ?? hostId;
    if (!confirm(`Remove ${name}? Its history is deleted and its agent keys are revoked.`)) return;
    try {
      await api.removeHost(hostId);
      const changes = { hostsError: "", hosts: state.hosts.filter((h) => h.host.id !== hostId) };
      if (state.hostId === hostId) {
        treeView.reset();
        Object.assign(changes, { hostId: null, listing: null, tree: null, listingError: null, selectedKey: null, selectedProcess: null });
      }
      update(changes);
      if (state.keysOpen) refreshKeys();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.kind === "unauthorized") update({ connection: "unauthorized" });
      else update({ hostsError: error.message });
    }
    pollNow();
  };
}
