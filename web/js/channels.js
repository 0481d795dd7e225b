// Channels: where alerts are sent (webhook, Slack, Discord, ntfy, e-mail),
// each with how its deliveries have gone lately and a Test button that sends
// a test notification now and says what happened; a form to add or change
// one (admins; a secret, once saved, is never shown again: left empty it is
// kept); and the notifications not delivered yet or given up, each with its
// error, so that a receiver that stopped answering shows here before anyone
// misses an alert. Viewers see channels with their URLs cut to the host.

import { ApiError, showFailure } from "./api.js";
import { createChannel, deleteChannel, fetchChannels, fetchDeliveries, testChannel, updateChannel } from "./alerts-api.js";
import { button, el, field, input, select, table as makeTable } from "./dom.js";
import { formatDateTime } from "./format.js";

const KINDS = [
  ["webhook", "Webhook (JSON, signed)"],
  ["slack", "Slack incoming webhook"],
  ["discord", "Discord webhook"],
  ["ntfy", "ntfy topic"],
  ["email", "E-mail (SMTP)"],
];
const URL_HINTS = {
  webhook: "where the alert is POSTed as JSON",
  slack: "https://hooks.slack.com/services/…",
  discord: "https://discord.com/api/webhooks/…",
  ntfy: "https://ntfy.sh/your-topic",
};
const SECRET_LABELS = {
  webhook: "Signing secret",
  ntfy: "Access token",
  email: "Password",
};
const SECURITIES = [
  ["starttls", "STARTTLS (usually port 587)"],
  ["tls", "TLS (usually port 465)"],
  ["none", "None (a relay on this network only)"],
];
/** Deliveries listed as not delivered: still to go, being retried, given up. */
const UNDELIVERED = ["pending", "failing", "given_up"];

/**
 * @param {HTMLElement} root  where the list, the form and the deliveries go
 * @param {object} actions    { set(changes), unauthorized() }
 * @returns {{ need(state), reload(), render(state, now) }}
 */
export function createChannels(root, actions) {
  const bar = el("div", "rules-bar");
  const add = button("New channel", "channel-new");
  const status = el("p", "rules-status");
  status.id = "channels-status";
  status.setAttribute("role", "status");
  bar.append(add, status);
  const table = makeTable("users-table channels-table", ["Name", "Kind", "Sends to", "Lately", ""]);
  const rows = table.tBodies[0];
  rows.id = "channels-rows";
  const empty = el("p", "empty", "No channels yet: alerts are shown here and on the page, and nobody is told.");
  empty.id = "channels-empty";
  const listError = el("p", "auth-error");
  listError.id = "channels-error";
  listError.setAttribute("role", "alert");

  const form = createChannelForm();
  const deliveries = el("section", "alerts-section deliveries");
  deliveries.setAttribute("aria-labelledby", "deliveries-title");
  const deliveriesTitle = el("h3", "alerts-title", "Not delivered");
  deliveriesTitle.id = "deliveries-title";
  const refresh = button("Refresh", "deliveries-refresh", "quiet");
  const deliveriesTable = makeTable("users-table deliveries-table",
    ["Queued", "Channel", "Notification", "Status", "Attempts", "Next try", "Error"]);
  const deliveryRows = deliveriesTable.tBodies[0];
  deliveryRows.id = "deliveries-rows";
  const deliveriesEmpty = el("p", "empty", "Every notification was delivered.");
  deliveriesEmpty.id = "deliveries-empty";
  deliveries.append(deliveriesTitle, refresh, deliveriesTable, deliveriesEmpty);
  root.append(bar, listError, table, empty, form.element, deliveries);

  let admin = false;
  let shown = null;
  let asked = false;

  /** Reads the channels into the page's state, and the deliveries not delivered; whether it could. */
  async function load() {
    try {
      const [channels, undelivered] = await Promise.all([fetchChannels(), fetchDeliveries(UNDELIVERED)]);
      actions.set({ alertChannels: channels });
      showDeliveries(undelivered);
      listError.textContent = "";
      return true;
    } catch (e) {
      showFailure(e, listError, actions);
      return false;
    }
  }

  function showDeliveries(list) {
    deliveriesEmpty.hidden = list.length > 0;
    deliveriesTable.hidden = list.length === 0;
    deliveryRows.replaceChildren(...list.map(deliveryRow));
  }

  add.addEventListener("click", () => form.open(null));
  refresh.addEventListener("click", () => load());
  form.onSaved(async (saved, made) => {
    status.textContent = `${made ? "Added" : "Saved"} “${saved.name}”.`;
    await load();
  });
  form.onUnauthorized(() => actions.unauthorized());
  rows.addEventListener("click", async (event) => {
    const action = event.target.closest("button[data-action]");
    if (!action) return;
    const tr = action.closest("tr");
    const channel = shown?.find((c) => c.id === tr.dataset.channelId);
    if (!channel) return;
    if (action.dataset.action === "edit") {
      form.open(channel);
      return;
    }
    if (action.dataset.action === "test") {
      const result = tr.querySelector(".channel-test-result");
      action.disabled = true;
      result.textContent = "Sending…";
      result.dataset.ok = "";
      try {
        const answer = await testChannel(channel.id);
        result.dataset.ok = String(answer.ok);
        result.textContent = answer.ok
          ? `Test sent (${answer.elapsed_ms} ms).`
          : `Test failed: ${answer.error}`;
      } catch (e) {
        result.textContent = "";
        showFailure(e, listError, actions);
      } finally {
        action.disabled = false;
      }
      return;
    }
    if (!confirm(`Delete the channel “${channel.name}”? Rules that name it tell nobody through it, and its undelivered notifications are given up.`)) return;
    try {
      await deleteChannel(channel.id);
      form.closeIf(channel.id);
      status.textContent = `Deleted “${channel.name}”.`;
      await load();
    } catch (e) {
      showFailure(e, listError, actions);
    }
  });

  return {
    /** Reads the channels when nothing has (the rule editor lists them too); a failure is tried again in 10 s. */
    need(state) {
      if (state.alertChannels != null || asked) return;
      asked = true;
      load().then((ok) => {
        if (!ok) setTimeout(() => (asked = false), 10_000);
        else asked = false;
      });
    },
    /** Reads them again (the tab is opened: deliveries move, another admin may have changed a channel). */
    reload: () => load(),
    render(state) {
      const isAdmin = state.session?.role === "admin";
      add.hidden = !isAdmin;
      form.setEditable(isAdmin);
      if (state.alertChannels == null || (state.alertChannels === shown && isAdmin === admin)) return;
      admin = isAdmin;
      shown = state.alertChannels;
      empty.hidden = shown.length > 0;
      table.hidden = shown.length === 0;
      rows.replaceChildren(...shown.map((channel) => channelRow(channel, admin)));
    },
  };
}

