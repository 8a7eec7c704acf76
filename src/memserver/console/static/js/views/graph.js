// An entity's relations as a node-link picture, the relations table (the keyboard and screen-reader path),
// a time control replaying `?at=`, and a panel with a relation's memory and the messages it came from.
import { $, ENTITY_KEYS, badge, day, h, table, when } from "../core/dom.js";
import { api, q } from "../core/api.js";
import { replace } from "../core/router.js";
import { guarded, pager } from "../core/ui.js";
import { layout } from "../draw/graph-layout.js";
import { drawGraph } from "../draw/graph-svg.js";
import { fillForm, submitTo } from "./forms.js";

const PAGE = 100;
const cache = new Map(); // (scope, name, at) -> relation ids that held then
const layouts = new Map(); // (scope, name, relation ids) -> positions: computed once, reused while replaying

export async function load(params) {
  const form = $("graph-form");
  submitTo(form, "/graph", { paged: false });
  fillForm(form, params);
  const out = $("graph-out");
  out.replaceChildren();
  $("graph-title").textContent = "Graph";
  const etype = ENTITY_KEYS.includes(params.get("etype")) ? params.get("etype") : "user_id";
  const eid = (params.get("eid") || "").trim();
  if (!eid) {
    out.append(h("p", { class: "empty" }, "Choose an entity (for example user_id alice) to draw its relations."));
    return;
  }
  const scope = { [etype]: eid };
  await guarded("Loading the graph", async () => {
    const picked = await api("GET", `/v1/graph/entities${q({ ...scope, limit: 100 })}`);
    $("graph-names").replaceChildren(...picked.results.map((e) => h("option", { value: e.name })));
    const name = (params.get("name") || "").trim() || (picked.results.some((e) => e.name === eid) ? eid : picked.results[0]?.name);
    if (!name) {
      out.append(h("p", { class: "empty" }, `No graph relations for ${etype} ${eid} yet (adds with enable_graph build them).`));
      return;
    }
    const all = await api("GET", `/v1/graph/entities/${encodeURIComponent(name)}/relations/${q(scope)}`);
    await render(out, { etype, eid, scope, name, all, at: params.get("at") || "" });
  });
}

function isCurrent(r) {
  return !r.expired_at && (!r.invalid_at || new Date(r.invalid_at) > new Date());
}

/** One drawn edge per (source, target) pair: its relations in time order, labelled with their relationships. */
function edgesOf(relations) {
  const byPair = new Map();
  for (const r of relations) {
    const key = `${r.source}\u0000${r.target}`;
    if (!byPair.has(key)) byPair.set(key, { key, source: r.source, target: r.target, label: "", relations: [] });
    byPair.get(key).relations.push(r);
  }
  for (const e of byPair.values()) e.label = [...new Set(e.relations.map((r) => r.relationship))].join(", ");
  return [...byPair.values()];
}

function instantsOf(relations) {
  const set = new Set();
  for (const r of relations) for (const t of [r.valid_at, r.invalid_at]) if (t) set.add(new Date(t).toISOString());
  return [...set].sort();
}

