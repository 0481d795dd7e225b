// A rule's preview, before it is saved (POST /api/alerts/preview/): on each
// host in its scope, whether it holds now and which processes match; and
// when it would have fired over the last day of history, each firing a link
// to the host's tree at that moment. Every text is set as text.

import { el, table as makeTable } from "./dom.js";
import { formatBytes, formatDateTime, formatDuration } from "./format.js";

/** Processes named per host; the rest are counted. */
const NAMED = 8;

/**
 * @param {HTMLElement} root  where the preview goes (hidden until one is shown)
 * @returns {{ asking(), show(preview, spec), clear() }}
 */
export function createPreview(root) {
  root.hidden = true;
  root.setAttribute("aria-live", "polite");

  return {
    asking() {
      root.hidden = false;
      root.replaceChildren(el("p", "preview-status", "Previewing…"));
    },
    show(preview, spec) {
      root.hidden = false;
      root.replaceChildren(...drawn(preview, spec));
      // Below the form, past the panel's fold: brought up to be read.
      root.scrollIntoView({ block: "nearest" });
    },
    clear() {
      root.hidden = true;
      root.replaceChildren();
    },
  };
}

function drawn(preview, spec) {
  const parts = [el("h3", "preview-title", "Preview")];
  if (preview.note) {
    const note = el("p", "preview-note", preview.note);
    note.id = "rule-preview-note";
    parts.push(note);
  }
  const names = new Map(preview.now.map((h) => [h.host_id, h.hostname]));

  parts.push(el("h4", "preview-heading", "Now"));
  if (preview.now.length === 0) {
    parts.push(el("p", "empty", "No host is in the rule's scope."));
  } else {
    const table = makeTable("users-table preview-now", ["Host", "Condition", "Value", "Matching processes"]);
    for (const host of preview.now) {
      const tr = el("tr");
      tr.dataset.hostId = host.host_id;
      tr.classList.toggle("holds", host.holds);
      const name = el("td", "preview-host", host.hostname);
      name.title = `host id ${host.host_id}`;
      tr.append(
        name,
        el("td", "preview-holds", host.holds ? "holds" : "does not hold"),
        el("td", "preview-value", valueText(host.value, spec)),
        el("td", "preview-matching", matchingText(host)),
      );
      table.tBodies[0].append(tr);
    }
    parts.push(table);
  }

  parts.push(el("h4", "preview-heading", `Would have fired, last ${preview.hours} h`));
  if (preview.history.length === 0) {
    parts.push(el("p", "empty preview-none", `Would not have fired in the last ${preview.hours} h.`));
  } else {
    const list = el("ul", "preview-history");
    for (const firing of preview.history) {
      const li = el("li", "preview-firing");
      li.dataset.hostId = firing.host_id;
      const fired = new Date(firing.fired_at);
      const link = el("a", "preview-fired", formatDateTime(fired));
      link.href = `#${new URLSearchParams({ host: firing.host_id, at: fired.toISOString() })}`;
      link.title = "The host's tree at that moment";
      const end = firing.resolved_at
        ? `resolved ${formatDateTime(new Date(firing.resolved_at))} (after ${formatDuration((Date.parse(firing.resolved_at) - fired) / 1000)})`
        : "still firing";
      li.append(el("span", "preview-firing-host", names.get(firing.host_id) ?? firing.host_id), link, el("span", "preview-resolved", `→ ${end}`));
      list.append(li);
    }
    parts.push(list);
  }
  if (preview.partial) {
    parts.push(el("p", "preview-note", "Only part of the history was looked at: more may have fired."));
  }
  return parts;
}

function matchingText(host) {
  if (!host.matching.length) return host.count ? `${host.count}` : "none";
  const named = host.matching.slice(0, NAMED).map((p) => `${p.name} (${p.pid})`).join(", ");
  const more = host.count - Math.min(NAMED, host.matching.length);
  return more > 0 ? `${named} and ${more} more` : named;
}

/** The number the rule compares, in its unit. */
function valueText(value, spec) {
  const condition = spec.condition;
  const metric = condition.metric ?? "";
  if (condition.kind === "host_offline") return `${formatDuration(value)} quiet`;
  if (metric.endsWith("_bytes")) return formatBytes(value);
  if (metric.endsWith("percent")) return `${Math.round(value * 10) / 10}%`;
  if (condition.kind.startsWith("process_") && condition.kind !== "process_above") return `${value} matching`;
  return String(Math.round(value * 100) / 100);
}
