// The page's state, in one place. Components never keep their own copy of
// what the server said: they read it from here when the page renders, and
// change it only through update(), which schedules one render.

/** Where the view's preferences are kept in this browser (localStorage). */
const PREFERENCES_KEY = "procmon.view";

export const state = {
  /** HostSummary[] from the newest GET /api/hosts/. */
  hosts: [],
  /** Whether the host list has been fetched at least once. */
  hostsLoaded: false,
  /** The chosen host's id (kept in the URL hash as `host=`). */
  hostId: null,
  /** ProcessListing of the chosen host, or null until one arrives. */
  listing: null,
  /** The tree built from `listing` (see tree.js). */
  tree: null,
  /** Why the chosen host's processes could not be shown, e.g. unknown host. */
  listingError: null,
  /** Keys of collapsed nodes, one Set per host id, kept across refreshes. */
  collapsedByHost: new Map(),
  /** Sibling order: a column of tree.js SORT_COLUMNS, and its direction. */
  sort: { column: "pid", descending: false },
  /** How the processes are listed and read; remembered (see savePreferences). */
  view: loadPreferences(),
  /** "stream" while changes are pushed, "polling" when the page fell back to asking. */
  liveMode: "connecting",
  /** Why live updates are not pushed, for people. */
  liveMessage: "",
  /** The search box's text (kept in the URL hash as `q=`). */
  query: "",
  /** Key (pid@start) of the selected process (kept in the URL hash as `p=`). */
  selectedKey: null,
  /** The selected process as last seen, so its details outlive its exit. */
  selectedProcess: null,
  /** "connecting", "live", "unreachable", "unauthorized" or "error". */
  connection: "connecting",
  /** Message of the last failed poll, for people. */
  connectionMessage: "",
  /** When (browser clock, ms) the server last answered a poll. */
  lastSuccessAt: null,
  /** SessionInfo of who is signed in ({ name, role, expires_at, has_password }), or null. */
  session: null,
  /** Why the last sign-in was refused, for people. */
  signInError: "",
  /** Whether to ask the signed-in user for a password (signed in by a one-time link, none set). */
  passwordPrompt: false,
  /** Why the password could not be set. */
  passwordError: "",
  /** Whether the users panel (admins) is open, the users in it, and its last error. */
  usersOpen: false,
  users: [],
  usersError: "",
  /** Whether the agent keys panel (admins) is open, the keys in it, and its last error. */
  keysOpen: false,
  keys: [],
  keysError: "",
  /** A key or enrollment secret just made, shown once: { title, value }, or null. */
  shownSecret: null,
  /** Why a host could not be removed. */
  hostsError: "",
  /** How often the page asks the server for news, in seconds. */
  pollSeconds: 2,
  /** Whether the host list is folded away (phone width). */
  hostsFolded: false,
  /** The past time shown (ms), or null for live (kept in the URL hash as `at=`). */
  at: null,
  /** Start of the span whose changes are marked (ms), or null (hash `since=`). */
  since: null,
  /** Open alerts (pending and firing) across the fleet, newest first (alert-feed.js). */
  alerts: [],
  /** Silences in force or to come, or null until read. */
  silences: null,
  /** Why the alerts could not be read. */
  alertsError: "",
  /** Whether the alerts panel is open, and its part: "alerts", "rules", "silences" or "channels". */
  alertsOpen: false,
  alertsTab: "alerts",
  /** AlertRule[] as last read, or null until read. */
  alertRules: null,
  /** Channel[] as last read, or null until read. */
  alertChannels: null,
  /** Whether the actions log is open, and narrowed to the host shown. */
  actionsOpen: false,
  actionsHostOnly: false,
  /** The actions log as last read: { hostId (the filter, or null), entries: ActionEntry[] }, or null. */
  actionsLog: null,
  /** Why the actions log could not be read. */
  actionsError: "",
};

/**
 * What the controllers keep between calls beside the state: marks for the
 * next render, timers, and the rows' cache. Set by plain assignment, never
 * through update(): none of it is shown by itself, so changing it alone
 * asks for no render (and the renderer changes some of it as it draws).
 */
