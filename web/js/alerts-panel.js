// The alerts panel, opened from the header's "Alerts" button (which counts
// what fires): four parts as tabs, the alerts across the fleet (alerts.js),
// the rules (alert-rules.js), the silences (silences.js) and the channels
// notifications go to, with those not delivered (channels.js). It also runs the
// feed of open alerts and silences (alert-feed.js) that the host list and the
// tree's rows read from the page's state too.

import { createAlertFeed, firingByHost, silencedUntil } from "./alert-feed.js";
import { createAlertRules } from "./alert-rules.js";
import { createAlertsView } from "./alerts.js";
import { createChannels } from "./channels.js";
import { createSilences } from "./silences.js";
import { el } from "./dom.js";

const $ = (id) => document.getElementById(id);
const TABS = [
  ["alerts", "Alerts"],
  ["rules", "Rules"],
  ["silences", "Silences"],
  ["channels", "Channels"],
];

/**
 * @param {object} actions  { set(changes): changes the page's state (alert
 *                            fields only), unauthorized() }
 * @returns {{ render(state, now) }}
 */
export function createAlertsPanel(actions) {
  const panel = $("alerts-panel");
  const opener = $("alerts-open");
  const count = $("alerts-count");

  const feed = createAlertFeed({
    loaded: ({ alerts, silences }) => actions.set({ alerts, silences, alertsError: "" }),
    failed: (error) => (error.kind === "unauthorized" ? actions.unauthorized() : actions.set({ alertsError: error.message })),
  });
  const shared = {
    ...actions,
    // Something changed on this page: the feed asks again at once.
    changed: () => feed.refresh(),
  };

  const head = el("div", "users-head alerts-head");
  const heading = el("h2", "pane-heading", "Alerts");
  heading.id = "alerts-heading";
  const tablist = el("div", "alerts-tabs");
  tablist.setAttribute("role", "tablist");
  tablist.setAttribute("aria-labelledby", heading.id);
  const close = el("button", "quiet", "Close");
  close.type = "button";
  close.id = "alerts-close";
  head.append(heading, tablist, close);
  panel.append(head);

  const parts = {};
  for (const [tab, label] of TABS) {
    const button = el("button", "alerts-tab", label);
    button.type = "button";
    button.id = `alerts-tab-${tab}`;
    button.dataset.tab = tab;
    button.setAttribute("role", "tab");
    const body = el("div", "alerts-part");
    body.id = `alerts-part-${tab}`;
    body.setAttribute("role", "tabpanel");
    body.setAttribute("aria-labelledby", button.id);
    button.setAttribute("aria-controls", body.id);
    tablist.append(button);
    panel.append(body);
    parts[tab] = { button, body };
  }
  const views = {
    alerts: createAlertsView(parts.alerts.body, shared),
    rules: createAlertRules(parts.rules.body, shared),
    silences: createSilences(parts.silences.body, shared),
    channels: createChannels(parts.channels.body, shared),
  };

  opener.addEventListener("click", () => actions.set({ alertsOpen: !currentState?.alertsOpen }));
  close.addEventListener("click", () => {
    actions.set({ alertsOpen: false });
    opener.focus();
  });
  tablist.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-tab]");
    if (button) actions.set({ alertsTab: button.dataset.tab });
  });
  // The tabs as one stop for the keyboard: arrows move between them.
  tablist.addEventListener("keydown", (event) => {
    const order = TABS.map(([tab]) => tab);
    const at = order.indexOf(currentState?.alertsTab ?? "alerts");
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (step == null) return;
    event.preventDefault();
    const next = order[(at + step + order.length) % order.length];
    actions.set({ alertsTab: next });
    parts[next].button.focus();
  });

  let currentState = null;
  let shownTab = null;
  return {
    render(state, now) {
      currentState = state;
      feed.render(state);
      const reachable = state.connection === "live" || state.session != null;
      opener.hidden = !reachable;
      renderCount(state, now);
      const open = state.alertsOpen && reachable;
      panel.hidden = !open;
      opener.setAttribute("aria-expanded", String(open));
      if (!open) {
        shownTab = null;
        return;
      }
      // The rules list, or the channels with their deliveries, opened again, are read again: another
      // admin may have changed them, and deliveries move.
      if (shownTab !== state.alertsTab && state.alertsTab === "rules" && state.alertRules != null) views.rules.reload();
      if (shownTab !== state.alertsTab && state.alertsTab === "channels" && state.alertChannels != null) views.channels.reload();
      views.rules.need(state);
      views.channels.need(state);
      shownTab = state.alertsTab;
      for (const [tab] of TABS) {
        const chosen = tab === state.alertsTab;
        parts[tab].button.setAttribute("aria-selected", String(chosen));
        parts[tab].button.tabIndex = chosen ? 0 : -1;
        parts[tab].body.hidden = !chosen;
        if (chosen) views[tab].render(state, now);
      }
    },
  };

  /** The header's count: firing alerts, coloured by the worst; quiet when every one is silenced. */
  function renderCount(state, now) {
    let firing = 0;
    let silenced = 0;
    for (const alerts of firingByHost(state.alerts).values()) {
      firing += alerts.length;
      silenced += alerts.filter((a) => silencedUntil(a, state.silences, now) != null).length;
    }
    const text = firing ? String(firing) : "";
    if (count.textContent !== text) count.textContent = text;
    count.hidden = firing === 0;
    const worst = state.alerts.find((a) => a.state === "firing" && a.severity === "critical")
      ? "critical"
      : state.alerts.some((a) => a.state === "firing" && a.severity === "warning") ? "warning" : "info";
    count.dataset.severity = worst;
    count.classList.toggle("quiet", firing > 0 && silenced === firing);
    const hushed = silenced ? `, ${silenced} of them silenced` : "";
    const label = firing ? `Alerts: ${firing} firing${hushed}` : "Alerts: none firing";
    if (opener.getAttribute("aria-label") !== label) opener.setAttribute("aria-label", label);
    opener.title = state.alertsError ? `Alerts cannot be read: ${state.alertsError}` : label;
  }
}
