// Who is signed in, in the header: name and role, the buttons of the users
// and agent keys panels for admins, and signing out.

const $ = (id) => document.getElementById(id);

/**
 * Wires the header's buttons to `actions` ({ signOut(), openUsers(), openKeys() }).
 * @returns {{ render(state): void }}
 */
export function createAccount(actions) {
  $("sign-out").addEventListener("click", () => actions.signOut());
  $("users-open").addEventListener("click", () => actions.openUsers());
  $("keys-open").addEventListener("click", () => actions.openKeys());
  return {
    render(state) {
      const session = state.session;
      $("account").hidden = session == null;
      if (!session) return;
      $("account-name").textContent = `${session.name} (${session.role})`;
      $("account-name").title = `Session ends ${new Date(session.expires_at).toLocaleString()} unless used`;
      $("users-open").hidden = session.role !== "admin";
      $("keys-open").hidden = session.role !== "admin";
    },
  };
}
