// The API's reads about the past and the fleet: a host's tree at a time, its
// load, series, changes, and fleet search. Same errors as api.js.

import { request } from "./api.js";

const q = (params) =>
  Object.entries(params)
    .filter(([, v]) => v != null && v !== "")
    .map(([k, v]) => `${k}=${encodeURIComponent(v instanceof Date ? v.toISOString() : v)}`)
    .join("&");

/** GET /api/processes/?host=…&at=… -> ProcessListing of the newest snapshot at or before `at` (ms). */
export function fetchProcessesAt(hostId, at) {
  return request("GET", `/api/processes/?${q({ host: hostId, at: new Date(at) })}`);
}

/** GET /api/live/load/?host=… -> { host_id, now, points: LoadPoint[] } of the last hour. */
export function fetchLoad(hostId) {
  return request("GET", `/api/live/load/?${q({ host: hostId })}`);
}

/** GET /api/history/host/ -> Series of process_count, cpu_percent, memory_rss_bytes. */
export function fetchHostSeries(hostId, from, to, points = 240) {
  return request("GET", `/api/history/host/?${q({ host: hostId, from: new Date(from), to: new Date(to), points })}`);
}

/** GET /api/history/process/ -> Series of one process (pid + start time). */
export function fetchProcessSeries(hostId, pid, startTime, from, to, points = 600) {
  return request(
    "GET",
    `/api/history/process/?${q({ host: hostId, pid, start_time: startTime, from: new Date(from), to: new Date(to), points })}`,
  );
}

/** GET /api/history/changes/ -> HostChanges after `from` up to `to` (ms). */
export function fetchChanges(hostId, from, to) {
  return request("GET", `/api/history/changes/?${q({ host: hostId, from: new Date(from), to: new Date(to) })}`);
}

/** GET /api/search/ -> SearchResults; `at` (ms) searches the past, null now. */
export function fetchSearch(text, field, at) {
  return request("GET", `/api/search/?${q({ q: text, field: field === "any" ? null : field, at: at == null ? null : new Date(at) })}`);
}
