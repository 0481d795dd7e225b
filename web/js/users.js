// The users panel, for admins: every user with their role, a button to
// remove one and one to set a new password, and a form to add one. Names
// are set as text, never as HTML.

const $ = (id) => document.getElementById(id);

/**
 * Wires the panel to `actions` ({ add(name, role, password), remove(name), reset(name), close() }).
 * @returns {{ render(state): void }}
 */
export function createUsersPanel(actions) {
  $("users-close").addEventListener("click", () => actions.close());
  $("user-add-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("user-add-name").value.trim();
    const password = $("user-add-password").value;
    if (!name || !password) return;
    actions.add(name, $("user-add-role").value, password).then((added) => {
      if (!added) return;
      $("user-add-name").value = "";
      $("user-add-password").value = "";
    });
  });
  $("users-rows").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const name = button.closest("tr").dataset.name;
    if (button.dataset.action === "remove") actions.remove(name);
    else actions.reset(name);
  });

  let shown = null;
  return {
    render(state) {
      const open = state.usersOpen && state.session?.role === "admin";
      $("users-panel").hidden = !open;
      $("users-error").textContent = open ? state.usersError : "";
      if (!open || shown === state.users) return;
      shown = state.users;
      const rows = state.users.map((user) => {
        const tr = document.createElement("tr");
        tr.dataset.name = user.name;
        for (const text of [user.name, user.role, user.has_password ? "set" : "not set yet"]) {
          const td = document.createElement("td");
          td.textContent = text;
          tr.append(td);
        }
        const td = document.createElement("td");
        for (const [action, label] of [["reset", "New password"], ["remove", "Remove"]]) {
          const button = document.createElement("button");
          button.type = "button";
          button.dataset.action = action;
          button.textContent = label;
          td.append(button);
        }
        tr.append(td);
        return tr;
      });
      $("users-rows").replaceChildren(...rows);
    },
  };
}
