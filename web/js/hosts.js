// The host list: one button per host with its name, OS, online state, when it
// was last heard from, and its totals; for an admin, an offline host also has
// a button to remove it. Items are reused across refreshes and every value
// from a machine is set as text.

import { formatAgo, formatBytes, formatPercent } from "./format.js";

/**
 * @param {HTMLElement} list   the <ul> to fill
 * @param {(hostId: string) => void} onSelect
 * @param {(hostId: string) => void} onRemove
 */
export function createHostList(list, onSelect, onRemove) {
  const items = new Map(); // host id -> { li, button, remove, fields }

  list.addEventListener("click", (event) => {
    const remove = event.target.closest("button[data-remove-host]");
    if (remove) {
      onRemove(remove.dataset.removeHost);
      return;
    }
    const button = event.target.closest("button[data-host-id]");
    if (button) onSelect(button.dataset.hostId);
  });

  function makeItem(hostId) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "host";
    button.dataset.hostId = hostId;
    const part = (className, parent = button) => {
      const span = document.createElement("span");
      span.className = className;
      parent.append(span);
      return span;
    };
    const top = part("host-top");
    const fields = {
      name: part("host-name", top),
      badge: part("badge", top),
      os: part("host-os"),
      stats: part("host-stats"),
      seen: part("host-seen"),
    };
    // Beside the host's button, not in it: a button holds no other button.
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "host-remove quiet";
    remove.dataset.removeHost = hostId;
    remove.textContent = "Remove";
    remove.hidden = true;
    li.className = "host-item";
    li.append(button, remove);
    return { li, button, remove, fields };
  }

  /**
   * Shows `hosts` (HostSummary[]), marking `selectedId`; `now` is server time
   * in ms; `canRemove` (an admin) offers to remove offline hosts.
   */
  function render(hosts, selectedId, now, canRemove) {
    const seen = new Set();
    let cursor = list.firstChild;
    for (const summary of hosts) {
      const id = summary.host.id;
      seen.add(id);
      let item = items.get(id);
      if (!item) {
        item = makeItem(id);
        items.set(id, item);
      }
      fill(item, summary, id === selectedId, now);
      item.remove.hidden = !(canRemove && !summary.online);
      item.remove.setAttribute("aria-label", `Remove ${summary.display_name}`);
      if (item.li !== cursor) list.insertBefore(item.li, cursor);
      else cursor = cursor.nextSibling;
    }
    for (const [id, item] of items) {
      if (!seen.has(id)) {
        item.li.remove();
        items.delete(id);
      }
    }
  }

  return { render };
}

function fill({ button, fields }, summary, selected, now) {
  const { host } = summary;
  setText(fields.name, summary.display_name);
  button.title = `${summary.display_name} (id ${host.id})`;
  setText(fields.badge, summary.online ? "online" : "offline");
  fields.badge.className = `badge ${summary.online ? "badge-online" : "badge-offline"}`;
  setText(fields.os, [host.os_name, host.os_version, host.arch].filter(Boolean).join(" · "));

  // The total is in "100 = one core" units; per machine it reads better as a share.
  const cpuShare = summary.cpu_percent_total / Math.max(1, host.cpu_count);
  const memory = host.memory_total_bytes
    ? `${formatBytes(summary.memory_rss_total_bytes)} / ${formatBytes(host.memory_total_bytes)}`
    : formatBytes(summary.memory_rss_total_bytes);
  setText(
    fields.stats,
    `${summary.process_count} processes · CPU ${formatPercent(cpuShare)} · ${memory}`,
  );
  setText(fields.seen, `last seen ${formatAgo(Date.parse(summary.last_seen), now)}`);
  button.setAttribute("aria-current", selected ? "true" : "false");
  button.classList.toggle("offline", !summary.online);
}

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}
