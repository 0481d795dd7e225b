// The view's options: flat list or tree, the columns, the CPU scale, kernel
// threads hidden; the order of siblings (a column's header); and the rows
// that keep their order while the pointer moves over them. Each is kept in
// the state (the options in this browser too, by setView).

import { COLUMNS } from "./fields.js";
import { bookkeeping, setView, state, update } from "./state.js";

/** How long rows keep their order after the pointer last moved over them. */
const FREEZE_MS = 4000;
const $ = (id) => document.getElementById(id);

/** The view's controls as the state says: flat list, columns, CPU scale, kernel threads. */
export function renderViewOptions(summary) {
  const view = state.view;
  $("view-flat").setAttribute("aria-pressed", String(view.flat));
  $("expand-all").disabled = view.flat;
  $("collapse-all").disabled = view.flat;
  $("cpu-scale").value = view.cpuScale;
  $("hide-kernel").checked = view.hideKernel;
  const chooser = $("column-chooser");
  const os = summary?.host.os_name ?? "";
  for (const column of COLUMNS) {
    let box = chooser.querySelector(`input[value="${column.id}"]`);
    if (!box) {
      const label = document.createElement("label");
      box = document.createElement("input");
      box.type = "checkbox";
      box.value = column.id;
      label.append(box, document.createTextNode(" "), document.createElement("span"));
      chooser.append(label);
    }
    box.checked = view.columns.includes(column.id);
    const text = column.header({ cpuScale: view.cpuScale, os });
    const span = box.parentElement.querySelector("span");
    if (span.textContent !== text) span.textContent = text;
  }
}

export function sortBy(column, numeric) {
  const same = state.sort.column === column;
  // Numbers read best biggest first, text A to Z first.
  update({ sort: { column, descending: same ? !state.sort.descending : numeric && column !== "pid" } });
}

/** Flat list on or off; the flat list starts sorted by CPU, as htop's. */
export function toggleFlat() {
  const flat = !state.view.flat;
  if (flat && state.sort.column === "pid" && !state.sort.descending) {
    update({ sort: { column: "cpu", descending: true } });
  }
  setView({ flat });
}

export function wireViewOptions() {
  $("view-flat").addEventListener("click", () => toggleFlat());
  $("cpu-scale").addEventListener("change", (event) => setView({ cpuScale: event.target.value }));
  $("hide-kernel").addEventListener("change", (event) => setView({ hideKernel: event.target.checked }));
  $("column-chooser").addEventListener("change", (event) => {
    const box = event.target.closest("input[type=checkbox]");
    if (!box) return;
    const chosen = new Set(state.view.columns);
    if (box.checked) chosen.add(box.value);
    else chosen.delete(box.value);
    // Kept in the table's order, whatever order they were ticked in.
    setView({ columns: COLUMNS.map((c) => c.id).filter((id) => chosen.has(id)) });
  });
  // Close the options when clicking elsewhere.
  document.addEventListener("click", (event) => {
    const options = $("view-options");
    if (options.open && !options.contains(event.target)) options.open = false;
  });
  const scroller = $("tree-scroll");
  scroller.addEventListener("pointermove", (event) => {
    if (event.pointerType === "mouse") bookkeeping.frozenUntil = Date.now() + FREEZE_MS;
  }, { passive: true });
  scroller.addEventListener("pointerleave", () => {
    if (bookkeeping.frozenUntil > Date.now()) {
      bookkeeping.frozenUntil = 0;
      update({});
    }
  });
}
