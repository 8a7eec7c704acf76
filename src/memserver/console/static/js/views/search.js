// Search, with each hit's score breakdown drawn as bars.
import { $, entityOf, h, when } from "../core/dom.js";
import { api } from "../core/api.js";
import { guarded } from "../core/ui.js";
import { fillForm, submitTo } from "./forms.js";

export async function load(params) {
  const form = $("search-form");
  submitTo(form, "/search", { paged: false });
  fillForm(form, params);
  const out = $("search-out");
  const p = Object.fromEntries(params);
  if (!p.query) {
    out.replaceChildren(h("p", { class: "empty" }, "Type a query and an entity (use * to search the whole project)."));
    return;
  }
  const filters = p.eid ? { [p.etype || "user_id"]: p.eid } : undefined;
  const body = { query: p.query, filters, top_k: Number(p.top_k || 10), retrieval: p.retrieval || "hybrid" };
  if (p.threshold !== undefined && p.threshold !== "") body.threshold = Number(p.threshold);
  await guarded("Searching", async () => {
    const data = await api("POST", "/v3/memories/search/", body);
    if (!data.results.length) {
      out.replaceChildren(h("p", { class: "empty" }, "No memory scores above the threshold."));
      return;
    }
    out.replaceChildren(
      h("p", { class: "muted" }, `${data.results.length} results, best first. Score = tanh(sum of the evidence below).`),
      h("ol", { class: "hits", id: "search-hits" }, data.results.map((hit) => h("li", { class: "hit", "data-id": hit.id },
        h("div", { class: "hit-head" },
          h("span", { class: "memtext" }, hit.memory),
          h("span", { class: "score", title: "score (0..1)" }, `score ${hit.score.toFixed(3)}`),
        ),
        h("div", { class: "muted" }, entityOf(hit), " · ", when(hit.created_at), " · ",
          h("a", { href: `#/memory/${encodeURIComponent(hit.id)}` }, "History")),
        breakdown(hit.score_breakdown || {}),
      ))),
    );
  });
}

function breakdown(parts) {
  const dl = h("dl", { class: "breakdown", "aria-label": "score breakdown" });
  for (const [name, value] of Object.entries(parts)) {
    const fill = h("span", { "data-contrast": "graphic" });
    fill.style.width = `${(Math.max(0, Math.min(1, Number(value))) * 100).toFixed(1)}%`; // CSSOM: allowed by the CSP
    dl.append(h("div", {},
      h("dt", {}, name),
      h("dd", {}, h("span", { class: "bar", "aria-hidden": "true" }, fill), Number(value).toFixed(3)),
    ));
  }
  return dl;
}
