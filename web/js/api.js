// Talks to the procmon server's API. Every request carries the viewer key when
// one is stored (needed only when the server listens beyond loopback), and
// every failure becomes an ApiError whose `kind` says what went wrong.

const KEY_STORAGE = "procmon.viewerKey";
const TIMEOUT_MS = 8000;

/** Why a request failed: "unauthorized", "unreachable", or the server's error kind. */
export class ApiError extends Error {
  constructor(kind, message, status = 0) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

export function viewerKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return ""; // storage can be disabled; the page still works on loopback
  }
}

export function setViewerKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    // Nothing else to do: without storage the key lasts only for this request.
  }
}

// Difference between the server's clock and this browser's, from the Date
// header, so "3 s ago" is measured on the clock that stamped last_seen.
let clockOffsetMs = 0;

/** The current time on the server's clock (ms since the epoch). */
export function serverNow() {
  return Date.now() + clockOffsetMs;
}

function noteServerDate(response) {
  const header = response.headers.get("Date");
  const serverMs = header ? Date.parse(header) : NaN;
  if (Number.isNaN(serverMs)) return;
  const offset = serverMs - Date.now();
  // The header has one-second resolution: ignore skews smaller than that.
  clockOffsetMs = Math.abs(offset) > 2000 ? offset : 0;
}

async function getJson(path) {
  const headers = { Accept: "application/json" };
  const key = viewerKey();
  if (key) headers.Authorization = `Bearer ${key}`;

  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  let response;
  try {
    response = await fetch(path, { headers, signal: controller.signal, cache: "no-store" });
  } catch (error) {
    const reason = error.name === "AbortError" ? "no answer within 8 s" : error.message;
    throw new ApiError("unreachable", `The server cannot be reached (${reason}).`);
  } finally {
    clearTimeout(timer);
  }
  noteServerDate(response);

  if (response.ok) return response.json();
  let body = null;
  try {
    body = await response.json(); // ErrorBody { error, message }
  } catch {
    // Not JSON (a proxy's error page, say): fall back to the status line.
  }
  if (response.status === 401) {
    throw new ApiError("unauthorized", body?.message ?? "This server needs the viewer key.", 401);
  }
  const message = body?.message ?? `The server answered ${response.status} ${response.statusText}.`;
  throw new ApiError(body?.error ?? "http_error", message, response.status);
}

/** GET /api/hosts/ -> HostSummary[] */
export function fetchHosts() {
  return getJson("/api/hosts/");
}

/** GET /api/processes/?host=… -> ProcessListing of the host's newest snapshot. */
export function fetchProcesses(hostId) {
  return getJson(`/api/processes/?host=${encodeURIComponent(hostId)}`);
}
