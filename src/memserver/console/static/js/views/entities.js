// Entities: users, agents, apps and runs with their memory counts.
import { $, badge, h, table, when } from "../core/dom.js";
import { api } from "../core/api.js";
import { go } from "../core/router.js";
import { guarded, pager } from "../core/ui.js";
import { fillForm, submitTo } from "./forms.js";

export async function load(params) {
  const form = $("entities-form");
  submitTo(form, "/entities");
  fillForm(form, params);
  const page = Number(params.get("page") || 1);
  const pageSize = Number(params.get("page_size") || form.elements.page_size.value);
  await guarded("Loading entities", async () => {
    const data = await api("GET", `/v1/entities/?page=${page}&page_size=${pageSize}`);
    const type = params.get("type") || "";
    const name = (params.get("name") || "").toLowerCase();
    const rows = data.results.filter((e) => (!type || e.type === type) && (!name || e.name.toLowerCase().includes(name)));
    $("entities-totals").textContent =
      `${data.total_users} users, ${data.total_agents} agents, ${data.total_apps} apps, ${data.total_runs} runs` +
      (type || name ? ` · ${rows.length} on this page match the filter` : "");
    const out = $("entities-out");
    if (!rows.length) {
      out.replaceChildren(h("p", { class: "empty" }, "No entities yet: add memories for a user, agent, app or run."));
    } else {
      out.replaceChildren(table("entities-table", "Users, agents, apps and runs that have memories",
        ["Type", "Name", "Memories", "Graph", "Created", "Updated"],
        rows.map((e) => h("tr", {},
          h("td", {}, badge(e.type, "type")),
          h("td", {}, h("a", { href: `#/memories?etype=${e.type}_id&eid=${encodeURIComponent(e.name)}` }, e.name)),
          h("td", { class: "num" }, e.total_memories),
          h("td", {}, h("a", { href: `#/graph?etype=${e.type}_id&eid=${encodeURIComponent(e.name)}` }, "Graph")),
          h("td", {}, when(e.created_at)),
          h("td", {}, when(e.updated_at)),
        ))));
    }
    pager($("entities-pager"), {
      count: data.count, page, pageSize,
      onPage: (p) => go("/entities", { ...Object.fromEntries(params), page: p }),
    });
  });
}
