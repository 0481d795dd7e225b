// Draws the whole page from the state, once per batch of updates: the
// status line, the header's panels, the host list, the tree, the details,
// and (history) the time control, meters and charts; then writes the URL
// hash. Each part is a view that only shows what the state says.

import { serverNow } from "./api.js";
import { firingByHost } from "./alert-feed.js";
import { renderTree } from "./rows.js";
import { keepSelectedAboveSheet } from "./sheet.js";
import { state, writeHash } from "./state.js";
import { renderStatus } from "./status.js";
import { matcher } from "./tree.js";
import { renderViewOptions } from "./view-options.js";

const $ = (id) => document.getElementById(id);

/**
 * @param {object} views  the page's parts, as main.js made them: hostList, treeView,
 *   details, signInForms, account, usersPanel, keysPanel, alertsPanel, auditLog,
 *   processActions, timeControl, meters, processCharts
 * @returns {() => void} the render, for subscribe()
 */
export function createRender(views) {
  const {
    hostList, treeView, details, signInForms, account, usersPanel, keysPanel, alertsPanel, auditLog,
    processActions, timeControl, meters, processCharts,
  } = views;

  return function render() {
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
    const rows = renderTree(treeView, tree, match, summary);
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
  };
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
