// How numbers, sizes and times are written on the page. Pure functions, no DOM.

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** 12_900_000 -> "12.3 MiB"; binary units, as Process Explorer and htop use. */
export function formatBytes(bytes) {
  if (bytes == null || !Number.isFinite(bytes)) return "";
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${value} B`;
  // Three significant digits keep the column narrow and still readable.
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${BYTE_UNITS[unit]}`;
}

/** CPU % of one process, 100 = one full core; idle shows as "0". */
export function formatCpu(percent) {
  if (percent == null || !Number.isFinite(percent)) return "";
  if (percent <= 0) return "0";
  if (percent < 0.1) return "<0.1";
  return percent.toFixed(1);
}

/** Whole-number percentage for summaries, e.g. "37%". */
export function formatPercent(percent) {
  if (percent == null || !Number.isFinite(percent)) return "";
  return `${Math.round(percent)}%`;
}

/** Seconds between `then` and `now` as "3 s ago", "5 min ago", "2 h ago", "4 d ago". */
export function formatAgo(then, now) {
  const seconds = Math.max(0, Math.round((now - then) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} d ago`;
}

/** A duration in seconds as "3 d 4 h", "2 h 5 min", "40 s". */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${m} min`;
  if (m > 0) return `${m} min ${s % 60} s`;
  return `${s} s`;
}

/** The viewer's time zone at `date`, short: "UTC", "UTC+1", "CET", "PST". */
let zoneFormat = null;
export function zoneName(date) {
  try {
    zoneFormat ??= new Intl.DateTimeFormat(undefined, { timeZoneName: "short" });
    const part = zoneFormat
      .formatToParts(date)
      .find((p) => p.type === "timeZoneName");
    return (part?.value ?? "").replace(/^GMT(?=[+-]|$)/, "UTC") || "UTC";
  } catch {
    return "";
  }
}

const pad = (n) => String(n).padStart(2, "0");

/**
 * An RFC 3339 time shown in the viewer's local time zone, to the second, with
 * the zone named ("2026-01-01 14:03:05 UTC+1"), so a time read off one screen
 * means the same on another.
 */
export function formatDateTime(date, { zone = true } = {}) {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) return "";
  const text =
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  return zone ? `${text} ${zoneName(date)}` : text;
}

/** Time of day with its zone: "14:03:05 UTC+1". */
export function formatTime(date) {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) return "";
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())} ${zoneName(date)}`;
}

/** A time as a datetime-local field's value (local time, to the second). */
export function toLocalInput(ms) {
  const d = new Date(ms);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** A datetime-local field's value as ms since the epoch, or null. */
export function fromLocalInput(value) {
  if (!value) return null;
  const ms = new Date(value).getTime(); // no zone in the text: local time
  return Number.isNaN(ms) ? null : ms;
}

/** A process status from the wire ("disk_sleep") in words ("disk sleep"). */
export function formatStatus(status) {
  return String(status ?? "unknown").replace(/_/g, " ");
}

/**
 * A command line (list of arguments) as one string a person could paste into
 * a shell: arguments with spaces or quotes are quoted.
 */
export function formatCommandLine(args) {
  if (!Array.isArray(args) || args.length === 0) return "";
  return args
    .map((arg) => {
      const text = String(arg);
      if (text !== "" && !/[\s"'\\]/.test(text)) return text;
      return `"${text.replace(/(["\\])/g, "\\$1")}"`;
    })
    .join(" ");
}
