// Silences: the ones in force or to come (from the page's state, which the
// alert feed keeps), a button to end one, and a form to make one, by rule,
// by host, or both, until a time, with a reason (admins). Alerts a silence
// covers are still raised and shown, marked; nobody is told of them.

import { serverNow, showFailure } from "./api.js";
import { createSilence, endSilence } from "./alerts-api.js";
import { el, field, table as makeTable } from "./dom.js";
import { formatDateTime, fromLocalInput, toLocalInput } from "./format.js";

const HOUR_MS = 3600e3;

/**
 * @param {HTMLElement} root  where the list and form go
 * @param {object} actions    { changed(), unauthorized() }
 * @returns {{ render(state, now) }}
 */
export function createSilences(root, actions) {
  const table = makeTable("users-table silences-table", ["Rule", "Host", "From", "Until", "Reason", "By", ""]);
  const rows = table.tBodies[0];
  rows.id = "silences-rows";
  const empty = el("p", "empty", "No silence is in force or to come.");
  empty.id = "silences-empty";

  const form = el("form", "silence-form");
  form.id = "silence-form";
  form.noValidate = true;
  const rule = el("select");
  const host = el("input");
  host.type = "text";
  host.autocomplete = "off";
  host.placeholder = "every host";
  const until = el("input");
  until.type = "datetime-local";
  until.step = "1";
  const reason = el("input");
  reason.type = "text";
  reason.maxLength = 500;
  reason.placeholder = "why: maintenance, being looked at…";
  const submit = el("button", null, "Silence");
  submit.type = "submit";
  const grid = el("div", "rule-grid");
  grid.append(
    field("silence-rule", "Rule", rule),
    field("silence-host", "Host (id or hostname)", host),
    field("silence-until", "Until (your local time)", until),
    field("silence-reason", "Reason", reason),
  );
  form.append(el("h3", "rule-form-title", "New silence"), grid, submit);
  const error = el("p", "auth-error");
  error.id = "silence-error";
  error.setAttribute("role", "alert");
  root.append(table, empty, form, error);

  let shown = null;
  let rulesShown = null;

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const ends = fromLocalInput(until.value);
    const spec = { reason: reason.value.trim() };
    if (ends == null) {
      error.textContent = "Until: give the time the silence ends.";
      return;
    }
    spec.until = new Date(ends).toISOString();
    if (rule.value) spec.rule_id = rule.value;
    if (host.value.trim()) spec.host = host.value.trim();
    submit.disabled = true;
    try {
      await createSilence(spec);
      error.textContent = "";
      reason.value = "";
      host.value = "";
      until.value = toLocalInput(serverNow() + HOUR_MS);
      actions.changed();
    } catch (e) {
      showFailure(e, error, actions);
    } finally {
      submit.disabled = false;
    }
  });
  rows.addEventListener("click", async (event) => {
    const end = event.target.closest("button[data-end]");
    if (!end) return;
    try {
      await endSilence(end.dataset.end);
      error.textContent = "";
      actions.changed();
    } catch (e) {
      showFailure(e, error, actions);
    }
  });

  return {
    render(state, now) {
      const admin = state.session?.role === "admin";
      form.hidden = !admin;
      if (!until.value) until.value = toLocalInput(now + HOUR_MS);
      const rules = state.alertRules ?? [];
      if (rules !== rulesShown) {
        rulesShown = rules;
        const chosen = rule.value;
        const every = el("option", null, "Every rule");
        every.value = "";
        rule.replaceChildren(every, ...rules.map((r) => {
          const o = el("option", null, r.name);
          o.value = r.id;
          return o;
        }));
        rule.value = rules.some((r) => r.id === chosen) ? chosen : "";
      }
      const silences = state.silences ?? [];
      const cells = silences.map((s) => [s.id, ...cellsOf(s, state, rules, now)]);
      // Drawn again only when what it says changed: a focused End button stays.
      const key = JSON.stringify([cells, admin]);
      if (key === shown) return;
      shown = key;
      empty.hidden = silences.length > 0;
      table.hidden = silences.length === 0;
      rows.replaceChildren(...cells.map(([id, ...texts]) => row(id, texts, admin)));
    },
  };
}

/** What a silence's row says: rule, host, from, until, reason, by. */
function cellsOf(silence, state, rules, now) {
  const rule = silence.rule_id ? rules.find((r) => r.id === silence.rule_id)?.name ?? silence.rule_id : "every rule";
  const host = silence.host_id
    ? state.hosts.find((h) => h.host.id === silence.host_id)?.display_name ?? silence.host_id
    : "every host";
  const starts = Date.parse(silence.starts_at);
  return [
    rule,
    host,
    starts > now ? formatDateTime(new Date(starts)) : "in force",
    formatDateTime(new Date(silence.until)),
    silence.reason,
    silence.created_by,
  ];
}

function row(id, texts, admin) {
  const tr = el("tr");
  tr.dataset.silenceId = id;
  for (const text of texts) tr.append(el("td", null, text));
  const td = el("td");
  if (admin) {
    const end = el("button", null, "End");
    end.type = "button";
    end.dataset.end = id;
    end.setAttribute("aria-label", `End the silence of ${texts[0]} on ${texts[1]}`);
    td.append(end);
  }
  tr.append(td);
  return tr;
}
