// Talks to the procmon server's API. The session lives in an HttpOnly
// cookie the browser sends by itself; requests that change something carry
// the X-Procmon-Csrf header, which other sites cannot make a browser send.
// Every failure becomes an ApiError whose `kind` says what went wrong.

const TIMEOUT_MS = 8000;

/** Why a request failed: "unauthorized", "unreachable", or the server's error kind. */
export class ApiError extends Error {
  constructor(kind, message, status = 0) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

/**
 * Shows why a request failed in `where` (and the sign-in form, through
 * `actions.unauthorized`, when the session ended); anything but an
 * ApiError is a bug and is thrown on.
 */
export function showFailure(e, where, actions) {
  if (!(e instanceof ApiError)) throw e;
  if (e.kind === "unauthorized") actions.unauthorized();
  where.textContent = e.message;
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

/**
 * A request early.js started for `path` while the modules loaded, taken
 * once, and only while the page is opening (later, it would be stale).
 */
function takeEarly(path) {
  const requests = window.procmonEarly?.requests;
  const started = requests?.[path];
  if (!started) return null;
  delete requests[path];
  return performance.now() < EARLY_KEPT_MS ? started : null;
}

/** How long after the page starts an early answer is still taken. */
const EARLY_KEPT_MS = 10_000;

/**
 * One request to the API (history-api.js asks through it too). A GET that
 * early.js already started is answered by it.
 */
export async function request(method, path, body, { cache = "no-store", onResponse = null } = {}) {
  const headers = { Accept: "application/json" };
  const options = { method, headers, cache, credentials: "same-origin" };
  if (method !== "GET") headers["X-Procmon-Csrf"] = "1";
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const controller = new AbortController();
  options.signal = controller.signal;
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  let response;
  try {
    response = await ((method === "GET" && takeEarly(path)) || fetch(path, options));
  } catch (error) {
    const reason = error.name === "AbortError" ? "no answer within 8 s" : error.message;
    throw new ApiError("unreachable", `The server cannot be reached (${reason}).`);
  } finally {
    clearTimeout(timer);
  }
  noteServerDate(response);
  onResponse?.(response);

  if (response.status === 204) return null;
  if (response.ok) return response.parsed ?? response.json();
  let error = null;
  try {
    error = await response.json(); // ErrorBody { error, message }
  } catch {
    // Not JSON (a proxy's error page, say): fall back to the status line.
  }
  const message = error?.message ?? `The server answered ${response.status} ${response.statusText}.`;
  // A read refused for want of a session is "unauthorized", whatever the
  // server's kind; a refused sign-in keeps its own kind.
  const kind = response.status === 401 && error?.error !== "sign_in_refused" ? "unauthorized" : error?.error ?? "http_error";
  throw new ApiError(kind, message, response.status);
}

/** GET /api/hosts/ -> HostSummary[] */
export function fetchHosts() {
  return request("GET", "/api/hosts/");
}

/** GET /api/processes/?host=… -> ProcessListing of the host's newest snapshot. */
export function fetchProcesses(hostId) {
  return request("GET", `/api/processes/?host=${encodeURIComponent(hostId)}`);
}

/**
 * GET /api/processes/?host=… for the live view -> { listing, seq }: seq
 * (the listing's snapshot id, from X-Procmon-Seq) is where GET /api/live/ continues
 * from, or null. Revalidated with the browser's cache (ETag), so an
 * unchanged listing costs a 304.
 */
export async function fetchLiveListing(hostId) {
  let seq = null;
  const listing = await request("GET", `/api/processes/?host=${encodeURIComponent(hostId)}`, undefined, {
    cache: "no-cache",
    onResponse: (response) => {
      seq = response.headers.get("X-Procmon-Seq");
    },
  });
  return { listing, seq };
}

/** The URL of a host's live change stream (GET /api/live/), for EventSource. */
export function liveUrl(hostId, since) {
  const query = new URLSearchParams({ host: hostId });
  if (since) query.set("since", since);
  return `/api/live/?${query}`;
}

/** GET /api/session/ -> SessionInfo { name, role, expires_at, has_password } */
export function fetchSession() {
  return request("GET", "/api/session/");
}

/** POST /api/session/ with a name and password -> SessionInfo */
export function signIn(name, password) {
  return request("POST", "/api/session/", { name, password });
}

/** POST /api/session/ with a one-time link's token -> SessionInfo */
export function signInWithLink(linkToken) {
  return request("POST", "/api/session/", { link_token: linkToken });
}

/** DELETE /api/session/ */
export function signOut() {
  return request("DELETE", "/api/session/");
}

/** PUT /api/users/{name}/password */
export function setPassword(name, password, currentPassword) {
  const body = { password };
  if (currentPassword) body.current_password = currentPassword;
  return request("PUT", `/api/users/${encodeURIComponent(name)}/password`, body);
}

/** GET /api/users/ -> UserInfo[] (admins only) */
export function fetchUsers() {
  return request("GET", "/api/users/");
}

/** POST /api/users/ -> UserInfo */
export function addUser(name, role, password) {
  return request("POST", "/api/users/", { name, role, password });
}

/** DELETE /api/users/{name} */
export function removeUser(name) {
  return request("DELETE", `/api/users/${encodeURIComponent(name)}`);
}

/** GET /api/keys/ -> AgentKeyInfo[] (admins only; never the keys themselves) */
export function fetchKeys() {
  return request("GET", "/api/keys/");
}

/** POST /api/keys/ -> CreatedAgentKey { key, record }: the key, shown this once */
export function createKey(hostId, label) {
  const body = {};
  if (hostId) body.host_id = hostId;
  if (label) body.label = label;
  return request("POST", "/api/keys/", body);
}

/** DELETE /api/keys/{id} */
export function revokeKey(id) {
  return request("DELETE", `/api/keys/${encodeURIComponent(id)}`);
}

/** POST /api/enroll-secret/ -> EnrollSecret { enroll_secret }: shown this once */
export function rotateEnrollSecret() {
  return request("POST", "/api/enroll-secret/");
}

/** DELETE /api/hosts/{id}: the host, its history, and its keys (revoked) */
export function removeHost(hostId) {
  return request("DELETE", `/api/hosts/${encodeURIComponent(hostId)}`);
}
