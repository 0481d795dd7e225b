// Small helpers that build the page's forms and tables, shared by the panels
// so each labels its controls the same way.

/** An element with a class and text, either optional. */
export function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text != null) e.textContent = text;
  return e;
}

/** A <table> of class `className` with a head row of `headings` and an empty body (`table.tBodies[0]`). */
export function table(className, headings) {
  const t = el("table", className);
  const head = el("tr");
  for (const title of headings) head.append(el("th", null, title));
  t.append(el("thead"), el("tbody"));
  t.tHead.append(head);
  return t;
}

/** A button that submits nothing, with an id when given. */
export function button(text, id, className = "") {
  const b = el("button", className || null, text);
  b.type = "button";
  if (id) b.id = id;
  return b;
}

/** A labelled control: <label for> and the control, in one cell of a form's grid, with a hint below. */
export function field(id, label, control, hint = "") {
  control.id = id;
  const box = el("div", "rule-field");
  const text = el("label", null, label);
  text.htmlFor = id;
  box.append(text, control);
  if (hint) {
    const small = el("small", "rule-hint", hint);
    small.id = `${id}-hint`;
    control.setAttribute("aria-describedby", small.id);
    box.append(small);
  }
  return box;
}

/** An <input> the browser does not fill in from history. */
export function input(type, attributes = {}) {
  const e = el("input");
  e.type = type;
  e.autocomplete = "off";
  Object.assign(e, attributes);
  return e;
}

/** A <select> of [value, label] options. */
export function select(options) {
  const e = el("select");
  for (const [value, label] of options) {
    const o = el("option", null, label);
    o.value = value;
    e.append(o);
  }
  return e;
}
