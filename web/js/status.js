// How the page's connection stands, said in two places: the badge in the
// header and the banner above the tree. (The sign-in form is signin.js.)

import { formatAgo, formatDateTime } from "./format.js";

const $ = (id) => document.getElementById(id);

/**
 * Shows the state of the connection and of the chosen host.
 * @param {object} state         the page's state (state.js)
 * @param {object|null} summary  HostSummary of the chosen host
 * @param {number} now           server time, ms
 */
export function renderStatus(state, summary, now) {
  renderConnection(state, summary);
  renderBanner(state, summary, now);
}

function renderConnection(state, summary) {
  const badge = $("connection");
  let text;
  let level;
  switch (state.connection) {
    case "live": {
      const online = summary ? summary.online : true;
      const polled = state.liveMode === "polling";
      text = !online ? "Host offline" : polled ? "Live, polled every 2 s" : "Live";
      level = online && !polled ? "ok" : "warn";
      break;
    }
    case "unreachable":
      text = "Server unreachable";
      level = "bad";
      break;
    case "unauthorized":
      text = "Sign-in needed";
      level = "warn";
      break;
    case "error":
      text = "Server error";
      level = "bad";
      break;
    default:
      text = "Connecting…";
      level = "idle";
  }
  badge.dataset.level = level;
  // How the chosen host's processes arrive: "stream", "polling" or "connecting".
  badge.dataset.live = state.liveMode;
  // What is on screen may be out of date: shown dimmed until the server answers.
  document.body.classList.toggle("disconnected", level === "bad");
  $("connection-text").textContent = text;
  badge.title = state.lastSuccessAt
    ? `Last answer from the server ${formatAgo(state.lastSuccessAt, Date.now())}`
    : "No answer from the server yet";
}

function renderBanner(state, summary, now) {
  const banner = $("banner");
  let text = "";
  let level = "warn";
  if (state.connection === "unreachable" || state.connection === "error") {
    const age = state.lastSuccessAt ? `; shown data is from ${formatAgo(state.lastSuccessAt, Date.now())}` : "";
    text = `${state.connectionMessage} Retrying every ${state.pollSeconds} s${age}.`;
    level = "bad";
  } else if (state.liveMode === "polling" && state.liveMessage) {
    text = state.liveMessage;
    level = "info";
  } else if (state.listingError) {
    text = state.listingError;
    level = "bad";
  } else if (summary && !summary.online) {
    const listing = state.listing;
    const taken = listing ? ` Showing its last snapshot, taken ${formatDateTime(new Date(listing.collected_at))}.` : "";
    text = `This host is offline: nothing received since ${formatAgo(Date.parse(summary.last_seen), now)}.${taken}`;
  } else if (state.hostsLoaded && state.hosts.length === 0) {
    text = "No agent has sent a snapshot yet. Start procmon-agent on a machine with this server's URL and agent key.";
    level = "info";
  }
  banner.hidden = text === "";
  banner.dataset.level = level;
  if (banner.textContent !== text) banner.textContent = text;
}
