// The numeric fields of a process, named once for the whole page: the
// details pane lists them all, the tree shows those marked `table` as
// columns (headers included), and sorting compares them. Adding a numeric
// field to the wire means one entry here.

import { formatBytes, formatCpu, formatDateTime } from "./format.js";

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
 * The columns the process table can show, in their order. id: sort key and
 * CSS class `col-<id>`; width: in pixels; narrowest: the table's box width
 * below which the column gives way (phone, details pane open); phoneWidth:
 * its width on a phone, when narrower; chosen: shown
 * until the user says otherwise. `header(ctx)` and `text(node, ctx)` are
 * given the view's context: { tree, cpuScale, cpuCount, memoryTotal, os }.
 */
export const COLUMNS = [
  { id: "pid", header: () => "PID", width: 72, phoneWidth: 54, num: true, chosen: true,
    text: (n) => String(n.process.pid) },
  { id: "user", header: () => "User", width: 110, narrowest: 680, chosen: true,
    text: (n) => n.process.user ?? "" },
  { id: "cpu", header: (ctx) => (ctx.cpuScale === "machine" ? "CPU % all" : "CPU % core"),
    width: 96, phoneWidth: 62, num: true, chosen: true, heat: true,
    text: (n, ctx, totals) => formatCpu(cpuOnScale(totals ? totals.cpu : n.process.cpu_percent ?? 0, ctx)) },
  { id: "memory", header: () => "Memory", width: 86, phoneWidth: 72, num: true, chosen: true, heat: true,
    text: (n, ctx, totals) => formatBytes(totals ? totals.memory : n.process.memory_rss_bytes ?? 0) },
  { id: "private", header: () => "Private", width: 86, num: true, narrowest: 800,
    text: (n) => (n.process.memory_private_bytes == null ? "" : formatBytes(n.process.memory_private_bytes)) },
  { id: "virtual", header: () => "Virtual", width: 86, num: true, narrowest: 800,
    text: (n) => formatBytes(n.process.memory_virtual_bytes ?? 0) },
  { id: "threads", header: () => "Threads", width: 70, num: true, narrowest: 680, chosen: true,
    text: (n) => (n.process.threads == null ? "" : String(n.process.threads)) },
  { id: "handles", header: (ctx) => handlesLabel(ctx.os), width: 80, num: true, narrowest: 800,
    text: (n) => (n.process.handles == null ? "" : String(n.process.handles)) },
  { id: "readRate", header: () => "Disk read/s", width: 92, num: true, narrowest: 800,
    text: (n, ctx) => formatBytes(ctx.rates(n).read) },
  { id: "writeRate", header: () => "Disk write/s", width: 92, num: true, narrowest: 800,
    text: (n, ctx) => formatBytes(ctx.rates(n).write) },
  { id: "started", header: () => "Started", width: 196, num: true, narrowest: 1000, chosen: true,
    text: (n) => formatDateTime(new Date(n.startMs)) },
  { id: "command", header: () => "Command line", width: 320, narrowest: 1100,
    text: (n) => (n.process.cmd?.length ? n.process.cmd.join(" ") : n.process.exe ?? "") },
];

/** "Open files" on Linux and macOS, "Handles" on Windows: what the agent counts. */
export function handlesLabel(os) {
  return /windows/i.test(os ?? "") ? "Handles" : /linux|darwin|mac/i.test(os ?? "") ? "Open files" : "Handles";
}

/** CPU % as the user chose to read it: 100 = one core, or 100 = the whole machine. */
export function cpuOnScale(percent, ctx) {
  return ctx.cpuScale === "machine" ? percent / Math.max(1, ctx.cpuCount || 1) : percent;
}