async function render(out, ctx) {
  const { all, name, scope } = ctx;
  const rels = all.relations;
  const centre = (all.entities[0] && all.entities[0].name) || name;
  const edges = edgesOf(rels);
  const degree = new Map();
  for (const e of edges) for (const n of [e.source, e.target]) degree.set(n, (degree.get(n) || 0) + 1);
  const nodes = [...degree.keys()].sort((a, b) => (a === centre ? -1 : b === centre ? 1 : (degree.get(b) - degree.get(a)) || a.localeCompare(b)));
  const layoutKey = JSON.stringify([scope, name, rels.length, rels.length ? rels[rels.length - 1].id : ""]);
  if (!layouts.has(layoutKey)) {
    layouts.clear(); // one entity's positions at a time
    const t0 = performance.now();
    layouts.set(layoutKey, await layout(nodes.map((n) => ({ id: n, center: n === centre })), edges.map((e) => ({ source: e.source, target: e.target }))));
    performance.measure("graph:layout", { start: t0, end: performance.now() }); // bench.console_render reports it
  }
  const positions = layouts.get(layoutKey);
  const instants = instantsOf(rels);
  const state = { held: null, page: 1, selected: null, at: "" };
  const heading = h("p", { id: "graph-asof", class: "muted", "aria-live": "polite" });
  const detail = h("aside", { id: "graph-detail", class: "card graph-detail", "aria-labelledby": "graph-detail-title", hidden: true });
  const tableBox = h("div", { id: "graph-relations" });
  const pages = h("nav", { class: "pager", "aria-label": "Relations pages" });
  const held = (r) => (state.held ? state.held.has(r.id) : isCurrent(r));
  const counts = () => {
    const n = rels.filter(held).length;
    return `${centre}: ${rels.length} relations, ${n} ${state.at ? "held then" : "current"}, ${rels.length - n} ${state.at ? "not held then" : "retired"}, as of ${state.at ? when(state.at) : "now"}`;
  };
  const picture = drawGraph({ id: "graph-svg", title: `Relations of ${centre}`, summary: "", describedBy: "graph-relations-table",
    nodes, edges, positions, center: centre, onSelect: (e) => open(e.relations.find(held) || e.relations[0]) });

  const redraw = () => {
    picture.setHeld(held);
    picture.el.querySelector("desc").textContent = counts();
    heading.textContent = counts();
    $("graph-title").textContent = state.at ? `Graph of ${centre} as of ${day(state.at.slice(0, 10))}` : `Graph of ${centre}`;
    drawTable();
  };
  const drawTable = () => {
    const start = (state.page - 1) * PAGE;
    tableBox.replaceChildren(table("graph-relations-table", `Relations of ${centre} (${rels.length}); Open shows the memory and its messages`,
      ["Source", "Relationship", "Target", "Held from", "Until", "State", "Details"],
      rels.slice(start, start + PAGE).map((r) => h("tr", { "data-id": r.id, class: state.selected === r.id ? "selected" : null },
        h("td", {}, r.source), h("td", {}, r.relationship), h("td", {}, r.target),
        h("td", {}, when(r.valid_at)), h("td", {}, when(r.invalid_at)),
        h("td", {}, held(r) ? (state.at ? "held then" : "current") : (state.at ? "not held then" : "retired")),
        h("td", {}, h("button", { type: "button", class: "link", onclick: () => open(r),
          "aria-label": `Open ${r.source} ${r.relationship} ${r.target}` }, "Open"))))));
    pager(pages, { count: rels.length, page: state.page, pageSize: PAGE, onPage: (p) => { state.page = p; drawTable(); } });
  };

  const open = async (r) => {
    state.selected = r.id;
    const key = [...edges].find((e) => e.relations.includes(r))?.key;
    picture.select(key);
    drawTable();
    await openDetail(detail, r);
  };

  // the time control: every instant a relation began or ended, then "now"
  const slider = h("input", { id: "graph-time", type: "range", min: "0", max: String(instants.length), step: "1", value: String(instants.length) });
  const sliderText = h("output", { id: "graph-time-value", for: "graph-time" }, "now");
  let timer = null;
  let inflight = null;
  const setAt = async (at) => {
    state.at = at;
    replace("/graph", { etype: ctx.etype, eid: ctx.eid, name, at });
    if (!at) {
      state.held = null;
      redraw();
      return;
    }
    const cacheKey = JSON.stringify([scope, name, at]);
    if (!cache.has(cacheKey)) {
      if (inflight) inflight.abort();
      inflight = new AbortController();
      try {
        const then = await api("GET", `/v1/graph/entities/${encodeURIComponent(name)}/relations/${q({ ...scope, at })}`, undefined, { signal: inflight.signal });
        cache.set(cacheKey, new Set(then.relations.map((x) => x.id)));
      } catch (err) {
        if (err.name === "AbortError") return;
        throw err;
      }
    }
    if (state.at !== at) return;
    state.held = cache.get(cacheKey);
    redraw();
  };
  const onSlide = () => {
    const i = Number(slider.value);
    const at = i >= instants.length ? "" : instants[i];
    const text = at ? when(at) : "now";
    slider.setAttribute("aria-valuetext", text);
    sliderText.textContent = text;
    date.value = ""; // the slider's moment replaces a typed date
    clearTimeout(timer);
    timer = setTimeout(() => guarded("Replaying the graph", () => setAt(at)), 200);
  };
  slider.addEventListener("input", onSlide);
  slider.setAttribute("aria-valuetext", "now");
  // an exact moment ("where did alice live on 1 June 2024?"), and Play: one moment every 800 ms up to now
  const date = h("input", { id: "graph-date", type: "date", onchange: (e) => {
    const at = e.target.value;
    sliderText.textContent = at ? day(at) : "now";
    guarded("Replaying the graph", () => setAt(at));
  } });
  let playing = null;
  const play = h("button", { type: "button", class: "secondary", "aria-pressed": "false", onclick: () => {
    if (playing) {
      clearInterval(playing);
      playing = null;
      play.setAttribute("aria-pressed", "false");
      play.textContent = "Play";
      return;
    }
    if (Number(slider.value) >= instants.length) slider.value = "0";
    else slider.value = String(Number(slider.value) + 1);
    onSlide();
    play.setAttribute("aria-pressed", "true");
    play.textContent = "Pause";
    playing = setInterval(() => {
      if (!play.isConnected || Number(slider.value) >= instants.length) {
        clearInterval(playing);
        playing = null;
        play.setAttribute("aria-pressed", "false");
        play.textContent = "Play";
        return;
      }
      slider.value = String(Number(slider.value) + 1);
      onSlide();
    }, 800);
  } }, "Play");
  const timeBox = h("div", { class: "graph-time" },
    h("label", { for: "graph-time" }, "Time: the relations that held at"), slider, sliderText, play,
    h("span", { class: "graph-date" }, h("label", { for: "graph-date" }, "or on"), date),
    h("p", { class: "help" }, `${instants.length} moments when a relation began or ended; the right end is now.`));

  out.replaceChildren(heading, timeBox, h("div", { class: "graph-layout" }, picture.el, detail),
    h("div", { class: "legend", "aria-hidden": "true" },
      h("span", { class: "key current" }, "solid: holds"), " ", h("span", { class: "key retired" }, "dashed: retired or not yet")),
    tableBox, pages);
  if (ctx.at) {
    const i = instants.findIndex((t) => t >= new Date(ctx.at).toISOString());
    slider.value = String(i < 0 ? instants.length : i);
    slider.setAttribute("aria-valuetext", when(ctx.at));
    sliderText.textContent = when(ctx.at);
    await setAt(ctx.at);
  } else redraw();
}

