// Signing in, and the password prompt after a one-time link: two small
// forms above the tree. They only show the state; session.js does the work.

const $ = (id) => document.getElementById(id);

/**
 * Wires the forms to `actions` ({ signIn(name, password), setPassword(password), later() }).
 * @returns {{ render(state): void }}
 */
export function createSignIn(actions) {
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("signin-name").value.trim();
    const password = $("signin-password").value;
    if (!name || !password) return;
    $("signin-password").value = "";
    actions.signIn(name, password);
  });
  $("set-password-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const password = $("new-password").value;
    const again = $("new-password-again").value;
    $("new-password").value = "";
    $("new-password-again").value = "";
    actions.setPassword(password, again);
  });
  $("set-password-later").addEventListener("click", () => actions.later());

  return {
    render(state) {
      const form = $("auth");
      const needed = state.connection === "unauthorized";
      if (form.hidden === needed) {
        form.hidden = !needed;
        if (needed) ($("signin-name").value ? $("signin-password") : $("signin-name")).focus();
      }
      // Signed in before: the session ended (expired, or signed out elsewhere).
      $("signin-intro").textContent = state.session
        ? "Your session has ended. Sign in again to go on; the page stays as it was."
        : "Sign in to see this server's processes.";
      $("auth-error").textContent = state.signInError;

      const prompt = $("set-password");
      const asking = state.passwordPrompt && state.session != null && !needed;
      if (prompt.hidden === asking) {
        prompt.hidden = !asking;
        if (asking) $("new-password").focus();
      }
      $("set-password-name").textContent = state.session ? state.session.name : "";
      $("set-password-error").textContent = state.passwordError;
    },
  };
}
