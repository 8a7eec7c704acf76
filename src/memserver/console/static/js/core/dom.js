// DOM and formatting helpers. Every text from the API is inserted as text (createTextNode), never parsed as HTML.
export const $ = (id) => document.getElementById(id);
export const ENTITY_KEYS = ["user_id", "agent_id", "app_id", "run_id"];
const SVG_NS = "http://www.w3.org/2000/svg";

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.setAttribute("class", v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** h("a", {href, onclick}, "text", child...): an element; null/false attributes and children are skipped. */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** The same for SVG: geometry through attributes (the CSP allows them), colours through classes. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function when(value) {
  if (!value) return "—";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString();
}

export function day(value) {
  const d = new Date(`${value}T00:00:00`);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" });
}

export function num(value) {
  return value == null ? "—" : Number(value).toLocaleString();
}

export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

export function badge(text, kind) {
  return h("span", { class: `badge ${kind || text}` }, text);
}

export function entityOf(m) {
  return ENTITY_KEYS.filter((k) => m[k]).map((k) => `${k}=${m[k]}`).join(", ");
}

export function short(text, n = 40) {
  const t = String(text ?? "");
  return t.length > n ? `${t.slice(0, n)}…` : t;
}

export function setStatus(text) {
  $("status").textContent = text || "";
}

export function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

export function table(id, caption, columns, rows, attrs = {}) {
  return h("table", { id, ...attrs },
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows),
  );
}

/** The view is on screen: after its DOM is built, two frames (layout and paint) pass, then
 * `performance.measure("view:<name>", "route:start")` records how long the whole visit took. */
export function ready(name) {
  return new Promise((resolve) => {
    requestAnimationFrame(() => requestAnimationFrame(() => {
      try {
        if (performance.getEntriesByName("route:start", "mark").length) {
          performance.measure(`view:${name}`, "route:start");
        }
      } catch {
        // a missing mark (the view was redrawn without a navigation) is not an error
      }
      document.body.dataset.ready = name;
      resolve();
    }));
  });
}