async function openDetail(panel, r) {
  panel.hidden = false;
  const title = h("h2", { id: "graph-detail-title", tabindex: "-1" }, `${r.source} ${r.relationship} ${r.target}`);
  panel.replaceChildren(title, h("dl", { class: "kv" },
    h("dt", {}, "fact"), h("dd", {}, r.fact || "—"),
    h("dt", {}, "held"), h("dd", {}, `${when(r.valid_at)} → ${r.invalid_at ? when(r.invalid_at) : "now"}`),
    h("dt", {}, "recorded"), h("dd", {}, when(r.created_at)),
    h("dt", {}, "retired"), h("dd", {}, r.expired_at ? when(r.expired_at) : "—"),
    h("dt", {}, "state"), h("dd", {}, isCurrent(r) ? badge("current", "ok") : badge("retired", "retired")),
  ), h("div", { id: "graph-detail-memory" }, "Loading the memory…"));
  title.focus();
  const [memory, event] = await Promise.all([
    r.memory_id ? api("GET", `/v1/memories/${encodeURIComponent(r.memory_id)}/`).catch(() => null) : null,
    r.event_id ? api("GET", `/v1/event/${encodeURIComponent(r.event_id)}/`).catch(() => null) : null,
  ]);
  const sources = new Set();
  for (const src of (memory && memory.provenance && memory.provenance.sources) || []) {
    if (src.event_id === r.event_id) for (const i of src.message_indices || []) sources.add(i);
  }
  for (const d of (event && event.metadata && event.metadata.decisions) || []) {
    if (d.memory_id === r.memory_id && !sources.size) for (const i of d.message_indices || []) sources.add(i);
  }
  const messages = (event && event.payload && Array.isArray(event.payload.messages)) ? event.payload.messages : [];
  panel.querySelector("#graph-detail-memory").replaceChildren(
    h("h3", {}, "Memory"),
    memory ? h("p", {}, h("a", { href: `#/memory/${encodeURIComponent(memory.id)}`, id: "graph-detail-memory-link" }, memory.memory))
      : h("p", { class: "muted" }, r.memory_id ? "The memory has been deleted." : "No memory recorded."),
    h("h3", {}, "Messages it came from"),
    messages.length ? h("ol", { id: "graph-detail-messages", class: "messages" }, messages.map((m, i) => h("li", { class: sources.has(i) ? "marked" : null, "data-index": i },
      h("span", { class: "role" }, m.role || "?"), " ", typeof m.content === "string" ? m.content : JSON.stringify(m.content),
      sources.has(i) ? [" ", h("span", { class: "badge source" }, "source")] : null)))
      : h("p", { class: "muted" }, "No messages recorded."),
    r.event_id ? h("p", {}, h("a", { href: `#/event/${encodeURIComponent(r.event_id)}?mark=${[...sources].join(",")}` }, "The event")) : null,
  );
}
