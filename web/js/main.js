// Starts the page: wires the components to the state, signs in (with a
// one-time link in the URL, or the form when the API answers 401), and polls
// the server every 2 s (the agents' default interval). Live pushes from the
// server will replace the polling later; everything else stays as it is.

import * as api from "./api.js";
import { ApiError, fetchHosts, fetchProcesses, serverNow } from "./api.js";
import { createAccount } from "./account.js";
import { createDetails } from "./details.js";
import { addMetricHeaders } from "./fields.js";
import { createHostList } from "./hosts.js";
import { createKeysPanel } from "./keys.js";
import { createSignIn } from "./signin.js";
import { renderStatus } from "./status.js";
import { collapsedKeys, readHash, state, subscribe, update, writeHash } from "./state.js";
import { buildTree, matcher, parentKeys, visibleRows } from "./tree.js";
import { createTreeView } from "./tree-view.js";
import { createUsersPanel } from "./users.js";
// History, meters, charts and fleet search (their hooks are marked "history:").
import { createProcessCharts } from "./charts.js";
import { createTimeControl } from "./history.js";
import { fetchProcessesAt } from "./history-api.js";
import { createMeters } from "./meters.js";
import { createFleetSearch } from "./search.js";
import { keepSelectedAboveSheet } from "./sheet.js";

const POLL_MS = state.pollSeconds * 1000;
const $ = (id) => document.getElementById(id);

const hostList = createHostList(
  $("host-list"),
  (hostId) => chooseHost(hostId),
  (hostId) => removeHost(hostId),
);
const treeView = createTreeView($("process-table"), $("tree-scroll"), {
  toggle: (key, expand) => toggle(key, expand),
  select: (key) => select(key),
});
const details = createDetails($("details"), {
  select: (key) => select(key, { reveal: true }),
  close: () => select(null),
});
const signInForms = createSignIn({
  signIn: (name, password) => signIn(() => api.signIn(name, password)),
  setPassword: (password, again) => setOwnPassword(password, again),
  later: () => update({ passwordPrompt: false, passwordError: "" }),
});
const account = createAccount({
  signOut: () => signOut(),
  openUsers: () => openUsers(),
  openKeys: () => openKeys(),
});
const usersPanel = createUsersPanel({
  add: (name, role, password) => addUser(name, role, password),
  remove: (name) => removeUser(name),
  reset: (name) => resetPassword(name),
  close: () => update({ usersOpen: false, usersError: "" }),
});
// history: the time control, the host's meters, the process charts, fleet search.
const timeControl = createTimeControl($("timebar"), $("process-rows"), {
  showAt: (at) => showHostAt(at),
  setSince: (since) => update({ since }),
  select: (key) => select(key, { reveal: true }),
  // The time shown becomes the other end of the compared span, so the
  // exit stays in the list.
  showExited: (key, at) => jumpTo(state.hostId, key, at, { since: state.at ?? serverNow() }),
});
const meters = createMeters($("meters"));
const processCharts = createProcessCharts($("details"));
const fleetSearch = createFleetSearch($("fleet-search"), {
  jump: (hostId, key, at) => jumpTo(hostId, key, at),
  close: () => fleetSearch.close(),
  unauthorized: () => update({ connection: "unauthorized" }),
});
const keysPanel = createKeysPanel({
  create: (hostId, label) => createKey(hostId, label),
  revoke: (id) => revokeKey(id),
  rotate: () => rotateEnrollSecret(),
  dismiss: () => update({ shownSecret: null }),
  close: () => update({ keysOpen: false, keysError: "", shownSecret: null }),
});

// ---- actions: the only places that change the state -------------------------

function chooseHost(hostId) {
  if (hostId === state.hostId) {
    if (matchMedia("(max-width: 700px)").matches) update({ hostsFolded: true });
    return;
  }
  treeView.reset();
  update({
    hostId,
    listing: null,
    tree: null,
    listingError: null,
    selectedKey: null,
    selectedProcess: null,
    hostsFolded: true,
  });
  pollNow();
}

function toggle(key, expand) {
  // While searching, every ancestor of a match stays open so no match hides.
  if (matcher(state.query)) return;
  const collapsed = collapsedKeys();
  const open = expand ?? collapsed.has(key);
  if (open) collapsed.delete(key);
  else collapsed.add(key);
  update({});
}

// history: shows the chosen host's tree as it was at `at` (ms), or live (null).
function showHostAt(at) {
  if (at === state.at) return;
  update({ at, listing: null, tree: null, listingError: null });
  pollNow();
}

