// The alert rules: a list of every rule, and an editor to make one, change
// one (naming the version it changes: when someone else changed it since,
// the server refuses and the editor offers their version) or delete one,
// with a preview of what the rule would match before it is saved. Viewers
// see the rules read-only. The server's reasons for refusing a rule are
// shown beside the form as it gave them.

import { ApiError, showFailure } from "./api.js";
import { createRule, deleteRule, fetchRule, fetchRules, previewRule, updateRule } from "./alerts-api.js";
import { createPreview } from "./alert-preview.js";
import { createRuleFields } from "./alert-rule-form.js";
import { button, el } from "./dom.js";
import { formatDateTime } from "./format.js";

/**
 * @param {HTMLElement} root  where the list and editor go
 * @param {object} actions    { set(changes), changed(), unauthorized() }
 * @returns {{ render(state) }}
 */
export function createAlertRules(root, actions) {
  const bar = el("div", "rules-bar");
  const add = button("New rule", "rule-new");
  const status = el("p", "rules-status");
  status.id = "rules-status";
  status.setAttribute("role", "status");
  bar.append(add, status);
  const table = el("table", "users-table rules-table");
  table.innerHTML = "<thead><tr><th>Name</th><th>Severity</th><th>Fires when</th><th>Hosts</th><th>State</th><th>Version</th><th></th></tr></thead><tbody id=\"rules-rows\"></tbody>";
  const rows = table.tBodies[0];
  const empty = el("p", "empty", "No rules yet.");
  empty.id = "rules-empty";
  const listError = el("p", "auth-error");
  listError.id = "rules-error";
  listError.setAttribute("role", "alert");

  const form = el("form", "rule-form");
  form.id = "rule-form";
  form.noValidate = true; // the server says what is wrong, in one place
  form.hidden = true;
  const title = el("h3", "rule-form-title");
  title.id = "rule-form-title";
  form.setAttribute("aria-labelledby", title.id);
  const fields = createRuleFields();
  const buttons = el("div", "rule-buttons");
  const save = el("button", null, "Save");
  save.type = "submit";
  save.id = "rule-save";
  const preview = button("Preview", "rule-preview-button");
  const cancel = button("Close", "rule-cancel", "quiet");
  const readOnly = el("span", "rule-readonly", "Only an admin can change rules.");
  buttons.append(save, preview, cancel, readOnly);
  const error = el("div", "rule-error");
  error.id = "rule-error";
  error.setAttribute("role", "alert");
  const errorText = el("p", "auth-error");
  errorText.id = "rule-error-text";
  const reload = button("Load their version (drops your changes)", "rule-reload");
  reload.hidden = true;
  error.append(errorText, reload);
  const previewBox = el("section", "rule-preview");
  previewBox.id = "rule-preview";
  previewBox.setAttribute("aria-label", "Preview of the rule");
  const previewView = createPreview(previewBox);
  form.append(title, fields.element, buttons, error, previewBox);
  root.append(bar, listError, table, empty, form);

  /** The rule being edited ({ id, version, name }), null for a new one. */
  let editing = null;
  let admin = false;
  let loadedFor = null;
  let channelsShown;
  let previewTicket = 0;

  /** Reads the rules into the page's state; whether it could. */
  async function load() {
    try {
      actions.set({ alertRules: await fetchRules() });
      listError.textContent = "";
      return true;
    } catch (e) {
      showFailure(e, listError, actions);
      return false;
    }
  }

  function showError(message, conflict = false) {
    errorText.textContent = message;
    reload.hidden = !conflict;
    // The form is taller than the panel: the reason must not stay below its fold.
    if (message) error.scrollIntoView({ block: "nearest" });
  }

  /**
   * Saving was refused because the rule moved on since `edited` was opened:
   * says so in plain words, naming who saved which version when (read
   * now; the server's own words if that read fails), and offers theirs.
   */
  async function showConflict(edited, e) {
    let newest = null;
    // The list shows the rule's new version too.
    load();
    try {
      newest = await fetchRule(edited.id);
    } catch (readError) {
      if (!(readError instanceof ApiError)) throw readError;
    }
    // The editor moved on (closed, or another rule opened) while asking.
    if (editing !== edited) return;
    const theirs = newest
      ? ` (${newest.updated_by} saved version ${newest.version} at ${formatDateTime(new Date(newest.updated_at))})`
      : "";
    const why = newest ? "" : ` ${e.message}`;
    showError(
      `Not saved: someone else changed this rule since you opened version ${edited.version}${theirs}. ` +
        `Saving yours would undo their change. Load their version, then make your change again.${why}`,
      true,
    );
  }

  function open(rule) {
    editing = rule ? { id: rule.id, version: rule.version, name: rule.name } : null;
    fields.fill(rule);
    fields.setEditable(admin);
    showError("");
    previewView.clear();
    form.hidden = false;
    setTitle(rule);
    fields.focus();
  }

  function setTitle(rule) {
    title.textContent = !rule
      ? "New rule"
      : `${admin ? "Edit" : "Rule"}: ${rule.name} (version ${rule.version}, by ${rule.updated_by} ${formatDateTime(new Date(rule.updated_at))})`;
  }

  function close() {
    form.hidden = true;
    editing = null;
    previewView.clear();
  }

  function readSpec() {
    try {
      return fields.read();
    } catch (e) {
      showError(e.message);
      return null;
    }
  }

  add.addEventListener("click", () => open(null));
  cancel.addEventListener("click", () => close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const spec = readSpec();
    if (!spec) return;
    save.disabled = true;
    const edited = editing;
    try {
      const saved = edited ? await updateRule(edited.id, edited.version, spec) : await createRule(spec);
      close();
      status.textContent = `Saved “${saved.name}” (version ${saved.version}).`;
      await load();
      actions.changed();
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      if (e.kind === "unauthorized") actions.unauthorized();
      if (e.kind === "rule_changed") await showConflict(edited, e);
      else showError(e.message);
    } finally {
      save.disabled = false;
    }
  });
  reload.addEventListener("click", async () => {
    if (!editing) return;
    try {
      const newest = await fetchRule(editing.id);
      open(newest);
      status.textContent = `Loaded version ${newest.version} of “${newest.name}”.`;
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      showError(e.message, e.kind === "rule_changed");
    }
  });
  preview.addEventListener("click", async () => {
    const spec = readSpec();
    if (!spec) return;
    const ticket = ++previewTicket;
    showError("");
    previewView.asking();
    try {
      const answer = await previewRule(spec);
      if (ticket === previewTicket) previewView.show(answer, spec);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      if (ticket !== previewTicket) return;
      if (e.kind === "unauthorized") actions.unauthorized();
      previewView.clear();
      showError(e.message);
    }
  });
  rows.addEventListener("click", async (event) => {
    const action = event.target.closest("button[data-action]");
    if (!action) return;
    const id = action.closest("tr").dataset.ruleId;
    const rule = loadedFor?.find((r) => r.id === id);
    if (!rule) return;
    if (action.dataset.action === "edit") {
      open(rule);
      return;
    }
    if (!confirm(`Delete the rule “${rule.name}”? Its open alerts go with it; resolved ones stay as history.`)) return;
    try {
      await deleteRule(id);
      if (editing?.id === id) close();
      status.textContent = `Deleted “${rule.name}”.`;
      await load();
      actions.changed();
    } catch (e) {
      showFailure(e, listError, actions);
    }
  });

  let asked = false;
  return {
    /** Reads the rules when nothing has (the silences name them too); a failure is tried again in 10 s. */
    need(state) {
      if (state.alertRules != null || asked) return;
      asked = true;
      load().then((ok) => {
        if (!ok) setTimeout(() => (asked = false), 10_000);
        else asked = false;
      });
    },
    /** Reads the rules again (the list is opened: another admin may have changed them). */
    reload: () => load(),
    render(state) {
      // Changes need an admin's session (a server without sign-in lets anyone read, not change).
      admin = state.session?.role === "admin";
      add.hidden = !admin;
      save.hidden = !admin;
      preview.hidden = !admin;
      readOnly.hidden = admin;
      fields.setEditable(admin);
      if (state.alertChannels !== channelsShown) {
        channelsShown = state.alertChannels;
        fields.setChannels(channelsShown ?? []);
      }
      if (state.alertRules == null || state.alertRules === loadedFor) return;
      loadedFor = state.alertRules;
      empty.hidden = loadedFor.length > 0;
      table.hidden = loadedFor.length === 0;
      rows.replaceChildren(...loadedFor.map((rule) => row(rule, admin)));
    },
  };
}

