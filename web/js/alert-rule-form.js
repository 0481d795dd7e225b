// The fields of an alert rule: what it watches (each condition kind with its
// own fields), which processes (name, exe, cmd, user: each equals, contains
// or a regular expression), where, how bad, how long, and whom it tells.
// It turns the fields into the AlertRuleSpec the API takes and back; the
// server checks the rule and says what is wrong, so the only thing refused
// here is a number field holding what is not a number (the browser would
// hand it on as empty).

import { el, field, input, select } from "./dom.js";

const KINDS = [
  ["process_absent", "No matching process runs"],
  ["process_present", "A matching process runs"],
  ["process_count", "The number of matching processes is out of bounds"],
  ["process_above", "A matching process's number is above a threshold"],
  ["host_above", "The host's number is above a threshold"],
  ["host_offline", "The host stops reporting"],
];
const PROCESS_KINDS = new Set(["process_absent", "process_present", "process_count", "process_above"]);
const THRESHOLD_KINDS = new Set(["process_above", "host_above"]);
const MATCH_PARTS = [
  ["name", "Name"],
  ["exe", "Executable path"],
  ["cmd", "Command line"],
  ["user", "User"],
];
const MATCH_OPS = ["equals", "contains", "regex"];
export const PROCESS_METRICS = [
  ["cpu_percent", "CPU % (100 = one core)"],
  ["memory_rss_bytes", "Resident memory, bytes"],
  ["threads", "Threads"],
  ["handles", "Handles or open files"],
];
export const HOST_METRICS = [
  ["cpu_percent", "CPU % of the machine"],
  ["memory_used_bytes", "Memory used, bytes"],
  ["memory_used_percent", "Memory used, % of the machine"],
  ["process_count", "Number of processes"],
];
const SEVERITIES = ["info", "warning", "critical"];

/**
 * Builds the fields in a <fieldset> (disabled as one for read-only).
 * @returns {{ element, fill(spec), read(): object, setChannels(channels), setEditable(boolean), focus() }}
 */
