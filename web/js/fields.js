// The numeric fields of a process, named once for the whole page: the
// details pane lists them all, the tree shows those marked `table` as
// columns (headers included), and sorting compares them. Adding a numeric
// field to the wire means one entry here.

import { formatBytes, formatCpu } from "./format.js";

const count = (n) => String(n);

/**
 * key: the field on the wire; column: its short name in the page (sort
 * key, CSS class `col-<column>`, `field-<column>` in the details);
 * label: in the details; header: the tree's column heading, for those
 * shown as columns; missing: what an absent value reads as.
 */
export const METRICS = [
  { key: "cpu_percent", column: "cpu", label: "CPU", header: "CPU %", table: true,
    format: (v) => formatCpu(v), detail: (v) => `${formatCpu(v)} % (100 % = one core)` },
  { key: "memory_rss_bytes", column: "memory", label: "Memory (resident)", header: "Memory",
    table: true, format: formatBytes },
  { key: "memory_private_bytes", column: "private", label: "Private bytes", format: formatBytes,
    missing: "not reported" },
  { key: "memory_virtual_bytes", column: "virtual", label: "Virtual memory", format: formatBytes },
  { key: "threads", column: "threads", label: "Threads", header: "Threads", table: true,
    format: count, missing: "not readable" },
  { key: "handles", column: "handles", label: "Handles or open files", format: count,
    missing: "not reported" },
  { key: "disk_read_bytes", column: "read", label: "Disk read", format: formatBytes },
  { key: "disk_written_bytes", column: "written", label: "Disk written", format: formatBytes },
];

/** The metrics shown as columns of the tree. */
export const TABLE_METRICS = METRICS.filter((m) => m.table);

/** How `metric` of process `p` reads in the tree (empty when absent). */
export function cellText(metric, p) {
  const value = p[metric.key];
  return value == null ? "" : metric.format(value);
}

/** How `metric` of process `p` reads in the details pane. */
export function detailText(metric, p) {
  const value = p[metric.key];
  if (value == null) return metric.missing ?? "not reported";
  return (metric.detail ?? metric.format)(value);
}

/** Compares two processes by `metric`, absent values as 0. */
export function compareBy(metric) {
  return (a, b) => (a[metric.key] ?? 0) - (b[metric.key] ?? 0);
}

/**
 * Puts a sortable header for each table metric into the header row, before
 * the header `before` (a `data-sort` name).
 */
export function addMetricHeaders(headerRow, before) {
  const anchor = headerRow.querySelector(`th[data-sort="${before}"]`);
  for (const metric of TABLE_METRICS) {
    const th = document.createElement("th");
    th.dataset.sort = metric.column;
    th.className = `col-${metric.column} num`;
    th.setAttribute("aria-sort", "none");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = metric.header;
    th.append(button);
    headerRow.insertBefore(th, anchor);
  }
}