/** Where a channel sends, in a few words. */
function destination(kind) {
  if (kind.type === "email") return `${kind.to.join(", ")} via ${kind.smtp_host}:${kind.smtp_port} (${kind.security})`;
  return kind.url;
}

/** How a channel's deliveries went lately. */
function lately(health) {
  if (health.failing > 0) {
    const when = health.last_error_at ? ` ${formatDateTime(new Date(health.last_error_at))}` : "";
    return `failing (${health.failing} in a row${when}): ${health.last_error ?? "no reason given"}`;
  }
  if (health.last_success_at) return `ok, last sent ${formatDateTime(new Date(health.last_success_at))}`;
  return "nothing sent yet";
}

function channelRow(channel, admin) {
  const tr = el("tr");
  tr.dataset.channelId = channel.id;
  tr.classList.toggle("failing", channel.health.failing > 0);
  for (const text of [channel.name, channel.kind.type, destination(channel.kind), lately(channel.health)]) {
    tr.append(el("td", null, text));
  }
  const td = el("td", "rule-actions");
  if (admin) {
    for (const [action, label] of [["test", "Test"], ["edit", "Edit"], ["delete", "Delete"]]) {
      const b = button(label);
      b.dataset.action = action;
      b.setAttribute("aria-label", `${label} ${channel.name}`);
      td.append(b);
    }
  }
  const result = el("span", "channel-test-result");
  result.setAttribute("role", "status");
  td.append(result);
  tr.append(td);
  return tr;
}

function deliveryRow(delivery) {
  const tr = el("tr");
  tr.dataset.deliveryId = delivery.id;
  tr.dataset.status = delivery.status;
  const status = { pending: "waiting", failing: "being retried", given_up: "given up" }[delivery.status] ?? delivery.status;
  const cells = [
    formatDateTime(new Date(delivery.created_at)),
    delivery.channel_name ?? `${delivery.channel_id} (deleted)`,
    `${delivery.state}: ${delivery.summary}`,
    status,
    String(delivery.attempts),
    delivery.next_attempt_at ? formatDateTime(new Date(delivery.next_attempt_at)) : "",
    delivery.last_error ?? "",
  ];
  for (const text of cells) tr.append(el("td", null, text));
  return tr;
}

/**
 * The form that adds or changes a channel: its fields follow the kind.
 * @returns {{ element, open(channel|null), closeIf(id), setEditable(boolean), onSaved(f), onUnauthorized(f) }}
 */
