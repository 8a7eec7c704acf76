// A webhook's deliveries, newest first, each with every attempt (status, response code, error, duration), and
// "Send test event": one signed delivery, followed until it succeeds or fails.
import { badge, h, json, setStatus, table, when } from "../core/dom.js";
import { api } from "../core/api.js";
import { go, replace } from "../core/router.js";
import { guarded, pager } from "../core/ui.js";
import { hooksPath } from "./webhook-paths.js";

export async function load(panel, params, id) {
  const page = Number(params.get("page") || 1);
  const pageSize = 50;
  const base = `/api/v1/webhooks/${encodeURIComponent(id)}`;
  const render = async (highlight) => {
    const [hooks, data] = await Promise.all([
      api("GET", hooksPath()),
      api("GET", `${base}/deliveries/?page=${page}&page_size=${pageSize}`),
    ]);
    const hook = hooks.find((w) => w.webhook_id === id);
    const pages = h("nav", { class: "pager", "aria-label": "Deliveries pages" });
    pager(pages, { count: data.count, page, pageSize, onPage: (p) => go(`/settings/webhooks/${encodeURIComponent(id)}`, { page: p }) });
    const test = hook && hook.is_active
      ? h("button", { type: "button", "data-write": "", id: "send-test", onclick: () => sendTest(base, render) }, "Send test event")
      : h("p", { class: "note" }, "This webhook is paused: resume it to send a test event.");
    panel.replaceChildren(
      h("p", {}, h("a", { href: "#/settings/webhooks" }, "← All webhooks")),
      h("h2", { id: "deliveries-title" }, `Deliveries of ${hook ? hook.name : id}`),
      hook ? h("p", { class: "mono wrap" }, hook.url) : null,
      h("div", { class: "toolbar" }, test),
      h("p", { class: "muted", id: "deliveries-count" }, `${data.count.toLocaleString()} ${data.count === 1 ? "delivery" : "deliveries"} in all, newest first.`),
      data.results.length ? deliveryTable(data.results, highlight) : h("p", { class: "empty" }, "No deliveries yet."),
      pages,
    );
    return data;
  };
  await guarded("Loading deliveries", () => render(null));
  if (params.get("test") === "1") {
    replace(`/settings/webhooks/${encodeURIComponent(id)}`);
    await sendTest(base, render);
  }
}

function deliveryTable(rows, highlight) {
  return table("deliveries-table", "Deliveries", ["Status", "Event", "Created", "Attempts", "Last code", "Last error", "Latency", "Attempts detail"],
    rows.map((d) => {
      const detailId = `attempts-${d.delivery_id}`;
      const detail = h("div", { id: detailId, class: "attempts", hidden: true },
        h("ol", {}, (d.history || []).map((a) => h("li", { class: "attempt" },
          h("strong", {}, `Attempt ${a.attempt}`), ` · ${when(a.at)} · `,
          a.response_status != null ? `HTTP ${a.response_status}` : "no answer",
          a.duration_ms != null ? ` · ${Math.round(a.duration_ms)} ms` : "",
          a.error ? h("div", { class: "attempt-error" }, a.error) : null,
        ))),
        d.next_attempt_at ? h("p", {}, `Next attempt: ${when(d.next_attempt_at)}`) : null,
        h("details", {}, h("summary", {}, "Body sent"), json(d.body)),
      );
      const toggle = h("button", { type: "button", class: "link", "aria-expanded": "false", "aria-controls": detailId,
        "aria-label": `Attempts of delivery ${d.event_type || ""} ${when(d.created_at)}`,
        onclick: () => {
          const open = toggle.getAttribute("aria-expanded") !== "true";
          toggle.setAttribute("aria-expanded", String(open));
          detail.hidden = !open;
        } }, `${(d.history || []).length} attempt(s)`);
      return h("tr", { "data-id": d.delivery_id, class: d.delivery_id === highlight ? "highlight" : null },
        h("td", {}, badge(d.status)),
        h("td", {}, d.event_type || "—"),
        h("td", {}, when(d.created_at)),
        h("td", { class: "num" }, d.attempts),
        h("td", { class: "num" }, d.response_status ?? "—"),
        h("td", { class: "wrap" }, d.last_error || "—"),
        h("td", { class: "num" }, d.latency != null ? `${Math.round(d.latency)} ms` : "—"),
        h("td", {}, toggle, detail),
      );
    }));
}

/** Queue a test delivery, then poll it every second (up to 30 s) and announce how it went. */
async function sendTest(base, render) {
  let queued = null;
  if (!(await guarded("Sending a test event", async () => {
    queued = await api("POST", `${base}/test/`);
  }))) return;
  setStatus("Test event queued…");
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const data = await render(queued.delivery_id);
    const d = data.results.find((x) => x.delivery_id === queued.delivery_id);
    if (d && (d.status === "SUCCEEDED" || d.status === "FAILED")) {
      const last = (d.history || [])[d.history.length - 1] || {};
      setStatus(d.status === "SUCCEEDED"
        ? `Test delivered: HTTP ${d.response_status}${last.duration_ms != null ? ` in ${Math.round(last.duration_ms)} ms` : ""}.`
        : `Test delivery failed: ${d.last_error || `HTTP ${d.response_status}`}.`);
      return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  setStatus("The test delivery has not finished after 30 s; it is listed below.");
}
