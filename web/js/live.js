// The chosen host's processes, kept current: the listing once, then the
// changes the server pushes (GET /api/live/, Server-Sent Events), applied by
// the caller in place. EventSource reconnects by itself and the server
// resumes it from the last event id; when it cannot, it says `reload` and
// the listing is fetched again, continuing from the sequence it names. If
// the stream keeps failing, the listing is polled instead (and the status
// line says so) and the stream is tried again a minute later.

import { ApiError, fetchLiveListing, liveUrl } from "./api.js";

/** The agents' default interval: how often the fallback polls. */
const POLL_MS = 2000;
/** Failures of the stream in a row before falling back to polling. */
const FAILURES_BEFORE_POLLING = 3;
/** How long the fallback polls before the stream is tried again. */
const RETRY_STREAM_MS = 60_000;

/**
 * @param {object} handlers
 *   listing(listing)      a full listing of the host: show it
 *   batch(batch, at)      a pushed ChangeBatch, received at `at` (performance.now()):
 *                         apply it; false if it does not fit
 *   mode(mode, message)   "stream", "polling", "connecting" or "error"
 *   failed(error)         an ApiError of the listing (unauthorized, unknown host, ...)
 */
export function createLiveFeed(handlers) {
  let hostId = null;
  let source = null;
  let generation = 0; // a new host or a reload makes older answers stale
  let failures = 0;
  let polling = false;
  let timer = 0;
  let pollingSince = 0;
  /**
   * For measuring (the page benchmark): events and bytes of event data
   * received, reloads, and script time spent on events (applying and
   * drawing), in ms.
   */
  const counters = { events: 0, bytes: 0, reloads: 0, busyMs: 0 };

  let watching = false;

  /** Watches `id` (or nothing, with null); watching it already changes nothing. */
  function watch(id) {
    if (id === hostId && watching) return;
    close();
    hostId = id;
    watching = id != null;
    if (id) load();
  }

  /** Stops watching (signed out): a later watch() starts again. */
  function stop() {
    close();
    watching = false;
  }

  function close() {
    generation += 1;
    clearTimeout(timer);
    timer = 0;
    source?.close();
    source = null;
  }

  /** Fetches the listing again and subscribes from where it stands. */
  async function load() {
    close();
    const mine = generation;
    let answer;
    try {
      answer = await fetchLiveListing(hostId);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (mine !== generation) return;
      handlers.failed(error);
      // Unreachable, or no snapshot yet: try again at the polling pace.
      if (error.kind !== "unauthorized") timer = setTimeout(load, POLL_MS * 2);
      return;
    }
    if (mine !== generation) return;
    handlers.listing(answer.listing);
    if (polling && Date.now() - pollingSince < RETRY_STREAM_MS) {
      timer = setTimeout(load, document.hidden ? POLL_MS * 5 : POLL_MS);
      return;
    }
    open(answer.seq, mine);
  }

  function open(since, mine) {
    const stream = new EventSource(liveUrl(hostId, since));
    source = stream;
    let opened = false;
    stream.addEventListener("open", () => {
      if (mine !== generation) return;
      opened = true;
      failures = 0;
      polling = false;
      handlers.mode("stream", "");
    });
    stream.addEventListener("change", (event) => {
      if (mine !== generation) return;
      const receivedAt = performance.now();
      counters.events += 1;
      counters.bytes += event.data.length;
      // The page draws in a microtask queued by the batch: this one runs after it.
      queueMicrotask(() => {
        counters.busyMs += performance.now() - receivedAt;
      });
      const change = JSON.parse(event.data);
      if (change.batch && handlers.batch(change.batch, receivedAt)) return;
      reload();
    });
    stream.addEventListener("reload", () => {
      if (mine !== generation) return;
      reload();
    });
    stream.addEventListener("error", () => {
      if (mine !== generation) return;
      failures += 1;
      const closed = stream.readyState === EventSource.CLOSED;
      if (failures >= FAILURES_BEFORE_POLLING) {
        polling = true;
        pollingSince = Date.now();
        handlers.mode("polling", "Live updates are not getting through: polling every 2 s instead.");
        close();
        timer = setTimeout(load, POLL_MS);
      } else if (closed || !opened) {
        // Refused (signed out, host removed, server error): the listing
        // says why; EventSource does not retry a refusal by itself.
        handlers.mode("connecting", "");
        close();
        timer = setTimeout(load, POLL_MS);
      } else {
        // EventSource reconnects by itself and resumes after the last id.
        handlers.mode("connecting", "");
      }
    });
  }

  function reload() {
    counters.reloads += 1;
    load();
  }

  return { watch, reload, stop, counters, get polling() { return polling; } };
}
