// The controls over the tree: the search box (Escape clears it), expand
// and collapse all, and the keys "/" (to the search box) and "f" (flat
// list or tree). The selected process stays in view as rows come and go.

import { bookkeeping, collapsedKeys, state, update } from "./state.js";
import { parentKeys } from "./tree.js";
import { toggleFlat } from "./view-options.js";

const $ = (id) => document.getElementById(id);

/** The search box and the expand and collapse buttons. */
export function wireTreeControls() {
  $("search").addEventListener("input", (event) => {
    // Keep the selected process in view as the rows around it come and go.
    bookkeeping.revealKey = state.selectedKey;
    update({ query: event.target.value });
  });
  $("search").addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.target.value = "";
      bookkeeping.revealKey = state.selectedKey;
      update({ query: "" });
    }
  });
  $("expand-all").addEventListener("click", () => {
    // The selected process stays in view as its surroundings open.
    bookkeeping.revealKey = state.selectedKey;
    collapsedKeys().clear();
    bookkeeping.collapsedVersion += 1;
    update({});
  });
  $("collapse-all").addEventListener("click", () => {
    if (!state.tree) return;
    const collapsed = collapsedKeys();
    for (const key of parentKeys(state.tree)) collapsed.add(key);
    bookkeeping.collapsedVersion += 1;
    update({});
  });
}

/** The page's keys, wherever the focus is but in a field. */
export function wireShortcuts() {
  document.addEventListener("keydown", (event) => {
    const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement?.tagName);
    if (typing || event.altKey || event.ctrlKey || event.metaKey) return;
    // "/" jumps to the search box, as in many consoles and web apps.
    if (event.key === "/") {
      event.preventDefault();
      $("search").focus();
    } else if (event.key === "f") {
      // "f": flat list or tree.
      event.preventDefault();
      toggleFlat();
    }
  });
}
