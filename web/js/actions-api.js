// The API's process actions: ask for one, follow it, read the audit log.
// Same errors as api.js (a process that is not the one the snapshot names
// is a 409, a viewer's request a 403, each with the server's message).

import { request } from "./api.js";

/** The most entries the audit log view asks for. */
export const LOG_LIMIT = 200;

/**
 * POST /api/actions/ with an ActionRequest { host_id, pid, started_at, kind,
 * reason } -> ActionEntry (outcome "pending").
 */
export function postAction(body) {
  return request("POST", "/api/actions/", body);
}

/** GET /api/actions/{id} -> ActionEntry as it stands now. */
export function fetchAction(id) {
  return request("GET", `/api/actions/${encodeURIComponent(id)}`);
}

/** GET /api/actions/?host=…&limit=… -> ActionEntry[], newest first (every host without `hostId`). */
export function fetchActions(hostId, limit = LOG_LIMIT) {
  const query = new URLSearchParams({ limit: String(limit) });
  if (hostId) query.set("host", hostId);
  return request("GET", `/api/actions/?${query}`);
}