// history: opens `hostId` at `at` (null: live) with the process `key` selected.
function jumpTo(hostId, key, at, { since = state.since } = {}) {
  if (hostId !== state.hostId) treeView.reset();
  const sameView = hostId === state.hostId && at === state.at;
  revealKey = key;
  update({
    hostId,
    at,
    since,
    selectedKey: key,
    selectedProcess: sameView ? state.tree?.nodes.get(key)?.process ?? null : null,
    hostsFolded: true,
    ...(sameView ? {} : { listing: null, tree: null, listingError: null }),
  });
  fleetSearch.close();
  pollNow();
}

/** history: the chosen host's listing: live, or at the time shown (asked once per time). */
let pastShown = null;
function fetchListing(hostId) {
  if (state.at == null) return fetchProcesses(hostId);
  const key = `${hostId}|${state.at}`;
  if (state.listing && pastShown === key) return Promise.resolve(null);
  return fetchProcessesAt(hostId, state.at).then((listing) => {
    pastShown = key;
    return listing;
  });
}

// A process to open the way to and scroll into view at the next render that
// has it (a link with a process in its hash waits for the tree to arrive).
let revealKey = null;

function select(key, { reveal = false } = {}) {
  const node = key && state.tree?.nodes.get(key);
  if (reveal) revealKey = key;
  update({ selectedKey: key, selectedProcess: node ? node.process : null });
}

// ---- signing in and out, users -----------------------------------------------

/** Signs in with `attempt` (a password or a link), then polls at once. */
async function signIn(attempt) {
  try {
    const session = await attempt();
    update({
      session,
      signInError: "",
      connection: "connecting",
      passwordPrompt: !session.has_password,
      passwordError: "",
    });
    pollNow();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    update({ connection: "unauthorized", signInError: error.message });
  }
}

async function signOut() {
  try {
    await api.signOut();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    // Already ended on the server: signed out all the same.
  }
  // What was shown belongs to the session: it goes with it.
  treeView.reset();
  update({
    session: null,
    connection: "unauthorized",
    signInError: "",
    passwordPrompt: false,
    usersOpen: false,
    users: [],
    keysOpen: false,
    keys: [],
    shownSecret: null,
    hostsError: "",
    hosts: [],
    hostsLoaded: false,
    listing: null,
    tree: null,
    selectedKey: null,
    selectedProcess: null,
  });
}

/** Sets the signed-in user's password (after a one-time link: no current one needed). */
async function setOwnPassword(password, again) {
  if (password !== again) {
    update({ passwordError: "The two passwords differ." });
    return;
  }
  try {
    await api.setPassword(state.session.name, password);
    update({ passwordPrompt: false, passwordError: "", session: { ...state.session, has_password: true } });
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.kind === "unauthorized") update({ connection: "unauthorized" });
    else update({ passwordError: error.message });
  }
}

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

function openUsers() {
  update({ usersOpen: true });
  usersAction(async () => {});
}

function addUser(name, role, password) {
  return usersAction(() => api.addUser(name, role, password));
}

function removeUser(name) {
  if (!confirm(`Remove ${name}? Their sessions end at once.`)) return;
  usersAction(() => api.removeUser(name));
}

function resetPassword(name) {
  const password = prompt(`New password for ${name} (8 or more characters); their sessions end:`);
  if (!password) return;
  usersAction(() => api.setPassword(name, password));
}

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

function openKeys() {
  update({ keysOpen: true });
  keysAction(async () => {});
}

function createKey(hostId, label) {
  return keysAction(async () => {
    const made = await api.createKey(hostId, label);
    const whose = made.record.host_id ? `host ${made.record.host_id}` : "the host of its first snapshot";
    update({ shownSecret: { title: `New agent key ${made.record.id}, for ${whose}`, value: made.key } });
  });
}

function revokeKey(id) {
  if (!confirm(`Revoke agent key ${id}? Its agent is refused from then on.`)) return;
  keysAction(() => api.revokeKey(id));
}

function rotateEnrollSecret() {
  if (!confirm("Make a new enrollment secret? The current one stops working for agents that have not enrolled yet.")) return;
  keysAction(async () => {
    const made = await api.rotateEnrollSecret();
    update({ shownSecret: { title: "New enrollment secret", value: made.enroll_secret } });
  });
}

