// On a phone the details pane is a sheet over the bottom of the screen. When
// a process is selected (or the sheet opens), its row is scrolled to stay
// above the sheet, so the details never hide what they describe.

let lastKey = null;

/**
 * @param {HTMLElement} rows   the tree's rows (#process-rows)
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
    const scroller = document.getElementById("tree-scroll");
    const cover = sheet.getBoundingClientRect().top;
    if (!scroller || distanceToClear(rows, key, cover) === 0) return;
    // The page first, so that the tree's box starts at the top of the
    // screen (meters and tools above it scroll away); then the tree's own
    // box, which scrolls its rows (on a phone it has room below its last
    // row for this: style.css).
    window.scrollBy(0, scroller.getBoundingClientRect().top);
    requestAnimationFrame(() => {
      scroller.scrollTop += distanceToClear(rows, key, cover);
    });
  }));
}

/** How far the row of `key` must move up (negative: down) to sit between the header and the sheet. */
function distanceToClear(rows, key, cover) {
  const row = rows.querySelector(`.row[data-key="${CSS.escape(key)}"]`);
  if (!row) return 0;
  const box = row.getBoundingClientRect();
  const head = Math.max(0, rows.parentElement?.querySelector(".thead")?.getBoundingClientRect().bottom ?? 0);
  if (box.bottom <= cover - 4 && box.top >= head) return 0;
  // Halfway between the header and the sheet reads best.
  const target = Math.max(head + 8, (head + cover - box.height) / 2);
  return box.top - target;
}
