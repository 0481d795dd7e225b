// Starts the page: wires the components to the state, signs in (with a
// one-time link in the URL, or the form when the API answers 401), watches
// the chosen host's processes live (live.js: the listing once, then pushed
// changes applied in place), and polls the host list.

import * as api from "./api.js";
import { ApiError, fetchHosts, serverNow } from "./api.js";
import { createAccount } from "./account.js";
import { createDetails } from "./details.js";
import { COLUMNS } from "./fields.js";
import { createHostList } from "./hosts.js";
import { createKeysPanel } from "./keys.js";
import { createSignIn } from "./signin.js";
import { renderStatus } from "./status.js";
import { createLiveFeed } from "./live.js";
import { collapsedKeys, readHash, setView, state, subscribe, update, writeHash } from "./state.js";
import {
  applyBatch, buildTree, changesBetween, diskRates, expire, kernelThreads, matcher, parentKeys, sortField,
  visibleRows,
} from "./tree.js";
import { createTreeView } from "./tree-view.js";
import { createUsersPanel } from "./users.js";
// History, meters, charts and fleet search (their hooks are marked "history:").
import { createProcessCharts } from "./charts.js";
import { createTimeControl } from "./history.js";
import { fetchProcessesAt } from "./history-api.js";
import { createMeters, onLoad } from "./meters.js";
import { createFleetSearch } from "./search.js";
import { keepSelectedAboveSheet } from "./sheet.js";
// Alerts: the panel, and the badges of hosts and processes they fire on.
import { alertingProcesses, firingByHost } from "./alert-feed.js";
import { createAlertsPanel } from "./alerts-panel.js";
// Process actions: the buttons in the details, and the actions log.
import { createProcessActions } from "./actions.js";
import { createAuditLog } from "./audit.js";

const POLL_MS = state.pollSeconds * 1000;
/** How long rows keep their order after the pointer last moved over them. */
const FREEZE_MS = 4000;
const $ = (id) => document.getElementById(id);

