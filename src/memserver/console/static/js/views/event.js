// One event: its status and timing, the messages sent, and what the LLM decided per fact, each with the
// messages it came from (metadata.decisions), what it cost, and the rest of what the job recorded.
import { $, badge, h, json, num, table, when } from "../core/dom.js";
import { api } from "../core/api.js";
import { guarded } from "../core/ui.js";

const USAGE = ["llm_calls", "prompt_tokens", "completion_tokens", "cached_prompt_tokens"];

export async function load(params, [id]) {
  const out = $("event-out");
  out.replaceChildren();
  await guarded("Loading the event", async () => {
    const e = await api("GET", `/v1/event/${encodeURIComponent(id)}/`);
    $("event-title").textContent = `Event: ${e.event_type}`;
    const meta = e.metadata || {};
    const payload = e.payload || {};
    const messages = Array.isArray(payload.messages) ? payload.messages : [];
    const marked = new Set((params.get("mark") || "").split(",").filter((x) => x !== "").map(Number));
    out.replaceChildren(
      h("div", { class: "card" }, h("dl", { class: "kv", id: "event-facts" },
        h("dt", {}, "status"), h("dd", {}, badge(e.status)),
        h("dt", {}, "type"), h("dd", {}, e.event_type),
        h("dt", {}, "id"), h("dd", { class: "mono" }, e.id),
        h("dt", {}, "created"), h("dd", {}, when(e.created_at)),
        h("dt", {}, "started"), h("dd", {}, when(e.started_at)),
        h("dt", {}, "completed"), h("dd", {}, when(e.completed_at)),
        h("dt", {}, "latency"), h("dd", {}, e.latency != null ? `${Math.round(e.latency)} ms` : "—"),
        meta.attempts != null ? [h("dt", {}, "attempts"), h("dd", {}, meta.attempts)] : null,
        e.error ? [h("dt", {}, "error"), h("dd", { class: "event-error" }, e.error)] : null,
      )),
      messagesSection(messages, marked),
      decisionsSection(e, meta, payload),
      usageSection(meta),
      otherSection(e, meta),
    );
  });
}

function content(msg) {
  return typeof msg.content === "string" ? msg.content : JSON.stringify(msg.content);
}

function messagesSection(messages, marked) {
  if (!messages.length) return null;
  return h("section", { "aria-labelledby": "event-messages-title" },
    h("h2", { id: "event-messages-title" }, "Messages sent"),
    h("ol", { class: "messages", id: "event-messages" }, messages.map((m, i) => h("li", {
      id: `msg-${i}`, tabindex: "-1", class: marked.has(i) ? "marked" : null, "data-index": i,
    }, h("span", { class: "role" }, m.role || "?"), " ", content(m), marked.has(i) ? h("span", { class: "badge source" }, "source") : null))),
  );
}

function mark(indices) {
  for (const li of document.querySelectorAll("#event-messages > li")) {
    const on = indices.includes(Number(li.dataset.index));
    li.classList.toggle("marked", on);
    li.querySelector(".badge.source")?.remove();
    if (on) li.append(h("span", { class: "badge source" }, "source"));
  }
  const first = document.getElementById(`msg-${indices[0]}`);
  if (first) first.focus();
}

function decisionsSection(e, meta, payload) {
  const decisions = Array.isArray(meta.decisions) ? meta.decisions : null;
  const title = h("h2", { id: "event-decisions-title" }, "What the LLM decided");
  if (payload.infer === false) {
    return h("section", { "aria-labelledby": "event-decisions-title" }, title, h("p", { class: "muted" }, "Stored verbatim, no LLM (infer=false)."));
  }
  if (!decisions) {
    const note = e.event_type === "ADD" ? "Source messages were not recorded for this event." : "This job records no per-fact decisions.";
    return h("section", { "aria-labelledby": "event-decisions-title" }, title, h("p", { class: "muted" }, note),
      e.results && e.results.length ? resultsList(e.results) : null);
  }
  if (!decisions.length) {
    return h("section", { "aria-labelledby": "event-decisions-title" }, title, h("p", { class: "muted" }, "The LLM found no facts to store."));
  }
  return h("section", { "aria-labelledby": "event-decisions-title" }, title,
    table("decisions-table", "One row per fact, in the order the LLM gave them",
      ["Operation", "Fact", "Memory", "From messages"],
      decisions.map((d, i) => h("tr", { "data-op": d.op },
        h("td", {}, badge(d.op)),
        h("td", {}, d.op === "UPDATE" && d.previous_text != null
          ? [h("del", {}, d.previous_text), " → ", h("ins", {}, d.text)]
          : d.text,
          d.op !== "UPDATE" && d.previous_text && d.previous_text !== d.text ? h("div", { class: "muted" }, `stored: ${d.previous_text}`) : null,
          d.categories && d.categories.length ? h("div", { class: "muted" }, `categories: ${d.categories.join(", ")}`) : null),
        h("td", {}, d.memory_id ? h("a", { href: `#/memory/${encodeURIComponent(d.memory_id)}`, "aria-label": `Memory of fact ${i + 1}` }, "Memory") : "—"),
        h("td", {}, (d.message_indices || []).length ? [
          "from messages ",
          (d.message_indices || []).map((m, j) => [j ? ", " : "", h("a", {
            href: `#msg-${m}`, "aria-label": `message ${m + 1} (source of fact ${i + 1})`,
            onclick: (ev) => { ev.preventDefault(); mark(d.message_indices); },
          }, String(m + 1))]),
        ] : "—"),
      ))));
}

function resultsList(results) {
  return h("ul", {}, results.map((r) => h("li", {}, badge(r.event || "?"), " ", r.id
    ? h("a", { href: `#/memory/${encodeURIComponent(r.id)}` }, r.memory || (r.data && r.data.memory) || r.id)
    : (r.memory || ""))));
}

function usageSection(meta) {
  if (!USAGE.some((k) => meta[k] != null)) return null;
  return h("section", { "aria-labelledby": "event-usage-title" },
    h("h2", { id: "event-usage-title" }, "LLM calls and tokens"),
    h("dl", { class: "kv", id: "event-usage" }, USAGE.filter((k) => meta[k] != null).map((k) => [
      h("dt", {}, k.replaceAll("_", " ")), h("dd", {}, num(meta[k])),
    ])));
}

function otherSection(e, meta) {
  const rest = Object.fromEntries(Object.entries(meta).filter(([k]) => !USAGE.includes(k) && k !== "decisions" && k !== "attempts"));
  const notes = Array.isArray(meta.notes) ? meta.notes : [];
  return h("section", { "aria-labelledby": "event-other-title" },
    h("h2", { id: "event-other-title" }, "Everything else the job recorded"),
    notes.length ? h("ul", { id: "event-notes" }, notes.map((n) => h("li", {}, typeof n === "string" ? n : JSON.stringify(n)))) : null,
    Object.keys(rest).length ? h("details", {}, h("summary", {}, "Metadata"), json(rest)) : null,
    e.results && e.results.length ? h("details", {}, h("summary", {}, `Results (${e.results.length})`), json(e.results)) : null,
    h("details", {}, h("summary", {}, "Request"), json(e.payload)),
  );
}