/** Removes a host that is gone (admins), after asking. */
async function removeHost(hostId) {
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
    if (state.keysOpen) keysAction(async () => {});
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.kind === "unauthorized") update({ connection: "unauthorized" });
    else update({ hostsError: error.message });
  }
  pollNow();
}

/** Who is signed in (for the header); nobody when the server answers 401. */
async function loadSession() {
  try {
    update({ session: await api.fetchSession() });
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    // No session: the first read's 401 shows the form (or, with the
    // server's no_login setting, reads work without one).
  }
}

/**
 * A one-time sign-in link puts its token in the URL's hash (`#signin=…`),
 * which browsers never send to servers. Taken out of the URL at once, so it
 * stays in neither the history nor a bookmark.
 */
function takeLinkToken() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const token = params.get("signin");
  if (!token) return null;
  params.delete("signin");
  const rest = params.toString();
  history.replaceState(null, "", rest ? `#${rest}` : location.pathname + location.search);
  return token;
}

// ---- polling ----------------------------------------------------------------

let timer = null;
let polling = false;
let pollAgain = false;

/** Polls at once (a new host was chosen, a key entered, the tab came back). */
function pollNow() {
  clearTimeout(timer);
  if (polling) pollAgain = true;
  else poll();
}

async function poll() {
  polling = true;
  try {
    await refresh();
  } finally {
    polling = false;
    if (pollAgain) {
      pollAgain = false;
      poll();
    } else {
      clearTimeout(timer);
      timer = setTimeout(poll, document.hidden ? POLL_MS * 5 : POLL_MS);
    }
  }
}

async function refresh() {
  const hostId = state.hostId;
  const at = state.at;
  try {
    const [hosts, listing] = await Promise.all([
      fetchHosts(),
      hostId ? fetchListing(hostId).catch((error) => error) : null,
    ]);
    const changes = {
      hosts,
      hostsLoaded: true,
      connection: "live",
      connectionMessage: "",
      lastSuccessAt: Date.now(),
      signInError: "",
    };
    if (!state.hostId && hosts.length > 0) {
      // Nothing chosen yet: show the first online host, as a start.
      const first = hosts.find((h) => h.online) ?? hosts[0];
      changes.hostId = first.host.id;
      update(changes);
      pollNow();
      return;
    }
    if (listing instanceof ApiError) {
      if (listing.kind === "unauthorized" || listing.kind === "unreachable") throw listing;
      if (hostId === state.hostId && at === state.at) {
        changes.listingError = listing.message;
        changes.listing = null;
        changes.tree = null;
      }
    } else if (listing && hostId === state.hostId && at === state.at) {
      const tree = buildTree(listing.processes);
      changes.listing = listing;
      changes.tree = tree;
      changes.listingError = null;
      const node = state.selectedKey ? tree.nodes.get(state.selectedKey) : null;
      if (node) changes.selectedProcess = node.process;
    }
    update(changes);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.kind === "unauthorized") {
      // The page keeps what it shows; the form asks to sign in again.
      update({ connection: "unauthorized", connectionMessage: error.message });
    } else {
      update({ connection: error.kind === "unreachable" ? "unreachable" : "error", connectionMessage: error.message });
    }
  }
}

// ---- rendering --------------------------------------------------------------

function render() {
  const now = serverNow();
  const listing = state.listing;
  const summary = state.hosts.find((h) => h.host.id === state.hostId) ?? listing?.host ?? null;
  renderStatus(state, summary, now);
  signInForms.render(state);
  account.render(state);
  usersPanel.render(state);
  keysPanel.render(state);

  $("hosts-pane").classList.toggle("folded", state.hostsFolded);
  $("hosts-toggle").setAttribute("aria-expanded", String(!state.hostsFolded));
  hostList.render(state.hosts, state.hostId, now, state.session?.role === "admin");
  $("hosts-error").textContent = state.hostsError;
  $("hosts-empty").hidden = !state.hostsLoaded || state.hosts.length > 0;

  $("hosts-toggle-current").textContent = summary ? summary.display_name : "choose a host";
  $("host-title").textContent = summary ? summary.display_name : state.hostsLoaded ? "No host chosen" : "Loading…";
  $("host-meta").textContent = summary ? hostMeta(summary) : "";
  document.title = summary ? `${summary.display_name} · procmon` : "procmon";

  const tree = state.tree;
  const revealNode = revealKey && tree ? tree.nodes.get(revealKey) : null;
  if (revealNode) {
    for (let n = revealNode.parent; n; n = n.parent) collapsedKeys().delete(n.key);
  }
  const match = matcher(state.query);
  const rows = tree
    ? visibleRows(tree, { collapsed: collapsedKeys(), sort: state.sort, match })
    : [];
  treeView.render(rows, tree ? tree.nodes : new Map(), state.selectedKey);
  if (revealNode) {
    treeView.reveal(revealKey);
    revealKey = null;
  }
  renderCounts(tree, rows, match);
  renderSortHeaders();

  const node = state.selectedKey && tree ? tree.nodes.get(state.selectedKey) ?? null : null;
  details.render(node, state.selectedProcess, tree, now);
  document.body.classList.toggle("with-details", state.selectedProcess != null);

  // history: time control, meters, charts; the selected row above a phone's sheet.
  timeControl.render(state, summary, now);
  meters.render(state.hostId, summary, now, state.at);
  processCharts.render(state.hostId, state.selectedProcess, state.at, now);
  keepSelectedAboveSheet($("process-rows"), $("details"), state.selectedProcess ? state.selectedKey : null);

  writeHash();
}

