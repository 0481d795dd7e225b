// The alerts across the fleet: what fires (worst first), what is pending
// apart from it, and what resolved recently (read only while that list is
// open). Each alert names its rule, host and process, says since when, shows
// a silence that covers it, and links to its host's tree as it was when it
// fired; an admin can silence one for an hour. Items are reused across
// refreshes (a focused button stays focused) and every text is set as text.

import { ApiError, serverNow } from "./api.js";
import { createSilence, fetchAlerts } from "./alerts-api.js";
import { alertLink, silencedUntil } from "./alert-feed.js";
import { formatAgo, formatDateTime } from "./format.js";
import { el } from "./dom.js";

const SEVERITY_RANK = { critical: 0, warning: 1, info: 2 };
/** Resolved alerts listed. */
const RESOLVED_SHOWN = 50;
const HOUR_MS = 3600e3;

/**
 * @param {HTMLElement} root  where the view goes
 * @param {object} actions    { set(changes), changed(), unauthorized() }
 * @returns {{ render(state, now) }}
 */
export function createAlertsView(root, actions) {
  const error = el("p", "auth-error");
  error.id = "alerts-error";
  error.setAttribute("role", "alert");
  const firing = section("alerts-firing", "Firing", "Nothing is firing.");
  const pending = section(
    "alerts-pending",
    "Pending",
    "",
    "The condition holds, not yet for as long as the rule's “for”: nobody has been told.",
  );
  const resolved = el("details", "alerts-resolved");
  resolved.id = "alerts-resolved";
  const resolvedSummary = el("summary", null, "Resolved recently");
  const resolvedList = el("ul", "alert-list");
  resolvedList.id = "alerts-resolved-list";
  const resolvedEmpty = el("p", "empty", "Nothing resolved lately.");
  resolvedEmpty.hidden = true;
  resolved.append(resolvedSummary, resolvedList, resolvedEmpty);
  root.append(error, firing.box, pending.box, resolved);

  const items = new Map(); // alert id -> { li, fields }
  let lastState = null;
  let resolvedAlerts = null;
  let resolvedFor = "";
  let localError = "";

  resolved.addEventListener("toggle", () => {
    if (resolved.open) loadResolved();
  });
  root.addEventListener("click", (event) => {
    const silence = event.target.closest("button[data-silence]");
    if (silence) {
      silenceHour(silence.dataset.silence);
      return;
    }
    // The tree opens where the link says (the URL's hash): the panel gives it the room.
    if (event.target.closest("a.alert-open")) actions.set({ alertsOpen: false });
  });

  async function loadResolved() {
    try {
      resolvedAlerts = await fetchAlerts("resolved", RESOLVED_SHOWN);
      localError = "";
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      if (e.kind === "unauthorized") actions.unauthorized();
      localError = e.message;
    }
    if (lastState) render(lastState, serverNow());
  }

  async function silenceHour(alertId) {
    const alert = lastState?.alerts.find((a) => a.id === alertId);
    if (!alert) return;
    const reason = prompt(
      `Silence “${alert.rule_name}” on ${hostName(lastState, alert.host_id)} for an hour? Why:`,
      "Being looked at",
    );
    if (!reason) return;
    try {
      await createSilence({
        rule_id: alert.rule_id,
        host: alert.host_id,
        until: new Date(serverNow() + HOUR_MS).toISOString(),
        reason,
      });
      localError = "";
      actions.changed();
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      if (e.kind === "unauthorized") actions.unauthorized();
      localError = e.message;
      if (lastState) render(lastState, serverNow());
    }
  }

  function render(state, now) {
    lastState = state;
    const shownError = localError || state.alertsError;
    if (error.textContent !== shownError) error.textContent = shownError;
    const admin = state.session?.role === "admin";
    const firingNow = state.alerts
      .filter((a) => a.state === "firing")
      .sort((a, b) => SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] || Date.parse(b.fired_at) - Date.parse(a.fired_at));
    const pendingNow = state.alerts.filter((a) => a.state === "pending");
    const used = new Set();
    fillList(firing, firingNow, state, now, admin, used);
    fillList(pending, pendingNow, state, now, admin, used);
    pending.box.hidden = pendingNow.length === 0;
    // An alert left the open ones (it resolved, or its rule went): the resolved list is read again.
    const openIds = state.alerts.map((a) => a.id).join(",");
    if (resolved.open && resolvedFor !== openIds) {
      resolvedFor = openIds;
      loadResolved();
    }
    const resolvedShown = resolved.open ? resolvedAlerts ?? [] : [];
    fillList({ list: resolvedList }, resolvedShown, state, now, false, used);
    resolvedEmpty.hidden = !(resolved.open && resolvedAlerts && resolvedAlerts.length === 0);
    for (const [id, item] of items) {
      if (!used.has(id)) {
        item.li.remove();
        items.delete(id);
      }
    }
  }

  function fillList(part, alerts, state, now, admin, used) {
    if (part.count) setText(part.count, alerts.length ? ` (${alerts.length})` : "");
    if (part.empty) part.empty.hidden = alerts.length > 0;
    let cursor = part.list.firstChild;
    for (const alert of alerts) {
      used.add(alert.id);
      let item = items.get(alert.id);
      if (!item) {
        item = makeItem(alert.id);
        items.set(alert.id, item);
      }
      fill(item, alert, state, now, admin);
      if (item.li !== cursor) part.list.insertBefore(item.li, cursor);
      else cursor = cursor.nextSibling;
    }
    // What is left is no longer in this list (another may take it back).
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
  }

  return { render };
}

