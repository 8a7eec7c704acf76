// Events feed: every job with its status, what it produced and why it failed; each opens its own page.
import { $, badge, h, json, table, when } from "../core/dom.js";
import { api } from "../core/api.js";
import { go } from "../core/router.js";
import { guarded, pager } from "../core/ui.js";
import { fillForm, submitTo } from "./forms.js";

export async function load(params) {
  const form = $("events-form");
  submitTo(form, "/events");
  fillForm(form, params);
  const page = Number(params.get("page") || 1);
  const pageSize = Number(params.get("page_size") || form.elements.page_size.value);
  const status = params.get("status") || "";
  await guarded("Loading events", async () => {
    const data = await api("GET", `/v1/events/?page=${page}&page_size=${pageSize}`);
    const rows = data.results.filter((e) => !status || e.status === status);
    const out = $("events-out");
    if (!rows.length) {
      out.replaceChildren(h("p", { class: "empty" }, status ? `No ${status} events on this page.` : "No events yet."));
    } else {
      out.replaceChildren(table("events-table", `${data.count.toLocaleString()} events, newest first`,
        ["Status", "Type", "Created", "Latency", "Outcome", "Details"],
        rows.map((e) => h("tr", { "data-id": e.id },
          h("td", {}, badge(e.status)),
          h("td", {}, e.event_type),
          h("td", {}, when(e.created_at)),
          h("td", { class: "num" }, e.latency != null ? `${Math.round(e.latency)} ms` : "—"),
          h("td", {}, eventOutcome(e)),
          h("td", {}, h("a", { href: `#/event/${encodeURIComponent(e.id)}`, "aria-label": `Details of the ${e.event_type} event of ${when(e.created_at)}` }, "Details")),
        ))));
    }
    pager($("events-pager"), {
      count: data.count, page, pageSize,
      onPage: (p) => go("/events", { ...Object.fromEntries(params), page: p }),
    });
  });
}

function eventOutcome(e) {
  const parts = [];
  if (e.error) parts.push(h("div", { class: "event-error" }, h("strong", {}, "Error: "), e.error));
  if (e.results && e.results.length) {
    parts.push(h("ul", {}, e.results.slice(0, 10).map((r) => h("li", {}, `${r.event || ""} `, r.id
      ? h("a", { href: `#/memory/${encodeURIComponent(r.id)}` }, r.memory || (r.data && r.data.memory) || r.id)
      : (r.memory || "")))));
  }
  const payload = e.payload || {};
  const messages = Array.isArray(payload.messages) ? payload.messages : [];
  if (messages.length) {
    parts.push(h("details", {}, h("summary", {}, `${messages.length} message(s) sent`), json(messages)));
  }
  return parts.length ? parts : "—";
}