function hostMeta(summary) {
  const h = summary.host;
  const parts = [
    [h.os_name, h.os_version].filter(Boolean).join(" "),
    h.kernel ? `kernel ${h.kernel}` : "",
    h.cpu_count ? `${h.cpu_count} CPUs` : "",
    h.agent_version ? `agent ${h.agent_version}` : "",
  ];
  return parts.filter(Boolean).join(" · ");
}

function renderCounts(tree, rows, match) {
  let text = "";
  if (tree) {
    const total = tree.nodes.size;
    text = match
      ? `${rows.filter((r) => r.matched).length} of ${total} match`
      : `${total} processes`;
  }
  $("process-count").textContent = text;
  $("tree-empty").hidden = !(tree && rows.length === 0);
}

function renderSortHeaders() {
  for (const th of document.querySelectorAll("th[data-sort]")) {
    const active = th.dataset.sort === state.sort.column;
    th.setAttribute("aria-sort", active ? (state.sort.descending ? "descending" : "ascending") : "none");
  }
}

// ---- wiring -----------------------------------------------------------------

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
  if (p && p !== state.selectedKey) revealKey = p;
  changes.selectedProcess = p && state.tree ? state.tree.nodes.get(p)?.process ?? null : null;
  if ((q ?? "") !== state.query) {
    changes.query = q ?? "";
    $("search").value = changes.query;
  }
  update(changes);
  if ((changes.hostId || "at" in changes) && pollOnChange) pollNow();
}

function wire() {
  subscribe(render);

  $("search").addEventListener("input", (event) => {
    // Keep the selected process in view as the rows around it come and go.
    revealKey = state.selectedKey;
    update({ query: event.target.value });
  });
  $("search").addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.target.value = "";
      revealKey = state.selectedKey;
      update({ query: "" });
    }
  });
  $("expand-all").addEventListener("click", () => {
    collapsedKeys().clear();
    update({});
  });
  $("collapse-all").addEventListener("click", () => {
    if (!state.tree) return;
    const collapsed = collapsedKeys();
    for (const key of parentKeys(state.tree)) collapsed.add(key);
    update({});
  });
  addMetricHeaders(document.querySelector("#process-table thead tr"), "started");
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      const column = th.dataset.sort;
      const same = state.sort.column === column;
      // Numbers read best biggest first, text A to Z first.
      const numeric = th.classList.contains("num");
      update({ sort: { column, descending: same ? !state.sort.descending : numeric && column !== "pid" } });
    });
  }
  $("hosts-toggle").addEventListener("click", () => update({ hostsFolded: !state.hostsFolded }));
  $("fleet-search-open").addEventListener("click", () => (fleetSearch.isOpen() ? fleetSearch.close() : fleetSearch.open()));
  document.addEventListener("keydown", (event) => {
    // "/" jumps to the search box, as in many consoles and web apps.
    if (event.key === "/" && document.activeElement?.tagName !== "INPUT") {
      event.preventDefault();
      $("search").focus();
    }
  });
  window.addEventListener("hashchange", () => applyHash());
  window.addEventListener("popstate", () => applyHash());
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) pollNow();
  });

  // Start with the host list folded on a phone when the link already names a host.
  const linkToken = takeLinkToken();
  update({ hostsFolded: readHash().host != null });
  applyHash({ poll: false });
  if (linkToken) {
    signIn(() => api.signInWithLink(linkToken));
  } else {
    loadSession();
    pollNow();
  }
}

wire();