function section(id, title, emptyText, hint = "") {
  const box = el("section", "alerts-section");
  box.id = `${id}-section`;
  const heading = el("h3", "alerts-title", title);
  const count = el("span", "alerts-title-count");
  heading.append(count);
  box.append(heading);
  if (hint) box.append(el("p", "alerts-hint", hint));
  const list = el("ul", "alert-list");
  list.id = id;
  const empty = el("p", "empty", emptyText);
  empty.hidden = !emptyText;
  box.append(list);
  if (emptyText) box.append(empty);
  return { box, list, count, empty: emptyText ? empty : null };
}

function makeItem(id) {
  const li = el("li", "alert-item");
  li.dataset.alertId = id;
  const line = el("div", "alert-line");
  const fields = {
    severity: el("span", "alert-severity"),
    rule: el("span", "alert-rule"),
    host: el("span", "alert-host"),
    process: el("span", "alert-process"),
    silenced: el("span", "alert-silenced"),
    flapping: el("span", "alert-flapping", "flapping"),
    summary: el("p", "alert-summary"),
    when: el("span", "alert-when"),
    open: el("a", "alert-open"),
    silence: el("button", "alert-silence", "Silence 1 h"),
  };
  fields.silence.type = "button";
  fields.silence.dataset.silence = id;
  fields.flapping.title = "Fired again and again within the hour: channels were told once, and are told again when it settles";
  line.append(fields.severity, fields.rule, fields.host, fields.process, fields.silenced, fields.flapping);
  const foot = el("div", "alert-foot");
  foot.append(fields.when, fields.open, fields.silence);
  li.append(line, fields.summary, foot);
  return { li, fields };
}

function fill({ li, fields }, alert, state, now, admin) {
  li.dataset.state = alert.state;
  li.dataset.severity = alert.severity;
  setText(fields.severity, alert.severity);
  setText(fields.rule, alert.rule_name);
  const host = hostName(state, alert.host_id);
  setText(fields.host, host);
  fields.host.title = `host id ${alert.host_id}`;
  const p = alert.process;
  setText(fields.process, p ? `${p.name} (pid ${p.pid})` : "");
  fields.process.hidden = !p;
  const until = alert.state === "resolved" ? null : silencedUntil(alert, state.silences, now);
  li.classList.toggle("silenced", until != null);
  setText(fields.silenced, until != null ? `silenced until ${formatDateTime(new Date(until))}` : "");
  fields.silenced.hidden = until == null;
  fields.flapping.hidden = !alert.flapping;
  setText(fields.summary, alert.summary);
  setText(fields.when, whenText(alert, now));
  const at = alert.fired_at ?? alert.since;
  const link = alertLink(alert);
  if (fields.open.getAttribute("href") !== link) fields.open.setAttribute("href", link);
  setText(fields.open, alert.fired_at ? "Tree when it fired" : "Tree when it began");
  fields.open.title = `${host} as it was at ${formatDateTime(new Date(at))}`;
  fields.silence.hidden = !(admin && alert.state === "firing" && until == null);
  fields.silence.setAttribute("aria-label", `Silence ${alert.rule_name} on ${host} for an hour`);
}

function whenText(alert, now) {
  const at = (time) => `${formatDateTime(new Date(time))} (${formatAgo(Date.parse(time), now)})`;
  if (alert.state === "pending") return `holds since ${at(alert.since)}`;
  if (alert.state === "firing") return `fired ${at(alert.fired_at)}`;
  const fired = alert.fired_at ? `fired ${formatDateTime(new Date(alert.fired_at))}, ` : "";
  return `${fired}resolved ${at(alert.resolved_at)}`;
}

function hostName(state, hostId) {
  return state.hosts.find((h) => h.host.id === hostId)?.display_name ?? hostId;
}

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}
