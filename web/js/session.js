// Signing in and out: with the form's name and password or a one-time link,
// setting a password after such a link, and who is signed in as the page
// opens. The forms themselves are signin.js and account.js.

import * as api from "./api.js";
import { ApiError } from "./api.js";
import { state, update } from "./state.js";

/**
 * @param {object} deps
 *   liveFeed   the chosen host's live feed (stopped on signing out)
 *   treeView   the table (emptied on signing out)
 *   pollNow()  asks the server at once (after signing in)
 * @returns {{ signIn(attempt), signOut(), setOwnPassword(password, again), loadSession() }}
 */
export function createSession({ liveFeed, treeView, pollNow }) {
  /** Signs in with `attempt` (a password or a link), then polls at once. */
  async function signIn(attempt) {
    try {
      const session = await attempt();
      update({
        session,
        signInError: "",
        connection: "connecting",
        passwordPrompt: !session.has_password,
        passwordError: "",
      });
      pollNow();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      update({ connection: "unauthorized", signInError: error.message });
    }
  }

  async function signOut() {
    try {
      await api.signOut();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      // Already ended on the server: signed out all the same.
    }
    // What was shown belongs to the session: it goes with it.
    liveFeed.stop();
    treeView.reset();
    update({
      session: null,
      connection: "unauthorized",
      signInError: "",
      passwordPrompt: false,
      usersOpen: false,
      users: [],
      keysOpen: false,
      keys: [],
      shownSecret: null,
      hostsError: "",
      hosts: [],
      hostsLoaded: false,
      alerts: [],
      silences: null,
      alertRules: null,
      alertChannels: null,
      alertsOpen: false,
      actionsOpen: false,
      actionsLog: null,
      actionsError: "",
      listing: null,
      tree: null,
      selectedKey: null,
      selectedProcess: null,
    });
  }

  /** Sets the signed-in user's password (after a one-time link: no current one needed). */
  async function setOwnPassword(password, again) {
    if (password !== again) {
      update({ passwordError: "The two passwords differ." });
      return;
    }
    try {
      await api.setPassword(state.session.name, password);
      update({ passwordPrompt: false, passwordError: "", session: { ...state.session, has_password: true } });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.kind === "unauthorized") update({ connection: "unauthorized" });
      else update({ passwordError: error.message });
    }
  }

  /** Who is signed in (for the header); nobody when the server answers 401. */
  async function loadSession() {
    try {
      update({ session: await api.fetchSession() });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      // No session: the first read's 401 shows the form (or, with the
      // server's no_login setting, reads work without one).
    }
  }

  return { signIn, signOut, setOwnPassword, loadSession };
}

/**
 * A one-time sign-in link puts its token in the URL's hash (`#signin=…`),
 * which browsers never send to servers. Taken out of the URL at once, so it
 * stays in neither the history nor a bookmark.
 */
export function takeLinkToken() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const token = params.get("signin");
  if (!token) return null;
  params.delete("signin");
  const rest = params.toString();
  history.replaceState(null, "", rest ? `#${rest}` : location.pathname + location.search);
  return token;
}