function row(rule, admin) {
  const tr = el("tr");
  tr.dataset.ruleId = rule.id;
  tr.classList.toggle("disabled", !rule.enabled);
  const cells = [
    rule.name,
    rule.severity,
    describe(rule.condition),
    rule.hosts.length ? rule.hosts.join(", ") : "every host",
    rule.enabled ? "enabled" : "disabled",
    `${rule.version} (${rule.updated_by})`,
  ];
  for (const text of cells) tr.append(el("td", null, text));
  const td = el("td", "rule-actions");
  const edit = button(admin ? "Edit" : "View");
  edit.dataset.action = "edit";
  edit.setAttribute("aria-label", `${admin ? "Edit" : "View"} ${rule.name}`);
  td.append(edit);
  if (admin) {
    const remove = button("Delete");
    remove.dataset.action = "delete";
    remove.setAttribute("aria-label", `Delete ${rule.name}`);
    td.append(remove);
  }
  tr.append(td);
  return tr;
}

/** A condition in a few words: "process_absent: name equals nginx". */
function describe(condition) {
  const processes = condition.process
    ? Object.entries(condition.process).map(([part, m]) => `${part} ${Object.keys(m)[0]} ${Object.values(m)[0]}`).join(", ")
    : "";
  const bounds = [
    condition.min != null ? `min ${condition.min}` : "",
    condition.max != null ? `max ${condition.max}` : "",
    condition.metric ? `${condition.metric} above ${condition.above}` : "",
    condition.clear_below != null ? `clears at ${condition.clear_below}` : "",
  ].filter(Boolean).join(", ");
  return [condition.kind, [processes, bounds].filter(Boolean).join("; ")].filter(Boolean).join(": ");
}
