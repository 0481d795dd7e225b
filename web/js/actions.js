// Acting on the selected process, in its details: End, Kill, Suspend,
// Resume and Lower priority, for operators and admins, on a live tree of
// an online host only (the past cannot be acted on, and an offline host's
// agent would never fetch the action). Each asks first (action-dialog.js),
// then the server signs the action and the host's agent carries it out;
// the details follow it (GET /api/actions/{id} every 500 ms) from "Waiting
// for the agent…" to done, refused or failed with the agent's message,
// until its expiry. A refused request (the process is no longer the same,
// not allowed, …) shows the server's message.

import { ApiError, serverNow } from "./api.js";
import { createActionDialog } from "./action-dialog.js";
import { FINAL, KINDS, entryText, kindLabel } from "./action-kinds.js";
import { fetchAction, postAction } from "./actions-api.js";
import { button, el } from "./dom.js";
import { formatTime } from "./format.js";

const POLL_MS = 500;
/**
 * How long past its expiry an action is still asked about: the server
 * marks an unanswered one failed once its expiry has passed, so one read
 * after it says so.
 */
const EXPIRY_GRACE_MS = 3000;

/** Roles that may act. */
export const ACTING_ROLES = new Set(["operator", "admin"]);

/**
 * @param {HTMLElement} box  where the buttons and the result go, in the details pane
 * @param {object} actions   { unauthorized(), changed(): an action was asked for or ended }
 * @returns {{ render(state, node, summary) }}
 */
export function createProcessActions(box, actions) {
  const bar = el("div", "process-actions");
  bar.id = "process-actions";
  bar.setAttribute("role", "group");
  bar.setAttribute("aria-label", "Act on this process");
  const buttons = KINDS.map(([kind, label]) => {
    const b = button(label, `action-${kind.replace(/_/g, "-")}`);
    b.dataset.kind = kind;
    bar.append(b);
    return b;
  });
  const hint = el("p", "action-hint");
  hint.id = "action-hint";
  const result = el("div", "action-result");
  result.id = "action-result";
  result.setAttribute("role", "status");
  result.setAttribute("aria-live", "polite");
  const resultKind = el("strong", "action-result-kind");
  const resultText = el("span", "action-result-text");
  const resultWhen = el("span", "action-result-when");
  result.append(resultKind, " ", resultText, " ", resultWhen);
  box.append(bar, hint, result);

  const dialog = createActionDialog();
  /** The newest action asked from this page, per process: `${host}|${key}` -> slot. */
  const slots = new Map();
  let current = null; // { state, node, summary } of the last render
  let session = null;

  bar.addEventListener("click", (event) => {
    const chosen = event.target.closest("button[data-kind]");
    if (chosen && !chosen.disabled) ask(chosen.dataset.kind);
  });

  async function ask(kind) {
    if (!current?.node) return;
    const { state, node, summary } = current;
    const process = node.process;
    const hostId = state.hostId;
    const key = `${hostId}|${node.key}`;
    const reason = await dialog.ask({
      kind,
      process,
      hostname: summary?.host.hostname ?? hostId,
      windows: /windows/i.test(summary?.host.os_name ?? ""),
    });
    if (reason == null) return;
    const slot = { kind, phase: "asking", entry: null, error: "", askedAt: serverNow(), session };
    slots.set(key, slot);
    redraw();
    try {
      slot.entry = await postAction({
        host_id: hostId,
        pid: process.pid,
        started_at: process.start_time,
        kind,
        reason,
      });
      slot.phase = "following";
      actions.changed();
      redraw();
      follow(slot);
    } catch (error) {
      failed(slot, error);
    }
  }

  /** Asks how the slot's action stands every POLL_MS until it ends or expires. */
  async function follow(slot) {
    const expires = Date.parse(slot.entry.expires_at);
    while (slot.phase === "following" && slot.session === session) {
      if (FINAL.has(slot.entry.outcome)) {
        slot.phase = "ended";
        actions.changed();
        break;
      }
      if (serverNow() > expires + EXPIRY_GRACE_MS) {
        slot.phase = "ended";
        slot.error = `No outcome by ${formatTime(new Date(expires))}, when the action expired; the actions log will show it.`;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      try {
        slot.entry = await fetchAction(slot.entry.id);
        slot.error = "";
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        if (error.kind === "unauthorized") {
          failed(slot, error);
          return;
        }
        // The server out of reach for a moment: said, and asked again.
        slot.error = error.message;
      }
      redraw();
    }
    redraw();
  }

  function failed(slot, error) {
    if (!(error instanceof ApiError)) throw error;
    slot.phase = "ended";
    slot.error = error.message;
    if (error.kind === "unauthorized") actions.unauthorized();
    redraw();
  }

  function redraw() {
    if (current) render(current.state, current.node, current.summary);
  }

  /**
   * @param {object} state          the page's state
   * @param {object|null} node      the selected TreeNode (null: it exited)
   * @param {object|null} summary   HostSummary of the chosen host
   */
  function render(state, node, summary) {
    current = { state, node, summary };
    if (state.session?.name !== session?.name || state.session == null) {
      // What was asked belongs to who asked: it goes with their session.
      session = state.session ? { name: state.session.name } : null;
      slots.clear();
    }
    const mayAct = ACTING_ROLES.has(state.session?.role);
    const past = state.at != null || !state.tree?.live;
    const offline = summary != null && !summary.online;
    const running = node != null && !node.exitedAt;
    const offered = mayAct && !past && !offline && running;
    bar.hidden = !offered;
    let why = "";
    if (mayAct && running && past) why = "Actions act on the live tree: go back to Live to act on this process.";
    else if (mayAct && running && offline) why = "This host is offline: its agent cannot receive actions.";
    setText(hint, why);
    hint.hidden = why === "";

    const selected = state.selectedKey ? slots.get(`${state.hostId}|${state.selectedKey}`) : null;
    for (const b of buttons) b.disabled = selected?.phase === "asking";
    renderResult(selected);
  }

  function renderResult(slot) {
    result.hidden = slot == null;
    if (!slot) return;
    let text;
    let outcome;
    if (slot.phase === "asking") {
      text = "Asking the server…";
      outcome = "asking";
    } else if (!slot.entry) {
      text = slot.error;
      outcome = "error";
    } else if (slot.phase === "ended" && !FINAL.has(slot.entry.outcome)) {
      // Stopped following before an outcome: why.
      text = slot.error;
      outcome = "unknown";
    } else {
      text = entryText(slot.entry);
      outcome = slot.entry.outcome;
      if (slot.error) text = `${text} (${slot.error})`;
    }
    result.dataset.outcome = outcome;
    result.dataset.id = slot.entry?.id ?? "";
    setText(resultKind, `${kindLabel(slot.kind)}:`);
    setText(resultText, text);
    const finished = slot.entry?.finished_at ? Date.parse(slot.entry.finished_at) : null;
    setText(resultWhen, finished
      ? `(${formatTime(new Date(finished))})`
      : `(asked ${formatTime(new Date(slot.askedAt))})`);
  }

  return { render };
}

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}