function createChannelForm() {
  const form = el("form", "rule-form channel-form");
  form.id = "channel-form";
  form.noValidate = true; // the server says what is wrong, in one place
  form.hidden = true;
  const title = el("h3", "rule-form-title");
  title.id = "channel-form-title";
  form.setAttribute("aria-labelledby", title.id);
  const c = {
    name: input("text", { maxLength: 200, placeholder: "on-call" }),
    kind: select(KINDS),
    url: input("url", { maxLength: 2048, spellcheck: false }),
    smtpHost: input("text", { maxLength: 253, spellcheck: false, placeholder: "smtp.example.com" }),
    smtpPort: input("number", { min: 1, max: 65535, step: 1, value: "587" }),
    security: select(SECURITIES),
    username: input("text", { spellcheck: false, placeholder: "none" }),
    from: input("text", { spellcheck: false, placeholder: "procmon@example.com" }),
    to: input("text", { spellcheck: false, placeholder: "oncall@example.com, ops@example.com" }),
    secret: input("password", { maxLength: 1024, autocomplete: "new-password" }),
    clearSecret: input("checkbox"),
  };
  const general = el("div", "rule-grid");
  const urlField = field("channel-url", "URL", c.url, URL_HINTS.webhook);
  general.append(field("channel-name", "Name", c.name), field("channel-kind", "Kind", c.kind), urlField);
  const email = el("div", "rule-grid channel-email");
  email.append(
    field("channel-smtp-host", "SMTP server", c.smtpHost),
    field("channel-smtp-port", "Port", c.smtpPort),
    field("channel-security", "Encryption", c.security),
    field("channel-username", "User name", c.username, "empty: no sign-in"),
    field("channel-from", "From", c.from),
    field("channel-to", "To", c.to, "addresses, comma-separated"),
  );
  const secret = el("div", "rule-grid");
  const secretField = field("channel-secret", "Secret", c.secret, "optional");
  const clear = el("label", "rule-enabled");
  c.clearSecret.id = "channel-clear-secret";
  clear.append(c.clearSecret, document.createTextNode(" Remove the saved secret"));
  secret.append(secretField, clear);
  const fields = el("fieldset", "rule-fields");
  fields.append(el("legend", "rule-legend", "Channel"), general, email, secret);
  const buttons = el("div", "rule-buttons");
  const save = el("button", null, "Save");
  save.type = "submit";
  save.id = "channel-save";
  const cancel = button("Close", "channel-cancel", "quiet");
  buttons.append(save, cancel);
  const error = el("p", "auth-error");
  error.id = "channel-error";
  error.setAttribute("role", "alert");
  form.append(title, fields, buttons, error);

  /** The channel being changed, null for a new one. */
  let editing = null;
  let saved = () => {};
  let unauthorized = () => {};

  function showKind() {
    const kind = c.kind.value;
    urlField.hidden = kind === "email";
    email.hidden = kind !== "email";
    const hint = urlField.querySelector(".rule-hint");
    if (hint) hint.textContent = URL_HINTS[kind] ?? "";
    secret.hidden = !(kind in SECRET_LABELS);
    secretField.querySelector("label").textContent = SECRET_LABELS[kind] ?? "Secret";
    const keeps = editing?.has_secret && editing.kind.type === kind;
    secretField.querySelector(".rule-hint").textContent = keeps ? "saved, never shown: empty keeps it" : "optional";
    clear.hidden = !keeps;
  }
  c.kind.addEventListener("change", showKind);

  function open(channel) {
    editing = channel;
    const kind = channel?.kind ?? { type: "webhook" };
    title.textContent = channel ? `Edit: ${channel.name}` : "New channel";
    c.name.value = channel?.name ?? "";
    c.kind.value = kind.type;
    c.url.value = kind.url ?? "";
    c.smtpHost.value = kind.smtp_host ?? "";
    c.smtpPort.value = kind.smtp_port ?? 587;
    c.security.value = kind.security ?? "starttls";
    c.username.value = kind.username ?? "";
    c.from.value = kind.from ?? "";
    c.to.value = (kind.to ?? []).join(", ");
    c.secret.value = "";
    c.clearSecret.checked = false;
    error.textContent = "";
    showKind();
    form.hidden = false;
    c.name.focus();
  }

  /** The ChannelSpec the fields say. */
  function read() {
    const type = c.kind.value;
    let kind;
    if (type === "email") {
      kind = {
        type,
        smtp_host: c.smtpHost.value.trim(),
        smtp_port: Number.isFinite(c.smtpPort.valueAsNumber) ? c.smtpPort.valueAsNumber : 0,
        security: c.security.value,
        from: c.from.value.trim(),
        to: c.to.value.split(/[\s,;]+/).filter(Boolean),
      };
      if (c.username.value.trim()) kind.username = c.username.value.trim();
    } else {
      kind = { type, url: c.url.value.trim() };
    }
    const spec = { name: c.name.value.trim(), kind };
    if (c.secret.value) spec.secret = c.secret.value;
    else if (c.clearSecret.checked && !clear.hidden) spec.secret = "";
    return spec;
  }

  cancel.addEventListener("click", () => {
    form.hidden = true;
    editing = null;
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    save.disabled = true;
    try {
      const spec = read();
      const made = editing == null;
      const answer = made ? await createChannel(spec) : await updateChannel(editing.id, spec);
      form.hidden = true;
      editing = null;
      c.secret.value = "";
      await saved(answer, made);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      if (e.kind === "unauthorized") unauthorized();
      error.textContent = e.message;
    } finally {
      save.disabled = false;
    }
  });

  return {
    element: form,
    open,
    closeIf(id) {
      if (editing?.id === id) {
        form.hidden = true;
        editing = null;
      }
    },
    setEditable(editable) {
      if (!editable) form.hidden = true;
    },
    onSaved: (f) => (saved = f),
    onUnauthorized: (f) => (unauthorized = f),
  };
}
