// The node-link picture in plain SVG: geometry through attributes and colours through classes (the CSP allows
// both). Relations that hold are solid `edge current`, the others dashed `edge retired` (by dash and colour,
// never by opacity or colour alone). Each edge has a wide transparent hit line; every node a <title>.
import { h, s } from "../core/dom.js";

const LABELLED = 40; // the centre, the busiest neighbours and the selection carry a name

/** `edges`: [{key, source, target, label, relations:[…]}]; `positions`: Map(name -> {x, y}).
 * Returns {el, setHeld(isHeld), select(key)}; `onSelect(edge)` on a click of an edge. */
export function drawGraph({ id, title, summary, describedBy, nodes, edges, positions, center, onSelect }) {
  const xs = [...positions.values()].map((p) => p.x);
  const ys = [...positions.values()].map((p) => p.y);
  const pad = 90;
  const box = [Math.min(...xs, 0) - pad, Math.min(...ys, 0) - pad, Math.max(...xs, 0) - Math.min(...xs, 0) + 2 * pad,
    Math.max(...ys, 0) - Math.min(...ys, 0) + 2 * pad];
  const full = box.map((v) => Math.round(v));
  const svg = s("svg", { id, class: "graph", role: "img", viewBox: full.join(" "), "aria-labelledby": `${id}-title`,
    "aria-describedby": [`${id}-desc`, describedBy].filter(Boolean).join(" "), preserveAspectRatio: "xMidYMid meet" },
  s("title", { id: `${id}-title` }, title),
  s("desc", { id: `${id}-desc` }, summary));
  const degree = new Map();
  for (const e of edges) {
    degree.set(e.source, (degree.get(e.source) || 0) + 1);
    degree.set(e.target, (degree.get(e.target) || 0) + 1);
  }
  const named = new Set([center, ...[...nodes].sort((a, b) => (degree.get(b) || 0) - (degree.get(a) || 0)).slice(0, LABELLED)]);
  const edgeLayer = s("g", { class: "edges" });
  const nodeLayer = s("g", { class: "nodes" });
  const drawn = new Map();
  const few = edges.length <= 60;
  for (const e of edges) {
    const a = positions.get(e.source);
    const b = positions.get(e.target);
    const line = s("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: "edge current", "data-contrast": "graphic",
      "data-edge": e.key });
    const hit = s("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: "edge-hit", "data-edge": e.key },
      s("title", {}, `${e.source} ${e.label} ${e.target}`));
    hit.addEventListener("click", () => onSelect(e));
    const label = few ? s("text", { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 4, class: "edge-label", "text-anchor": "middle" },
      e.relations.length > 1 ? `${e.label} (${e.relations.length})` : e.label) : null;
    edgeLayer.append(s("g", { class: "edge-group", "data-edge": e.key }, line, label, hit));
    drawn.set(e.key, { line, e });
  }
  for (const n of nodes) {
    const p = positions.get(n);
    nodeLayer.append(s("g", { class: n === center ? "node center" : "node", "data-node": n },
      s("circle", { cx: p.x, cy: p.y, r: n === center ? 11 : 7, class: "node-dot", "data-contrast": "graphic" }, s("title", {}, n)),
      named.has(n) ? s("text", { x: p.x + 12, y: p.y + 4, class: "node-label" }, n) : null));
  }
  svg.append(edgeLayer, nodeLayer);

  let zoom = 1;
  const apply = () => {
    const [x, y, w, hgt] = full;
    const cw = w / zoom;
    const ch = hgt / zoom;
    svg.setAttribute("viewBox", [x + (w - cw) / 2, y + (hgt - ch) / 2, cw, ch].map((v) => Math.round(v)).join(" "));
  };
  const zoomBy = (f) => () => {
    zoom = f ? Math.min(8, Math.max(1, zoom * f)) : 1;
    apply();
  };
  const controls = h("div", { class: "graph-zoom", role: "group", "aria-label": "Zoom" },
    h("button", { type: "button", class: "secondary", onclick: zoomBy(1.5), "aria-label": "Zoom in" }, "+"),
    h("button", { type: "button", class: "secondary", onclick: zoomBy(1 / 1.5), "aria-label": "Zoom out" }, "−"),
    h("button", { type: "button", class: "secondary", onclick: zoomBy(0) }, "Reset zoom"));
  return {
    el: h("div", { class: "graph-box" }, controls, svg),
    setHeld(isHeld) {
      for (const { line, e } of drawn.values()) {
        const held = e.relations.some(isHeld);
        line.setAttribute("class", held ? "edge current" : "edge retired");
        line.dataset.state = held ? "current" : "retired";
      }
    },
    select(key) {
      for (const [k, { line }] of drawn) line.classList.toggle("selected", k === key);
    },
  };
}
