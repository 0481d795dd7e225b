// Fleet search: find a process by name, user or command line on every host,
// now or at a past time (GET /api/search/). Hits are listed by host; a click
// opens that host at that time with the process selected.

import { ApiError } from "./api.js";
import { fetchSearch } from "./history-api.js";
import { formatBytes, formatCommandLine, formatCpu, formatDateTime, fromLocalInput } from "./format.js";
import { el } from "./dom.js";

/**
 * @param {HTMLElement} panel  the panel's container (#fleet-search)
 * @param {object} actions     { jump(hostId, key, atMs|null), close(), unauthorized() }
 * @returns {{ open(), close(), isOpen() }}
 */
export function createFleetSearch(panel, actions) {
  const head = el("div", "users-head");
  const heading = el("h2", "pane-heading", "Search every host");
  heading.id = "fleet-search-heading";
  const close = el("button", "quiet", "Close");
  close.type = "button";
  close.id = "fleet-search-close";
  head.append(heading, close);
  panel.setAttribute("aria-labelledby", heading.id);

  const form = el("form", "auth-row fleet-form");
  form.id = "fleet-search-form";
  const text = el("input");
  text.type = "search";
  text.id = "fleet-search-text";
  text.placeholder = "Name, user or command line";
  text.setAttribute("aria-label", "Text to find on every host");
  text.autocomplete = "off";
  text.spellcheck = false;
  text.required = true;
  const field = el("select");
  field.id = "fleet-search-field";
  field.setAttribute("aria-label", "Where to look");
  for (const [value, label] of [["any", "anywhere"], ["name", "name"], ["user", "user"], ["cmd", "command line"]]) {
    const o = el("option", null, label);
    o.value = value;
    field.append(o);
  }
  const at = el("input");
  at.type = "datetime-local";
  at.step = "1";
  at.id = "fleet-search-at";
  at.title = "Empty: now. Otherwise: as every host was at that time (your local time).";
  at.setAttribute("aria-label", "At a past time (empty: now)");
  const go = el("button", null, "Search");
  go.type = "submit";
  form.append(text, field, at, go);

  const status = el("p", "fleet-status");
  status.setAttribute("role", "status");
  const results = el("div", "fleet-results");
  results.id = "fleet-search-results";
  panel.append(head, form, status, results);

  let asked = 0;

  close.addEventListener("click", () => actions.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const query = text.value.trim();
    if (!query) return;
    const when = fromLocalInput(at.value);
    const ticket = ++asked;
    status.textContent = "Searching…";
    try {
      const answer = await fetchSearch(query, field.value, when);
      if (ticket !== asked) return;
      show(answer, when);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (ticket !== asked) return;
      if (error.kind === "unauthorized") actions.unauthorized();
      status.textContent = error.message;
      results.replaceChildren();
    }
  });
  results.addEventListener("click", (event) => {
    const hit = event.target.closest("button[data-host]");
    if (!hit) return;
    const when = hit.dataset.at ? Number(hit.dataset.at) : null;
    actions.jump(hit.dataset.host, hit.dataset.key, when);
  });

  function show(answer, when) {
    const byHost = new Map();
    for (const hit of answer.hits) {
      if (!byHost.has(hit.host_id)) byHost.set(hit.host_id, []);
      byHost.get(hit.host_id).push(hit);
    }
    const where = when == null ? "now" : `at ${formatDateTime(new Date(when))}`;
    status.textContent = answer.hits.length
      ? `${answer.hits.length} process${answer.hits.length === 1 ? "" : "es"} on ${byHost.size} host${byHost.size === 1 ? "" : "s"}, ${where}${answer.truncated ? " (first ones only: say more to narrow it)" : ""}`
      : `No process matches, ${where}.`;
    const groups = [];
    for (const [hostId, hits] of byHost) {
      const group = el("section", "fleet-host");
      group.dataset.hostId = hostId;
      const title = el("h3", "fleet-host-name", hits[0].display_name);
      title.title = `id ${hostId}`;
      const list = el("ul", "fleet-hits");
      for (const hit of hits) {
        const p = hit.process;
        const li = el("li");
        const b = el("button", "fleet-hit");
        b.type = "button";
        b.dataset.host = hostId;
        b.dataset.key = `${p.pid}@${p.start_time}`;
        if (when != null) b.dataset.at = String(when);
        b.append(
          el("span", "fleet-hit-name", p.name),
          el("span", "fleet-hit-pid", String(p.pid)),
          el("span", "fleet-hit-user", p.user ?? ""),
          el("span", "fleet-hit-nums", `${formatCpu(p.cpu_percent)} % · ${formatBytes(p.memory_rss_bytes)}`),
          el("span", "fleet-hit-cmd", formatCommandLine(p.cmd)),
        );
        b.title = `Open ${hits[0].display_name} ${when == null ? "now" : "at that time"} with this process selected`;
        li.append(b);
        list.append(li);
      }
      group.append(title, list);
      groups.push(group);
    }
    results.replaceChildren(...groups);
  }

  return {
    open() {
      panel.hidden = false;
      text.focus();
    },
    close() {
      panel.hidden = true;
    },
    isOpen: () => !panel.hidden,
  };
}
