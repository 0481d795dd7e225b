// What the agent keys panel's buttons do (admins): list, make and revoke
// agent keys, make a new enrollment secret, and show a new key or secret
// once. The panel itself is keys.js.

import * as api from "./api.js";
import { ApiError } from "./api.js";
import { update } from "./state.js";

/** Runs an admin's request about agent keys; a failure is shown in the keys panel. */
async function keysAction(work) {
  try {
    await work();
    update({ keys: await api.fetchKeys(), keysError: "" });
    return true;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.kind === "unauthorized") update({ connection: "unauthorized" });
    else update({ keysError: error.message });
    return false;
  }
}

/** Reads the keys again (another change, such as a removed host, revoked some). */
export function refreshKeys() {
  return keysAction(async () => {});
}

export function openKeys() {
  update({ keysOpen: true });
  keysAction(async () => {});
}

export function closeKeys() {
  update({ keysOpen: false, keysError: "", shownSecret: null });
}

/** The new key or secret is put away: it is never shown again. */
export function dismissSecret() {
  update({ shownSecret: null });
}

export function createKey(hostId, label) {
  return keysAction(async () => {
    const made = await api.createKey(hostId, label);
    const whose = made.record.host_id ? `host ${made.record.host_id}` : "the host of its first snapshot";
    update({ shownSecret: { title: `New agent key ${made.record.id}, for ${whose}`, value: made.key } });
  });
}

export function revokeKey(id) {
  if (!confirm(`Revoke agent key ${id}? Its agent is refused from then on.`)) return;
  keysAction(() => api.revokeKey(id));
}

export function rotateEnrollSecret() {
  if (!confirm("Make a new enrollment secret? The current one stops working for agents that have not enrolled yet.")) return;
  keysAction(async () => {
    const made = await api.rotateEnrollSecret();
    update({ shownSecret: { title: "New enrollment secret", value: made.enroll_secret } });
  });
}