const hostList = createHostList(
  $("host-list"),
  (hostId) => chooseHost(hostId),
  (hostId) => removeHost(hostId),
);
const treeView = createTreeView($("process-table"), $("tree-scroll"), {
  toggle: (key, expand) => toggle(key, expand),
  select: (key) => select(key),
  sort: (column, numeric) => sortBy(column, numeric),
});
const liveFeed = createLiveFeed({
  listing: (listing) => showListing(listing),
  batch: (batch, receivedAt) => applyPushed(batch, receivedAt),
  mode: (mode, message) => update({ liveMode: mode, liveMessage: message }),
  failed: (error) => listingFailed(error),
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
/**
 * Settles once the first rows are painted, or after a second (an empty
 * host, a failed listing): the meters wait for it, so the opening of a big
 * host is the tree's alone and not shared with sparklines.
 */
let treePainted;
const opened = new Promise((resolve) => {
  treePainted = resolve;
  setTimeout(resolve, 1000);
});
const meters = createMeters($("meters"), { after: opened });
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

const alertsPanel = createAlertsPanel({
  set: (changes) => update(changes),
  unauthorized: () => update({ connection: "unauthorized" }),
});
const auditLog = createAuditLog($("actions-panel"), $("actions-open"), {
  set: (changes) => update(changes),
  unauthorized: () => update({ connection: "unauthorized" }),
});
const processActions = createProcessActions(details.actionsBox, {
  unauthorized: () => update({ connection: "unauthorized" }),
  changed: () => auditLog.refresh(),
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
  collapsedVersion += 1;
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

/** history: the chosen host's listing at the time shown (asked once per time). */
let pastShown = null;
function fetchListing(hostId) {
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
  liveFeed.stop();
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
    alerts: [],
    silences: null,
    alertRules: null,
    alertChannels: null,
    alertsOpen: false,
    actionsOpen: false,
    actionsLog: null,
    actionsError: "",
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

// ---- the host list, polled; the chosen host, live ------------------------------

let timer = null;
let polling = false;
let pollAgain = false;

/** Asks at once (a new host was chosen, signed in, the tab came back). */
function pollNow() {
  clearTimeout(timer);
  followChosenHost();
  if (polling) pollAgain = true;
  else poll();
}

async function poll() {
  polling = true;
  try {
    await refreshHosts();
  } finally {
    polling = false;
    if (pollAgain) {
      pollAgain = false;
      poll();
    } else {
      clearTimeout(timer);
      timer = setTimeout(poll, hostsPollMs());
    }
  }
}

/**
 * The host list changes slowly (last seen, online) and the chosen host's
 * processes come by the stream: while it flows, the list is asked for less
 * often.
 */
function hostsPollMs() {
  const base = state.liveMode === "stream" ? POLL_MS * 5 : POLL_MS;
  return document.hidden ? base * 5 : base;
}

async function refreshHosts() {
  try {
    const hosts = await fetchHosts();
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
    }
    update(changes);
    followChosenHost();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    connectionFailed(error);
  }
}

function connectionFailed(error) {
  if (error.kind === "unauthorized") {
    // The page keeps what it shows; the form asks to sign in again.
    liveFeed.stop();
    update({ connection: "unauthorized", connectionMessage: error.message });
  } else {
    update({ connection: error.kind === "unreachable" ? "unreachable" : "error", connectionMessage: error.message });
  }
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
  pushedAt = receivedAt;
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
let expiryTimer = 0;
function scheduleExpiry() {
  if (expiryTimer || !state.tree || state.tree.leaving.size === 0) return;
  expiryTimer = setTimeout(() => {
    expiryTimer = 0;
    if (!state.tree) return;
    if (expire(state.tree, Date.now())) update({});
    scheduleExpiry();
  }, 500);
}

/** When the last pushed batch arrived (performance.now()), for measuring. */
let pushedAt = 0;

/**
 * What the page benchmark reads (server/benches/page.rs): the live feed's
 * counters, each pushed batch's time from arrival to the next frame (ms),
 * and when the first rows were drawn (a performance mark).
 */
window.procmonMeasure = { live: liveFeed.counters, pushToFrame: [] };

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
  alertsPanel.render(state, now);
  auditLog.render(state, summary, now);

  $("hosts-pane").classList.toggle("folded", state.hostsFolded);
  $("hosts-toggle").setAttribute("aria-expanded", String(!state.hostsFolded));
  hostList.render(state.hosts, state.hostId, now, state.session?.role === "admin", firingByHost(state.alerts));
  $("hosts-error").textContent = state.hostsError;
  $("hosts-empty").hidden = !state.hostsLoaded || state.hosts.length > 0;

  $("hosts-toggle-current").textContent = summary ? summary.display_name : "choose a host";
  $("host-title").textContent = summary ? summary.display_name : state.hostsLoaded ? "No host chosen" : "Loading…";
  $("host-meta").textContent = summary ? hostMeta(summary) : "";
  document.title = summary ? `${summary.display_name} · procmon` : "procmon";

  const tree = state.tree;
  const match = matcher(state.query);
  const rows = renderTree(tree, match, summary);
  renderCounts(tree, rows, match);
  renderViewOptions(summary);

  const node = state.selectedKey && tree ? tree.nodes.get(state.selectedKey) ?? null : null;
  details.render(node, state.selectedProcess, tree, now);
  processActions.render(state, node, summary);
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

// The rows are listed again only when something they depend on changed: the
// tree (a pushed batch), what is folded, the order, the search, the view.
let rowsFor = null;
let rows = [];
let collapsedVersion = 0;
let frozenUntil = 0;
let thawTimer = 0;

function renderTree(tree, match, summary) {
  const revealNode = revealKey && tree ? tree.nodes.get(revealKey) : null;
  if (revealNode) {
    for (let n = revealNode.parent; n; n = n.parent) collapsedKeys().delete(n.key);
    collapsedVersion += 1;
  }
  // Rows keep their order while the pointer moves over them: a person is
  // reading or about to click (new ones still appear, at the end of their
  // siblings); they are sorted again once it rests or leaves.
  const frozen = Date.now() < frozenUntil;
  const view = state.view;
  const hide = tree && view.hideKernel ? kernelThreads(tree) : null;
  const key = tree
    ? [tree.version, collapsedVersion, state.sort.column, state.sort.descending, state.query, view.flat, hide != null, frozen]
        .join("|")
    : null;
  const changed = tree !== rowsFor?.tree || key !== rowsFor?.key;
  if (changed) {
    rows = tree
      ? visibleRows(tree, { collapsed: collapsedKeys(), sort: state.sort, match, flat: view.flat, hide, frozen })
      : [];
    rowsFor = { tree, key };
  }
  if (frozen) {
    clearTimeout(thawTimer);
    thawTimer = setTimeout(() => update({}), frozenUntil - Date.now() + 10);
  }
  treeView.render(rows, {
    tree,
    chosen: new Set(view.columns),
    sort: state.sort,
    cpuScale: view.cpuScale,
    cpuCount: summary?.host.cpu_count ?? 1,
    memoryTotal: summary?.host.memory_total_bytes ?? 0,
    os: summary?.host.os_name ?? "",
    rates: (node) => diskRates(tree, node),
    alerting: alertingProcesses(state.alerts, state.hostId),
  }, state.selectedKey, changed);
  if (revealNode) {
    treeView.reveal(revealKey);
    revealKey = null;
  }
  if (pushedAt) {
    // From a pushed batch's arrival to the frame that shows it.
    const since = pushedAt;
    pushedAt = 0;
    requestAnimationFrame(() => window.procmonMeasure.pushToFrame.push(performance.now() - since));
  }
  if (rows.length > 0 && performance.getEntriesByName("procmon-first-rows").length === 0) {
    performance.mark("procmon-first-rows");
    requestAnimationFrame(() => {
      performance.mark("procmon-first-frame");
      treePainted();
    });
  }
  return rows;
}

/** The view's controls as the state says: flat list, columns, CPU scale, kernel threads. */
function renderViewOptions(summary) {
  const view = state.view;
  $("view-flat").setAttribute("aria-pressed", String(view.flat));
  $("expand-all").disabled = view.flat;
  $("collapse-all").disabled = view.flat;
  $("cpu-scale").value = view.cpuScale;
  $("hide-kernel").checked = view.hideKernel;
  const chooser = $("column-chooser");
  const os = summary?.host.os_name ?? "";
  for (const column of COLUMNS) {
    let box = chooser.querySelector(`input[value="${column.id}"]`);
    if (!box) {
      const label = document.createElement("label");
      box = document.createElement("input");
      box.type = "checkbox";
      box.value = column.id;
      label.append(box, document.createTextNode(" "), document.createElement("span"));
      chooser.append(label);
    }
    box.checked = view.columns.includes(column.id);
    const text = column.header({ cpuScale: view.cpuScale, os });
    const span = box.parentElement.querySelector("span");
    if (span.textContent !== text) span.textContent = text;
  }
}

function sortBy(column, numeric) {
  const same = state.sort.column === column;
  // Numbers read best biggest first, text A to Z first.
  update({ sort: { column, descending: same ? !state.sort.descending : numeric && column !== "pid" } });
}

/** Flat list on or off; the flat list starts sorted by CPU, as htop's. */
function toggleFlat() {
  const flat = !state.view.flat;
  if (flat && state.sort.column === "pid" && !state.sort.descending) {
    update({ sort: { column: "cpu", descending: true } });
  }
  setView({ flat });
}

// ---- wiring -----------------------------------------------------------------

function wireViewOptions() {
  $("view-flat").addEventListener("click", () => toggleFlat());
  $("cpu-scale").addEventListener("change", (event) => setView({ cpuScale: event.target.value }));
  $("hide-kernel").addEventListener("change", (event) => setView({ hideKernel: event.target.checked }));
  $("column-chooser").addEventListener("change", (event) => {
    const box = event.target.closest("input[type=checkbox]");
    if (!box) return;
    const chosen = new Set(state.view.columns);
    if (box.checked) chosen.add(box.value);
    else chosen.delete(box.value);
    // Kept in the table's order, whatever order they were ticked in.
    setView({ columns: COLUMNS.map((c) => c.id).filter((id) => chosen.has(id)) });
  });
  // Close the options when clicking elsewhere.
  document.addEventListener("click", (event) => {
    const options = $("view-options");
    if (options.open && !options.contains(event.target)) options.open = false;
  });
  const scroller = $("tree-scroll");
  scroller.addEventListener("pointermove", (event) => {
    if (event.pointerType === "mouse") frozenUntil = Date.now() + FREEZE_MS;
  }, { passive: true });
  scroller.addEventListener("pointerleave", () => {
    if (frozenUntil > Date.now()) {
      frozenUntil = 0;
      update({});
    }
  });
}

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
    // The selected process stays in view as its surroundings open.
    revealKey = state.selectedKey;
    collapsedKeys().clear();
    collapsedVersion += 1;
    update({});
  });
  $("collapse-all").addEventListener("click", () => {
    if (!state.tree) return;
    const collapsed = collapsedKeys();
    for (const key of parentKeys(state.tree)) collapsed.add(key);
    collapsedVersion += 1;
    update({});
  });
  wireViewOptions();
  $("hosts-toggle").addEventListener("click", () => update({ hostsFolded: !state.hostsFolded }));
  $("fleet-search-open").addEventListener("click", () => (fleetSearch.isOpen() ? fleetSearch.close() : fleetSearch.open()));
  document.addEventListener("keydown", (event) => {
    const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement?.tagName);
    if (typing || event.altKey || event.ctrlKey || event.metaKey) return;
    // "/" jumps to the search box, as in many consoles and web apps.
    if (event.key === "/") {
      event.preventDefault();
      $("search").focus();
    } else if (event.key === "f") {
      // "f": flat list or tree.
      event.preventDefault();
      toggleFlat();
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
