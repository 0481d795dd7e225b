// The agent keys panel, for admins: every key (never the key itself, which
// the server does not keep) with a button to revoke it, a form to make one,
// and a button for a new enrollment secret. A new key or secret is shown
// once, with a copy button. Everything from the server is set as text.

import { formatDateTime } from "./format.js";

const $ = (id) => document.getElementById(id);

/**
 * Wires the panel to `actions`
 * ({ create(hostId, label), revoke(id), rotate(), dismiss(), close() }).
 * @returns {{ render(state): void }}
 */
export function createKeysPanel(actions) {
  $("keys-close").addEventListener("click", () => actions.close());
  $("keys-shown-done").addEventListener("click", () => actions.dismiss());
  $("keys-copy").addEventListener("click", () => copyShown());
  $("enroll-rotate").addEventListener("click", () => actions.rotate());
  $("key-add-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const host = $("key-add-host").value.trim();
    const label = $("key-add-label").value.trim();
    actions.create(host || null, label || null).then((made) => {
      if (!made) return;
      $("key-add-host").value = "";
      $("key-add-label").value = "";
    });
  });
  $("keys-rows").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action='revoke']");
    if (button) actions.revoke(button.closest("tr").dataset.id);
  });

  let shownKeys = null;
  let shownSecret = null;
  return {
    render(state) {
      const open = state.keysOpen && state.session?.role === "admin";
      $("keys-panel").hidden = !open;
      $("keys-error").textContent = open ? state.keysError : "";
      const secret = open ? state.shownSecret : null;
      if (secret !== shownSecret) {
        shownSecret = secret;
        $("keys-shown").hidden = secret == null;
        $("keys-shown-title").textContent = secret?.title ?? "";
        $("keys-shown-value").textContent = secret?.value ?? "";
        $("keys-copy-status").textContent = "";
      }
      if (!open || shownKeys === state.keys) return;
      shownKeys = state.keys;
      $("keys-empty").hidden = state.keys.length > 0;
      $("keys-rows").replaceChildren(...state.keys.map(row));
    },
  };
}

function row(key) {
  const tr = document.createElement("tr");
  tr.dataset.id = key.id;
  tr.classList.toggle("revoked", key.revoked_at != null);
  const cells = [
    [key.id, ""],
    [key.host_id ?? "not bound yet", key.host_id ? "" : "Bound to the host of its first snapshot"],
    [key.label, ""],
    [formatDateTime(new Date(key.created_at)), ""],
    key.revoked_at ? [`revoked ${formatDateTime(new Date(key.revoked_at))}`, ""] : ["in force", ""],
  ];
  for (const [text, title] of cells) {
    const td = document.createElement("td");
    td.textContent = text;
    if (title) td.title = title;
    tr.append(td);
  }
  const td = document.createElement("td");
  if (!key.revoked_at) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.action = "revoke";
    button.textContent = "Revoke";
    td.append(button);
  }
  tr.append(td);
  return tr;
}

/** Copies the key or secret shown; where the clipboard is not allowed, selects it to copy by hand. */
async function copyShown() {
  const value = $("keys-shown-value").textContent;
  const status = $("keys-copy-status");
  try {
    await navigator.clipboard.writeText(value);
    status.textContent = "Copied.";
  } catch {
    // The clipboard needs HTTPS (or localhost) and the browser's leave.
    getSelection().selectAllChildren($("keys-shown-value"));
    status.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
  }
}