export const bookkeeping = {
  /**
   * A process to open the way to and scroll into view at the next render
   * that has it (a link with a process in its hash waits for the tree to
   * arrive).
   */
  revealKey: null,
  /** Counts changes to what is folded, so the rows are listed again after one. */
  collapsedVersion: 0,
  /** Rows keep their order until then (Date.now() ms): the pointer is over them. */
  frozenUntil: 0,
  /** The timer that sorts the rows again once they thaw. */
  thawTimer: 0,
  /** The rows of the last render, and what they were listed for ({ tree, key }). */
  rows: [],
  rowsFor: null,
  /** When the last pushed batch arrived (performance.now()), for measuring; 0 once drawn. */
  pushedAt: 0,
  /** Settles the promise the meters wait for, once the first rows are painted. */
  treePainted: () => {},
  /** history: `host|time` of the past listing shown (asked once per time). */
  pastShown: null,
  /** The host list's next poll, whether one is under way, and whether to ask again after it. */
  pollTimer: null,
  polling: false,
  pollAgain: false,
  /** The timer that takes exited processes out of the tree. */
  expiryTimer: 0,
};

/**
 * The view's preferences: { flat, columns: [ids], cpuScale: "core" |
 * "machine", hideKernel }, from localStorage when saved there.
 */
function loadPreferences() {
  const defaults = {
    flat: false,
    columns: ["pid", "user", "cpu", "memory", "threads", "started"],
    cpuScale: "core",
    hideKernel: true,
  };
  try {
    const saved = JSON.parse(localStorage.getItem(PREFERENCES_KEY) ?? "null");
    if (!saved || typeof saved !== "object") return defaults;
    return {
      flat: saved.flat === true,
      columns: Array.isArray(saved.columns) ? saved.columns.filter((c) => typeof c === "string") : defaults.columns,
      cpuScale: saved.cpuScale === "machine" ? "machine" : "core",
      hideKernel: saved.hideKernel !== false,
    };
  } catch {
    return defaults; // storage refused (private mode) or garbled
  }
}

/** Changes the view's preferences and remembers them in this browser. */
export function setView(changes) {
  const view = { ...state.view, ...changes };
  try {
    localStorage.setItem(PREFERENCES_KEY, JSON.stringify(view));
  } catch {
    // Not remembered, still applied.
  }
  update({ view });
}

const listeners = [];
let scheduled = false;

/** Calls `render` after every batch of updates. */
export function subscribe(render) {
  listeners.push(render);
}

/** Merges `changes` into the state and schedules one render for the batch. */
export function update(changes) {
  Object.assign(state, changes);
  if (scheduled) return;
  scheduled = true;
  queueMicrotask(() => {
    scheduled = false;
    for (const render of listeners) render(state);
  });
}

/** The collapsed-node keys of the chosen host (created on first use). */
export function collapsedKeys() {
  let keys = state.collapsedByHost.get(state.hostId);
  if (!keys) {
    keys = new Set();
    state.collapsedByHost.set(state.hostId, keys);
  }
  return keys;
}

/** What the URL hash says: { host, p, q, at, since }, each a string or null. */
export function readHash() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  return {
    host: params.get("host"),
    p: params.get("p"),
    q: params.get("q"),
    at: params.get("at"),
    since: params.get("since"),
  };
}

/**
 * Writes host, selection and search into the URL hash, so a reload or a shared
 * link shows the same view. A new host or time adds a history entry (Back
 * returns to the previous one); selection and search changes replace the
 * current one.
 */
export function writeHash() {
  const params = new URLSearchParams();
  if (state.hostId) params.set("host", state.hostId);
  if (state.selectedKey) params.set("p", state.selectedKey);
  if (state.query) params.set("q", state.query);
  if (state.at != null) params.set("at", new Date(state.at).toISOString());
  if (state.since != null) params.set("since", new Date(state.since).toISOString());
  const hash = `#${params.toString()}`;
  if (hash === location.hash || (hash === "#" && location.hash === "")) return;
  const previous = readHash();
  const timeMoved = (previous.at ? Date.parse(previous.at) : null) !== state.at;
  if ((previous.host && previous.host !== state.hostId) || timeMoved) {
    history.pushState(null, "", hash);
  } else {
    history.replaceState(null, "", hash);
  }
}
