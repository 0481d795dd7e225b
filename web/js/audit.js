// The actions log, opened from the header's "Actions" button: every action
// asked of a process, newest first (GET /api/actions/), with when, who,
// which host and process, what, why, and how it ended with the agent's
// message. Any signed-in user may read it. It can be narrowed to the host
// shown, and is read again while open (sooner while an action is still
// waiting for its agent). Every text is set as text.

import { ApiError } from "./api.js";
import { FINAL, codeLabel, kindLabel, outcomeLabel } from "./action-kinds.js";
import { LOG_LIMIT, fetchActions } from "./actions-api.js";
import { button, el, input, table as makeTable } from "./dom.js";
import { formatAgo, formatDateTime } from "./format.js";

/** How often the open log is read again: soon while an action waits, else now and then. */
const WAITING_REFRESH_MS = 1000;
const IDLE_REFRESH_MS = 10_000;

const COLUMNS = ["When", "Who", "Host", "Process", "Action", "Reason", "Outcome", "Message"];

/**
 * @param {HTMLElement} panel   the panel (#actions-panel)
 * @param {HTMLElement} opener  the header's button that opens it
 * @param {object} actions      { set(changes): the page's state (actions log fields), unauthorized() }
 * @returns {{ render(state, summary, now), refresh() }}
 */
export function createAuditLog(panel, opener, actions) {
  const head = el("div", "users-head");
  const heading = el("h2", "pane-heading", "Actions log");
  heading.id = "actions-heading";
  const close = button("Close", "actions-close", "quiet");
  head.append(heading, close);
  panel.setAttribute("aria-labelledby", heading.id);

  const bar = el("div", "audit-bar");
  const onlyLabel = el("label", "audit-only");
  const only = input("checkbox", { id: "actions-host-only" });
  const onlyText = el("span");
  onlyLabel.append(only, " ", onlyText);
  const refresh = button("Refresh", "actions-refresh", "quiet");
  const status = el("span", "audit-status");
  status.id = "actions-status";
  status.setAttribute("role", "status");
  bar.append(onlyLabel, refresh, status);

  const scroll = el("div", "audit-scroll");
  const table = makeTable("users-table audit-table", COLUMNS);
  const rows = table.tBodies[0];
  rows.id = "actions-rows";
  scroll.append(table);
  const empty = el("p", "empty");
  empty.id = "actions-empty";
  const error = el("p", "auth-error");
  error.id = "actions-error";
  error.setAttribute("role", "alert");
  panel.append(head, bar, error, scroll, empty);

  let last = null; // { state, summary, now } of the last render
  let timer = 0;
  let loading = false;
  let again = false;
  let loadingFor = null; // the host filter of the read under way
  let shownFor = null; // the entries shown
  let isOpen = false; // whether the last render showed the panel

  opener.addEventListener("click", () => actions.set({ actionsOpen: !last?.state.actionsOpen }));
  close.addEventListener("click", () => {
    actions.set({ actionsOpen: false });
    opener.focus();
  });
  only.addEventListener("change", () => actions.set({ actionsHostOnly: only.checked, actionsLog: null }));
  refresh.addEventListener("click", () => load());

  /** The host the log is narrowed to, or null for every host. */
  const hostFilter = (state) => (state.actionsHostOnly && state.hostId ? state.hostId : null);

  async function load() {
    if (!last?.state.actionsOpen) return;
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    clearTimeout(timer);
    const hostId = hostFilter(last.state);
    loadingFor = hostId;
    try {
      const entries = await fetchActions(hostId);
      // Narrowed or widened meanwhile: this answer is for another query.
      if (last && hostFilter(last.state) === hostId) {
        actions.set({ actionsLog: { hostId, entries }, actionsError: "" });
      }
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      if (e.kind === "unauthorized") actions.unauthorized();
      actions.set({ actionsError: e.message });
    } finally {
      loading = false;
      if (again) {
        again = false;
        load();
      } else {
        schedule();
      }
    }
  }

  function schedule() {
    clearTimeout(timer);
    const state = last?.state;
    if (!state?.actionsOpen) return;
    const waiting = state.actionsLog?.entries.some((e) => !FINAL.has(e.outcome));
    timer = setTimeout(load, waiting ? WAITING_REFRESH_MS : IDLE_REFRESH_MS);
  }

  function render(state, summary, now) {
    const wasOpen = isOpen;
    last = { state, summary, now };
    opener.hidden = state.session == null;
    const open = state.actionsOpen && state.session != null;
    isOpen = open;
    panel.hidden = !open;
    opener.setAttribute("aria-expanded", String(open));
    if (!open) {
      clearTimeout(timer);
      shownFor = null;
      return;
    }
    only.checked = state.actionsHostOnly;
    only.disabled = !state.hostId;
    setText(onlyText, summary ? `Only ${summary.display_name}` : "Only the host shown");
    setText(error, state.actionsError);

    const log = state.actionsLog;
    const wanted = hostFilter(state);
    // Opened, or narrowed to another host: read at once.
    if ((!wasOpen || log == null || log.hostId !== wanted) && !(loading && loadingFor === wanted)) load();
    const current = log && log.hostId === wanted ? log.entries : null;
    setText(status, current == null
      ? state.actionsError ? "" : "Reading…"
      : current.length >= LOG_LIMIT ? `The newest ${LOG_LIMIT}` : "");
    empty.hidden = current == null || current.length > 0;
    setText(empty, wanted
      ? "Nothing has been asked of this host's processes."
      : "Nothing has been asked of any process yet.");
    table.hidden = !current?.length;
    if (current && shownFor !== current) {
      shownFor = current;
      rows.replaceChildren(...current.map((entry) => row(entry, now)));
    }
  }

  return { render, refresh: () => load() };
}

/** One entry's row. */
function row(entry, now) {
  const tr = el("tr");
  tr.dataset.id = entry.id;
  tr.dataset.outcome = entry.outcome;
  tr.dataset.hostId = entry.host_id;
  const asked = new Date(entry.requested_at);
  const when = el("td", "audit-when", formatDateTime(asked));
  when.title = formatAgo(asked.getTime(), now);
  const process = el("td", "audit-process");
  process.append(el("span", "audit-name", entry.process_name), ` (pid ${entry.pid})`);
  if (entry.process_user) process.append(el("span", "audit-sub", `user ${entry.process_user}`));
  process.title = `started ${formatDateTime(new Date(entry.started_at))}`;
  const outcome = el("td", "audit-outcome");
  outcome.append(el("span", "audit-outcome-label", outcomeLabel(entry.outcome)));
  if (entry.code && entry.code !== entry.outcome) outcome.append(el("span", "audit-sub", codeLabel(entry.code)));
  if (entry.finished_at) outcome.title = `reported ${formatDateTime(new Date(entry.finished_at))}`;
  tr.append(
    when,
    el("td", "audit-who", entry.requested_by),
    el("td", "audit-host", entry.hostname),
    process,
    el("td", "audit-kind", kindLabel(entry.kind)),
    el("td", "audit-reason", entry.reason),
    outcome,
    el("td", "audit-message", entry.message ?? ""),
  );
  return tr;
}

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}
