// What the page calls each action and its outcome, in one place, so the
// buttons, the confirmation and the audit log say the same. The kinds and
// codes are the wire's (model/src/actions.rs).

/** The kinds in the order the page offers them: [kind, button label]. */
export const KINDS = [
  ["terminate", "End"],
  ["kill", "Kill"],
  ["suspend", "Suspend"],
  ["resume", "Resume"],
  ["lower_priority", "Lower priority"],
];

const LABELS = Object.fromEntries(KINDS);

/** Kinds that end the process: their confirm button is red. */
export const ENDING = new Set(["terminate", "kill"]);

/** "kill" -> "Kill"; an unknown kind as it came. */
export function kindLabel(kind) {
  return LABELS[kind] ?? String(kind);
}

/**
 * What the action does, for the confirmation: said for the host's OS, as
 * the agent carries it out there.
 */
export function kindEffect(kind, windows) {
  switch (kind) {
    case "terminate":
      return windows
        ? "End stops it at once (Windows has no way to ask a process to end): it cannot save its work."
        : "End asks it to stop (SIGTERM), so it can save its work and exit cleanly; it may take a moment, or ignore the request.";
    case "kill":
      return windows
        ? "Kill ends it at once, without letting it save its work (TerminateProcess)."
        : "Kill ends it at once, without letting it save its work (SIGKILL).";
    case "suspend":
      return windows
        ? "Suspend stops it running until it is resumed; it keeps its memory and open files."
        : "Suspend stops it running until it is resumed (SIGSTOP); it keeps its memory and open files.";
    case "resume":
      return windows
        ? "Resume lets a suspended process run again."
        : "Resume lets a suspended process run again (SIGCONT).";
    case "lower_priority":
      return windows
        ? "Lower priority runs it below normal priority, so other processes get the CPU first."
        : "Lower priority runs it at nice 10, so other processes get the CPU first.";
    default:
      return "";
  }
}

/** Outcomes after which nothing changes any more. */
export const FINAL = new Set(["done", "refused", "failed"]);

/** An outcome in words. */
export function outcomeLabel(outcome) {
  return {
    pending: "waiting for the agent",
    delivered: "with the agent",
    done: "done",
    refused: "refused",
    failed: "failed",
  }[outcome] ?? String(outcome);
}

/** A result code in words: "pid_reused" -> "pid reused". */
export function codeLabel(code) {
  return code ? String(code).replace(/_/g, " ") : "";
}

/**
 * One line saying where an entry stands, for the details pane: "Waiting
 * for the agent…" until it answers, then its outcome with the agent's
 * message.
 */
export function entryText(entry) {
  const message = entry.message ? `: ${entry.message}` : "";
  switch (entry.outcome) {
    case "pending":
      return "Waiting for the agent…";
    case "delivered":
      return "Waiting for the agent… it has the action.";
    case "done":
      return `Done${message}`;
    case "refused":
      return `Refused by the agent (${codeLabel(entry.code)})${message}`;
    case "failed":
      if (entry.code === "unanswered" && !entry.message) return "Failed: no answer from the agent before the action expired";
      return `Failed (${codeLabel(entry.code)})${message}`;
    default:
      return outcomeLabel(entry.outcome);
  }
}
