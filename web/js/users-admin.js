// What the users panel's buttons do (admins): list, add and remove users,
// set a new password for one. The panel itself is users.js.

import * as api from "./api.js";
import { ApiError } from "./api.js";
import { update } from "./state.js";

/** Runs an admin's request; a failure is shown in the users panel. */
async function usersAction(work) {
  try {
    await work();
    update({ users: await api.fetchUsers(), usersError: "" });
    return true;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.kind === "unauthorized") update({ connection: "unauthorized" });
    else update({ usersError: error.message });
    return false;
  }
}

export function openUsers() {
  update({ usersOpen: true });
  usersAction(async () => {});
}

export function closeUsers() {
  update({ usersOpen: false, usersError: "" });
}

export function addUser(name, role, password) {
  return usersAction(() => api.addUser(name, role, password));
}

export function removeUser(name) {
  if (!confirm(`Remove ${name}? Their sessions end at once.`)) return;
  usersAction(() => api.removeUser(name));
}

export function resetPassword(name) {
  const password = prompt(`New password for ${name} (8 or more characters); their sessions end:`);
  if (!password) return;
  usersAction(() => api.setPassword(name, password));
}
