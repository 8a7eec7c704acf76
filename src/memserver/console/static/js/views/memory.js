// One memory and its history as a timeline (old and new text, the source messages).
import { $, badge, entityOf, h, json, when } from "../core/dom.js";
import { api } from "../core/api.js";
import { guarded } from "../core/ui.js";
import { memoryActions } from "./memories.js";

export async function load(_params, [id]) {
  const out = $("memory-out");
  const timeline = $("history-out");
  out.replaceChildren();
  timeline.replaceChildren();
  await guarded("Loading the memory", async () => {
    const [memory, history] = await Promise.all([
      api("GET", `/v1/memories/${encodeURIComponent(id)}/`).catch((e) => (e.status === 404 ? null : Promise.reject(e))),
      api("GET", `/v1/memories/${encodeURIComponent(id)}/history/`),
    ]);
    if (memory) {
      out.replaceChildren(h("div", { class: "card" },
        h("p", { class: "memtext", id: "memory-text" }, memory.memory),
        h("dl", { class: "kv" },
          h("dt", {}, "id"), h("dd", { class: "mono" }, memory.id),
          h("dt", {}, "entity"), h("dd", {}, entityOf(memory) || "—"),
          h("dt", {}, "state"), h("dd", {}, memory.lifecycle_state),
          memory.replaced_by ? [h("dt", {}, "replaced by"), h("dd", {}, h("a", { href: `#/memory/${memory.replaced_by}` }, memory.replaced_by))] : null,
          h("dt", {}, "categories"), h("dd", {}, (memory.categories || []).join(", ") || "—"),
          h("dt", {}, "metadata"), h("dd", {}, memory.metadata ? json(memory.metadata) : "—"),
          h("dt", {}, "source"), h("dd", {}, sources(memory.provenance)),
          h("dt", {}, "created"), h("dd", {}, when(memory.created_at)),
          h("dt", {}, "updated"), h("dd", {}, when(memory.updated_at)),
          h("dt", {}, "expires"), h("dd", {}, memory.expiration_date || "never"),
        ),
        h("div", { class: "actions" }, memoryActions(memory, () => load(_params, [id]), { history: false })),
      ));
    } else {
      out.replaceChildren(h("p", { class: "empty" }, "This memory has been deleted; its history remains."));
    }
    timeline.replaceChildren(...history.map((entry) => h("li", { "data-event": entry.event },
      h("div", {}, badge(entry.event), " ", h("time", { datetime: entry.created_at }, when(entry.created_at))),
      h("dl", { class: "change" },
        entry.old_memory != null ? [h("dt", {}, "before"), h("dd", {}, h("del", {}, entry.old_memory))] : null,
        entry.new_memory != null ? [h("dt", {}, "after"), h("dd", {}, h("ins", {}, entry.new_memory))] : null,
        entry.input && entry.input.length
          ? [h("dt", {}, "source"), h("dd", {}, h("ul", {}, entry.input.map((msg) => h("li", {}, `${msg.role || "?"}: ${typeof msg.content === "string" ? msg.content : JSON.stringify(msg.content)}`))))]
          : null,
      ),
    )));
    if (!history.length) timeline.append(h("li", { class: "empty" }, "No history."));
  });
}

/** The events a memory came from (provenance), each a link to the event's page with its messages marked. */
export function sources(provenance) {
  const p = provenance || {};
  const list = Array.isArray(p.sources) ? p.sources : p.event_id ? [{ event_id: p.event_id, message_indices: [p.message_index] }] : [];
  const events = list.filter((x) => x && x.event_id);
  if (!events.length) return "—";
  return h("ul", { class: "plain" }, events.map((x) => h("li", {},
    h("a", { href: `#/event/${encodeURIComponent(x.event_id)}?mark=${(x.message_indices || []).join(",")}` }, `event ${x.event_id.slice(0, 8)}…`),
    (x.message_indices || []).length ? ` (messages ${(x.message_indices || []).map((i) => i + 1).join(", ")})` : "",
  )));
}
