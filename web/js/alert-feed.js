// The fleet's open alerts and the silences in force, asked every 5 s while
// the page is connected (a fifth as often in a hidden tab). Two small reads,
// shared through the page's state by the header's count, the host list, the
// tree's rows and the alerts view; and the questions they ask of them.

import { ApiError } from "./api.js";
import { fetchAlerts, fetchSilences } from "./alerts-api.js";

const EVERY_MS = 5000;

/**
 * @param {object} actions  { loaded({ alerts, silences }), failed(error) }
 * @returns {{ render(state), refresh() }}
 */
export function createAlertFeed(actions) {
  let running = false;
  let timer = 0;
  let asking = false;
  let again = false;

  async function ask() {
    timer = 0;
    asking = true;
    try {
      const [alerts, silences] = await Promise.all([fetchAlerts("open"), fetchSilences()]);
      if (running) actions.loaded({ alerts, silences });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (running) actions.failed(error);
    } finally {
      asking = false;
      if (again && running) {
        again = false;
        ask();
      } else if (running) {
        timer = setTimeout(ask, document.hidden ? EVERY_MS * 5 : EVERY_MS);
      }
    }
  }

  return {
    /** Asks while the server answers the page (signed in, or no sign-in needed). */
    render(state) {
      const wanted = state.connection === "live";
      if (wanted && !running) {
        running = true;
        if (!asking) ask();
      } else if (!wanted && running) {
        running = false;
        clearTimeout(timer);
        timer = 0;
      }
    },
    /** Asks again at once (something was changed on this page). */
    refresh() {
      if (!running) return;
      if (asking) {
        again = true;
        return;
      }
      clearTimeout(timer);
      ask();
    },
  };
}

/**
 * Until when a silence in force covers `alert` (ms), or null. The silences
 * say it: an alert's own `silenced_until` is set when it last changed, so it
 * misses a silence made, or ended, since.
 */
export function silencedUntil(alert, silences, now) {
  if (!silences) {
    const until = alert.silenced_until ? Date.parse(alert.silenced_until) : 0;
    return until > now ? until : null;
  }
  let until = null;
  for (const s of silences) {
    const ends = Date.parse(s.until);
    if (Date.parse(s.starts_at) > now || ends <= now) continue;
    if (s.rule_id && s.rule_id !== alert.rule_id) continue;
    if (s.host_id && s.host_id !== alert.host_id) continue;
    if (until == null || ends > until) until = ends;
  }
  return until;
}

const byHostCache = new WeakMap();

/** Firing alerts by host id: Map of id -> Alert[] (worked out once per list). */
export function firingByHost(alerts) {
  let byHost = byHostCache.get(alerts);
  if (!byHost) {
    byHost = new Map();
    for (const alert of alerts) {
      if (alert.state !== "firing") continue;
      if (!byHost.has(alert.host_id)) byHost.set(alert.host_id, []);
      byHost.get(alert.host_id).push(alert);
    }
    byHostCache.set(alerts, byHost);
  }
  return byHost;
}

/** A process's identity as alerts and tree rows share it: pid and start time (ms). */
export function processIdentity(pid, startTime) {
  return `${pid}@${Date.parse(startTime)}`;
}

const byProcessCache = new WeakMap();

/** Firing alerts on one process of `hostId`: Map of processIdentity -> Alert[]. */
export function alertingProcesses(alerts, hostId) {
  let cached = byProcessCache.get(alerts);
  if (!cached || cached.hostId !== hostId) {
    const map = new Map();
    for (const alert of firingByHost(alerts).get(hostId) ?? []) {
      if (!alert.process) continue;
      const key = processIdentity(alert.process.pid, alert.process.start_time);
      if (!map.has(key)) map.set(key, []);
      map.get(key).push(alert);
    }
    cached = { hostId, map };
    byProcessCache.set(alerts, cached);
  }
  return cached.map;
}

/** The page at an alert's host when it fired (else when it began), with its process selected. */
export function alertLink(alert) {
  // In the order the page writes its own hash (state.js), so opening it adds no second entry.
  const params = new URLSearchParams({ host: alert.host_id });
  if (alert.process) params.set("p", `${alert.process.pid}@${alert.process.start_time}`);
  params.set("at", new Date(alert.fired_at ?? alert.since).toISOString());
  return `#${params}`;
}