export function createRuleFields() {
  const root = el("fieldset", "rule-fields");
  const legend = el("legend", "rule-legend", "Rule");
  const c = {
    name: input("text", { maxLength: 200, required: true, placeholder: "nginx must run" }),
    severity: select(SEVERITIES.map((s) => [s, s])),
    kind: select(KINDS),
    min: input("number", { min: 0, step: 1 }),
    max: input("number", { min: 0, step: 1 }),
    processMetric: select(PROCESS_METRICS),
    hostMetric: select(HOST_METRICS),
    above: input("number", { step: "any" }),
    clearBelow: input("number", { step: "any" }),
    hosts: input("text", { placeholder: "every host" }),
    hostLabels: input("text", { placeholder: "any labels", spellcheck: false }),
    forSeconds: input("number", { min: 0, step: 1 }),
    clearSeconds: input("number", { min: 0, step: 1 }),
    repeatSeconds: input("number", { min: 60, step: 1, placeholder: "once" }),
    enabled: input("checkbox"),
  };
  c.severity.value = "warning";

  const general = el("div", "rule-grid");
  general.append(
    field("rule-name", "Name", c.name),
    field("rule-severity", "Severity", c.severity),
    field("rule-kind", "Fires when", c.kind),
  );

  // The process matcher: a row per text, used when its text is given.
  const matcher = el("div", "rule-matcher");
  matcher.append(el("p", "rule-part-title", "Matching processes (every part given must match; give at least one)"));
  const parts = {};
  for (const [part, label] of MATCH_PARTS) {
    const op = select(MATCH_OPS.map((o) => [o, o]));
    op.id = `rule-match-${part}-op`;
    op.setAttribute("aria-label", `${label}: how to match`);
    const text = input("text", { spellcheck: false });
    text.id = `rule-match-${part}`;
    text.setAttribute("aria-label", `${label} to match`);
    const name = el("label", "rule-match-name", label);
    name.htmlFor = text.id;
    const row = el("div", "rule-match");
    row.append(name, op, text);
    matcher.append(row);
    parts[part] = { op, text };
  }
  matcher.append(el("small", "rule-hint", "equals and contains ignore case; a regular expression is taken as written (start it with (?i) to ignore case)."));

  const count = el("div", "rule-grid rule-count");
  count.append(
    field("rule-min", "At least", c.min, "empty: no lower bound"),
    field("rule-max", "At most", c.max, "empty: no upper bound"),
  );
  const threshold = el("div", "rule-grid rule-threshold");
  const processMetric = field("rule-process-metric", "Number", c.processMetric);
  const hostMetric = field("rule-host-metric", "Number", c.hostMetric);
  threshold.append(
    processMetric,
    hostMetric,
    field("rule-above", "Above", c.above),
    field("rule-clear-below", "Clears at or below", c.clearBelow, "empty: as soon as it is not above"),
  );

  const timing = el("div", "rule-grid");
  timing.append(
    field("rule-hosts", "Hosts", c.hosts, "ids or hostnames, comma-separated; empty: every host"),
    field("rule-host-labels", "Host labels", c.hostLabels, "comma-separated; only hosts carrying every one (and named above, if any are)"),
    field("rule-for", "For (s)", c.forSeconds, "how long it must hold before it fires"),
    field("rule-clear", "Clear after (s)", c.clearSeconds, "how long it must have cleared before it resolves"),
    field("rule-repeat", "Repeat every (s)", c.repeatSeconds, "while firing; empty: tell once"),
  );
  // Whom it tells: a box per channel (under Channels); a chosen channel
  // that no longer exists stays listed, so saving does not drop it unseen.
  const channelGroup = el("div", "rule-channels");
  channelGroup.id = "rule-channels";
  channelGroup.setAttribute("role", "group");
  const channelTitle = el("span", "rule-part-title", "Tell");
  channelTitle.id = "rule-channels-title";
  channelGroup.setAttribute("aria-labelledby", channelTitle.id);
  const channelField = el("div", "rule-field rule-channel-field");
  channelField.append(channelTitle, channelGroup);
  let chosenChannels = new Set();
  let knownChannels = [];
  function channelOption(id, label) {
    const box = input("checkbox");
    box.value = id;
    box.dataset.channel = id;
    box.checked = chosenChannels.has(id);
    box.addEventListener("change", () => (box.checked ? chosenChannels.add(id) : chosenChannels.delete(id)));
    const option = el("label", "rule-channel");
    option.append(box, document.createTextNode(` ${label}`));
    return option;
  }
  function drawChannels() {
    const known = new Set(knownChannels.map((ch) => ch.id));
    const options = knownChannels.map((ch) => channelOption(ch.id, `${ch.name} (${ch.kind.type})`));
    for (const id of chosenChannels) if (!known.has(id)) options.push(channelOption(id, `${id} (no such channel)`));
    if (!options.length) options.push(el("small", "rule-hint", "No channels yet: add one under Channels. Until then the alert is only shown."));
    channelGroup.replaceChildren(...options);
  }
  const enabled = el("label", "rule-enabled");
  c.enabled.id = "rule-enabled";
  enabled.append(c.enabled, document.createTextNode(" Enabled"));
  timing.append(enabled);

  root.append(legend, general, matcher, count, threshold, timing, channelField);

  function showKind() {
    const kind = c.kind.value;
    matcher.hidden = !PROCESS_KINDS.has(kind);
    count.hidden = kind !== "process_count";
    threshold.hidden = !THRESHOLD_KINDS.has(kind);
    processMetric.hidden = kind !== "process_above";
    hostMetric.hidden = kind !== "host_above";
  }
  c.kind.addEventListener("change", showKind);

  function fill(spec) {
    const rule = spec ?? {};
    const condition = rule.condition ?? { kind: "process_absent", process: {} };
    c.name.value = rule.name ?? "";
    c.severity.value = rule.severity ?? "warning";
    c.kind.value = condition.kind;
    for (const [part] of MATCH_PARTS) {
      const given = condition.process?.[part];
      const op = given ? Object.keys(given)[0] : "equals";
      parts[part].op.value = op;
      parts[part].text.value = given ? given[op] : "";
    }
    c.min.value = condition.min ?? "";
    c.max.value = condition.max ?? "";
    c.processMetric.value = condition.kind === "process_above" ? condition.metric : "cpu_percent";
    c.hostMetric.value = condition.kind === "host_above" ? condition.metric : "cpu_percent";
    c.above.value = condition.above ?? "";
    c.clearBelow.value = condition.clear_below ?? "";
    c.hosts.value = (rule.hosts ?? []).join(", ");
    c.hostLabels.value = (rule.host_labels ?? []).join(", ");
    c.forSeconds.value = rule.for_seconds ?? 0;
    c.clearSeconds.value = rule.clear_seconds ?? 0;
    c.repeatSeconds.value = rule.repeat_seconds ?? "";
    chosenChannels = new Set(rule.channels ?? []);
    drawChannels();
    c.enabled.checked = rule.enabled ?? true;
    showKind();
  }

  /**
   * The AlertRuleSpec the fields say; empty numbers are left out, for the
   * server to name. Throws an Error when a number field is not a number.
   */
  function read() {
    const kind = c.kind.value;
    const condition = { kind };
    if (PROCESS_KINDS.has(kind)) {
      condition.process = {};
      for (const [part] of MATCH_PARTS) {
        const text = parts[part].text.value.trim();
        if (text) condition.process[part] = { [parts[part].op.value]: text };
      }
    }
    if (kind === "process_count") {
      setNumber(condition, "min", c.min);
      setNumber(condition, "max", c.max);
    }
    if (THRESHOLD_KINDS.has(kind)) {
      condition.metric = kind === "process_above" ? c.processMetric.value : c.hostMetric.value;
      setNumber(condition, "above", c.above);
      setNumber(condition, "clear_below", c.clearBelow);
    }
    const spec = {
      name: c.name.value.trim(),
      severity: c.severity.value,
      hosts: list(c.hosts.value),
      condition,
      for_seconds: number(c.forSeconds) ?? 0,
      clear_seconds: number(c.clearSeconds) ?? 0,
      channels: [...chosenChannels],
      enabled: c.enabled.checked,
    };
    // Left out when empty, as the server leaves it out of a stored rule.
    const hostLabels = list(c.hostLabels.value);
    if (hostLabels.length) spec.host_labels = hostLabels;
    const repeat = number(c.repeatSeconds);
    if (repeat != null) spec.repeat_seconds = repeat;
    return spec;
  }

  fill(null);
  return {
    element: root,
    fill,
    read,
    /** The channels there are to choose from (Channel[]). */
    setChannels(channels) {
      knownChannels = channels;
      drawChannels();
    },
    setEditable(editable) {
      root.disabled = !editable;
    },
    focus: () => c.name.focus(),
  };
}

function number(control) {
  if (control.validity.badInput) {
    const label = document.querySelector(`label[for="${control.id}"]`)?.textContent ?? control.id;
    throw new Error(`${label}: not a number.`);
  }
  const value = control.valueAsNumber;
  return Number.isFinite(value) ? value : null;
}

function setNumber(target, key, control) {
  const value = number(control);
  if (value != null) target[key] = value;
}

/** "a, b  c" -> ["a", "b", "c"]: commas or spaces part the entries. */
function list(text) {
  return text.split(/[\s,]+/).filter(Boolean);
}
