// On a phone the details pane is a sheet over the bottom of the screen. When
// a process is selected (or the sheet opens), its row is scrolled to stay
// above the sheet, so the details never hide what they describe.

let lastKey = null;

/**
 * @param {HTMLElement} rows   the tree's <tbody>
 * @param {HTMLElement} sheet  the details pane
 * @param {string|null} key    the selected process while the details are open
 */
export function keepSelectedAboveSheet(rows, sheet, key) {
  if (key === lastKey) return;
  lastKey = key;
  if (!key) return;
  // After layout: the sheet has only just been shown.
  requestAnimationFrame(() => requestAnimationFrame(() => {
    if (getComputedStyle(sheet).position !== "fixed" || sheet.hidden) return;
    const row = [...rows.querySelectorAll("tr[data-key]")].find((tr) => tr.dataset.key === key);
    if (!row) return;
    const top = row.getBoundingClientRect();
    const cover = sheet.getBoundingClientRect().top;
    const header = rows.closest("table")?.tHead?.getBoundingClientRect().height ?? 0;
    // Halfway between the top of the screen and the sheet reads best.
    if (top.bottom > cover - 4 || top.top < header) {
      const target = Math.max(header + 8, (cover - top.height) / 2);
      const delta = top.top - target;
      const scroller = document.getElementById("tree-scroll");
      if (scroller && scroller.scrollHeight > scroller.clientHeight + 1) scroller.scrollTop += delta;
      else window.scrollBy(0, delta);
    }
  }));
}
