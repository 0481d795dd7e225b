// The confirmation before an action: it names the process (name and pid),
// its user and its host, says what the action does, and asks why. The
// reason is required (1 to 500 characters, kept in the audit log): the
// confirm button, labelled with the action, stays disabled until one is
// typed. A modal <dialog>: Escape cancels, focus starts in the reason and
// goes back to the button that opened it.

import { ENDING, kindEffect, kindLabel } from "./action-kinds.js";
import { button, el } from "./dom.js";

/** Longest reason, in characters (MAX_REASON_CHARS on the server). */
export const MAX_REASON_CHARS = 500;

/** Characters as the server counts them (code points, not UTF-16 units). */
const length = (text) => [...text].length;

/** @returns {{ ask(target): Promise<string|null> }} */
export function createActionDialog() {
  const dialog = el("dialog", "action-dialog");
  dialog.id = "action-dialog";
  const form = el("form");
  form.method = "dialog";
  const title = el("h2", "action-dialog-title");
  title.id = "action-dialog-title";
  const facts = el("dl", "action-target");
  const fact = (label, id) => {
    const dd = el("dd");
    dd.id = id;
    facts.append(el("dt", null, label), dd);
    return dd;
  };
  const process = fact("Process", "action-dialog-process");
  const user = fact("User", "action-dialog-user");
  const host = fact("Host", "action-dialog-host");
  const effect = el("p", "action-effect");
  effect.id = "action-dialog-effect";
  const reasonLabel = el("label", "action-reason-label", "Reason");
  reasonLabel.htmlFor = "action-reason";
  const reason = el("textarea", "action-reason");
  reason.id = "action-reason";
  reason.rows = 3;
  reason.required = true;
  reason.spellcheck = true;
  reason.placeholder = "Why, for the actions log (shown with your name)";
  const count = el("small", "action-reason-count");
  count.id = "action-reason-count";
  reason.setAttribute("aria-describedby", count.id);
  const cancel = button("Cancel", "action-cancel");
  const confirm = el("button", "action-confirm");
  confirm.type = "submit";
  confirm.id = "action-confirm";
  const buttons = el("div", "action-dialog-buttons");
  buttons.append(cancel, confirm);
  form.append(title, facts, effect, reasonLabel, reason, count, buttons);
  dialog.append(form);
  dialog.setAttribute("aria-labelledby", title.id);
  dialog.setAttribute("aria-describedby", effect.id);
  document.body.append(dialog);

  let settle = null;
  const finish = (value) => {
    const done = settle;
    settle = null;
    if (dialog.open) dialog.close();
    done?.(value);
  };

  const check = () => {
    const text = reason.value.trim();
    const n = length(text);
    const ok = n >= 1 && n <= MAX_REASON_CHARS;
    confirm.disabled = !ok;
    count.textContent = n > MAX_REASON_CHARS
      ? `${n} / ${MAX_REASON_CHARS} characters: too long`
      : `${n} / ${MAX_REASON_CHARS} characters`;
    count.classList.toggle("too-long", n > MAX_REASON_CHARS);
  };
  reason.addEventListener("input", check);
  cancel.addEventListener("click", () => finish(null));
  // Escape, or the browser closing it for another reason.
  dialog.addEventListener("cancel", () => finish(null));
  dialog.addEventListener("close", () => finish(null));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (confirm.disabled) return;
    finish(reason.value.trim());
  });
  // Ctrl+Enter confirms from the reason, as in many comment boxes.
  reason.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  return {
    /**
     * Asks to confirm `kind` on a process; the reason given, or null when
     * cancelled.
     * @param {{ kind: string, process: object, hostname: string, windows: boolean }} target
     */
    ask({ kind, process: p, hostname, windows }) {
      finish(null);
      const label = kindLabel(kind);
      title.textContent = `${label} “${p.name}” (pid ${p.pid})?`;
      process.textContent = `${p.name} (pid ${p.pid})`;
      user.textContent = p.user ?? "not readable";
      host.textContent = hostname;
      effect.textContent = kindEffect(kind, windows);
      confirm.textContent = label;
      confirm.dataset.kind = kind;
      confirm.classList.toggle("danger", ENDING.has(kind));
      reason.value = "";
      check();
      dialog.showModal();
      reason.focus();
      return new Promise((resolve) => {
        settle = resolve;
      });
    },
  };
}
