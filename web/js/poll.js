// The host list, polled: asked for every few seconds (less often while the
// chosen host's stream flows, or the tab is hidden), and at once when asked
// to; a failed poll says why in the status line, and a 401 shows the form.

import { ApiError, fetchHosts } from "./api.js";
import { bookkeeping, state, update } from "./state.js";

const POLL_MS = state.pollSeconds * 1000;

/**
 * @param {object} deps
 *   liveFeed          the chosen host's live feed (stopped on a 401)
 *   followChosenHost()  keeps the chosen host's processes coming (listing.js)
 * @returns {{ pollNow(), connectionFailed(error) }}
 */
export function createPoller({ liveFeed, followChosenHost }) {
  /** Asks at once (a new host was chosen, signed in, the tab came back). */
  function pollNow() {
    clearTimeout(bookkeeping.pollTimer);
    followChosenHost();
    if (bookkeeping.polling) bookkeeping.pollAgain = true;
    else poll();
  }

  async function poll() {
    bookkeeping.polling = true;
    try {
      await refreshHosts();
    } finally {
      bookkeeping.polling = false;
      if (bookkeeping.pollAgain) {
        bookkeeping.pollAgain = false;
        poll();
      } else {
        clearTimeout(bookkeeping.pollTimer);
        bookkeeping.pollTimer = setTimeout(poll, hostsPollMs());
      }
    }
  }

  /**
   * The host list changes slowly (last seen, online) and the chosen host's
   * processes come by the stream: while it flows, the list is asked for less
   * often.
   */
  function hostsPollMs() {
    const base = state.liveMode === "stream" ? POLL_MS * 5 : POLL_MS;
    return document.hidden ? base * 5 : base;
  }

  async function refreshHosts() {
    try {
      const hosts = await fetchHosts();
      const changes = {
        hosts,
        hostsLoaded: true,
        connection: "live",
        connectionMessage: "",
        lastSuccessAt: Date.now(),
        signInError: "",
      };
      if (!state.hostId && hosts.length > 0) {
        // Nothing chosen yet: show the first online host, as a start.
        const first = hosts.find((h) => h.online) ?? hosts[0];
        changes.hostId = first.host.id;
      }
      update(changes);
      followChosenHost();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      connectionFailed(error);
    }
  }

  function connectionFailed(error) {
    if (error.kind === "unauthorized") {
      // The page keeps what it shows; the form asks to sign in again.
      liveFeed.stop();
      update({ connection: "unauthorized", connectionMessage: error.message });
    } else {
      update({ connection: error.kind === "unreachable" ? "unreachable" : "error", connectionMessage: error.message });
    }
  }

  return { pollNow, connectionFailed };
}
