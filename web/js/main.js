// Starts the page: makes the views and the controllers that do their work,
// wires them to one another and to the state, then signs in (with a
// one-time link in the URL, or the form when the API answers 401), watches
// the chosen host's processes live (live.js, listing.js) and polls the host
// list (poll.js). Each controller is its own module; this file only joins them.

import * as api from "./api.js";
import { serverNow } from "./api.js";
import { createAccount } from "./account.js";
import { createDetails } from "./details.js";
import { createHostList } from "./hosts.js";
import { createKeysPanel } from "./keys.js";
import { createSignIn } from "./signin.js";
import { createLiveFeed } from "./live.js";
import { bookkeeping, readHash, state, subscribe, update } from "./state.js";
import { createTreeView } from "./tree-view.js";
import { createUsersPanel } from "./users.js";
// The controllers: what the views' buttons and the server's answers do.
import { createHostRemoval } from "./host-removal.js";
import { closeKeys, createKey, dismissSecret, openKeys, revokeKey, rotateEnrollSecret } from "./keys-admin.js";
import { createListing } from "./listing.js";
import { createNavigation } from "./navigation.js";
import { createPoller } from "./poll.js";
import { createRender } from "./render.js";
import { createRouting } from "./routing.js";
import { createSession, takeLinkToken } from "./session.js";
import { wireShortcuts, wireTreeControls } from "./tree-controls.js";
import { addUser, closeUsers, openUsers, removeUser, resetPassword } from "./users-admin.js";
import { sortBy, wireViewOptions } from "./view-options.js";
// History, meters, charts and fleet search (their hooks are marked "history:").
import { createProcessCharts } from "./charts.js";
import { createTimeControl } from "./history.js";
import { createMeters } from "./meters.js";
import { createFleetSearch } from "./search.js";
// Alerts: the panel, and the badges of hosts and processes they fire on.
import { createAlertsPanel } from "./alerts-panel.js";
// Process actions: the buttons in the details, and the actions log.
import { createProcessActions } from "./actions.js";
import { createAuditLog } from "./audit.js";

const $ = (id) => document.getElementById(id);

// ---- the views: each calls back into the controllers made below ---------------

const hostList = createHostList(
  $("host-list"),
  (hostId) => navigation.chooseHost(hostId),
  (hostId) => removeHost(hostId),
);
const treeView = createTreeView($("process-table"), $("tree-scroll"), {
  toggle: (key, expand) => navigation.toggle(key, expand),
  select: (key) => navigation.select(key),
  sort: (column, numeric) => sortBy(column, numeric),
});
const liveFeed = createLiveFeed({
  listing: (listing) => listings.showListing(listing),
  batch: (batch, receivedAt) => listings.applyPushed(batch, receivedAt),
  mode: (mode, message) => update({ liveMode: mode, liveMessage: message }),
  failed: (error) => listings.listingFailed(error),
});
const details = createDetails($("details"), {
  select: (key) => navigation.select(key, { reveal: true }),
  close: () => navigation.select(null),
});
const signInForms = createSignIn({
  signIn: (name, password) => session.signIn(() => api.signIn(name, password)),
  setPassword: (password, again) => session.setOwnPassword(password, again),
  later: () => update({ passwordPrompt: false, passwordError: "" }),
});
const account = createAccount({
  signOut: () => session.signOut(),
  openUsers: () => openUsers(),
  openKeys: () => openKeys(),
});
const usersPanel = createUsersPanel({
  add: (name, role, password) => addUser(name, role, password),
  remove: (name) => removeUser(name),
  reset: (name) => resetPassword(name),
  close: () => closeUsers(),
});
// history: the time control, the host's meters, the process charts, fleet search.
const timeControl = createTimeControl($("timebar"), $("process-rows"), {
  showAt: (at) => navigation.showHostAt(at),
  setSince: (since) => update({ since }),
  select: (key) => navigation.select(key, { reveal: true }),
  // The time shown becomes the other end of the compared span, so the
  // exit stays in the list.
  showExited: (key, at) => navigation.jumpTo(state.hostId, key, at, { since: state.at ?? serverNow() }),
});
/**
 * Settles once the first rows are painted, or after a second (an empty
 * host, a failed listing): the meters wait for it, so the opening of a big
 * host is the tree's alone and not shared with sparklines.
 */
const opened = new Promise((resolve) => {
  bookkeeping.treePainted = resolve;
  setTimeout(resolve, 1000);
});
const meters = createMeters($("meters"), { after: opened });
const processCharts = createProcessCharts($("details"));
const fleetSearch = createFleetSearch($("fleet-search"), {
  jump: (hostId, key, at) => navigation.jumpTo(hostId, key, at),
  close: () => fleetSearch.close(),
  unauthorized: () => update({ connection: "unauthorized" }),
});
const keysPanel = createKeysPanel({
  create: (hostId, label) => createKey(hostId, label),
  revoke: (id) => revokeKey(id),
  rotate: () => rotateEnrollSecret(),
  dismiss: () => dismissSecret(),
  close: () => closeKeys(),
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

// ---- the controllers: the only places that change the state -------------------

const pollNow = () => poller.pollNow();
const listings = createListing({ liveFeed, connectionFailed: (error) => poller.connectionFailed(error) });
const poller = createPoller({ liveFeed, followChosenHost: () => listings.followChosenHost() });
const navigation = createNavigation({ treeView, fleetSearch, pollNow });
const session = createSession({ liveFeed, treeView, pollNow });
const removeHost = createHostRemoval({ treeView, pollNow });
const routing = createRouting({ treeView, pollNow });
const render = createRender({
  hostList, treeView, details, signInForms, account, usersPanel, keysPanel, alertsPanel, auditLog,
  processActions, timeControl, meters, processCharts,
});

/**
 * What the page benchmark reads (server/benches/page.rs): the live feed's
 * counters, each pushed batch's time from arrival to the next frame (ms),
 * and when the first rows were drawn (a performance mark).
 */
window.procmonMeasure = { live: liveFeed.counters, pushToFrame: [] };

// ---- wiring -----------------------------------------------------------------

function wire() {
  subscribe(render);
  wireTreeControls();
  wireViewOptions();
  $("hosts-toggle").addEventListener("click", () => update({ hostsFolded: !state.hostsFolded }));
  $("fleet-search-open").addEventListener("click", () => (fleetSearch.isOpen() ? fleetSearch.close() : fleetSearch.open()));
  wireShortcuts();
  routing.listen();
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) pollNow();
  });

  // Start with the host list folded on a phone when the link already names a host.
  const linkToken = takeLinkToken();
  update({ hostsFolded: readHash().host != null });
  routing.applyHash({ poll: false });
  if (linkToken) {
    session.signIn(() => api.signInWithLink(linkToken));
  } else {
    session.loadSession();
    pollNow();
  }
}

wire();
