// Webhooks (#/settings/webhooks): list, create (the signing secret shown once), edit, pause/resume, send a test
// event, delete; #/settings/webhooks/<id> lists a webhook's deliveries with every attempt (deliveries.js).
import { badge, h, setStatus, table, when } from "../core/dom.js";
import { api, ApiError } from "../core/api.js";
import { go } from "../core/router.js";
import { session } from "../core/session.js";
import { hooksPath } from "./webhook-paths.js";
import { clearFieldErrors, confirmAction, dialog, guarded, secretPanel, showFieldErrors } from "../core/ui.js";

const SENT = ["memory_add", "memory_update", "memory_delete", "memory_categorize"];
const ACCEPTED = ["ingest_job_completed", "ingest_job_partially_completed", "ingest_job_failed", "ingest_job_cancelled"];

export async function load(panel, params, [id] = []) {
  if (!session.can.write) {
    panel.replaceChildren(h("p", { class: "note" }, "Webhooks are visible to project OWNERs: their URLs may carry a receiver's credentials."));
    return;
  }
  if (id) {
    const mod = await import("./deliveries.js");
    await mod.load(panel, params, id);
    return;
  }
  await guarded("Loading webhooks", async () => {
    const rows = await api("GET", hooksPath());
    const refresh = () => load(panel, params, []);
    panel.replaceChildren(
      h("div", { class: "toolbar" }, h("button", { type: "button", "data-write": "", onclick: () => edit(null, refresh) }, "Create webhook")),
      rows.length ? table("webhooks-table", "Each webhook receives signed POSTs of the event types it names",
        ["Name", "URL", "Event types", "State", "Created", "Actions"],
        rows.map((w) => h("tr", { "data-id": w.webhook_id },
          h("td", {}, w.name),
          h("td", { class: "mono wrap" }, w.url),
          h("td", {}, w.event_types.join(", ")),
          h("td", {}, badge(w.is_active ? "Active" : "Paused", w.is_active ? "ACTIVE" : "PAUSED")),
          h("td", {}, when(w.created_at)),
          h("td", { class: "row-actions" }, actions(w, refresh)),
        ))) : h("p", { class: "empty" }, "No webhooks yet."),
    );
  });
}

function actions(w, refresh) {
  const path = `/api/v1/webhooks/${encodeURIComponent(w.webhook_id)}/`;
  const act = (label, text, fn) => h("button", { type: "button", class: "link", "data-write": "", "aria-label": `${label} webhook ${w.name}`, onclick: fn }, text);
  return [
    h("a", { href: `#/settings/webhooks/${encodeURIComponent(w.webhook_id)}`, "aria-label": `Deliveries of webhook ${w.name}` }, "Deliveries"),
    act("Edit", "Edit", () => edit(w, refresh)),
    act(w.is_active ? "Pause" : "Resume", w.is_active ? "Pause" : "Resume", async () => {
      if (await guarded(w.is_active ? "Pausing" : "Resuming", () => api("PUT", path, { is_active: !w.is_active }))) {
        await refresh();
        setStatus(`Webhook ${w.name} ${w.is_active ? "paused: nothing is sent until it is resumed" : "resumed"}.`);
      }
    }),
    w.is_active ? act("Send test event to", "Send test event", () => go(`/settings/webhooks/${encodeURIComponent(w.webhook_id)}`, { test: "1" })) : null,
    act("Delete", "Delete", async () => {
      const text = `Webhook “${w.name}” will be deleted; deliveries still waiting are marked FAILED (“webhook deleted”). This cannot be undone.`;
      if (!(await confirmAction("Delete webhook?", text, "Delete"))) return;
      if (await guarded("Deleting the webhook", () => api("DELETE", path))) {
        await refresh();
        setStatus(`Webhook ${w.name} deleted.`);
      }
    }),
  ];
}

/** The create/edit dialog; the API's 400s land at their fields. A new webhook's secret is shown once. */
async function edit(w, refresh) {
  let created = null;
  await dialog(w ? `Edit webhook ${w.name}` : "Create webhook", (close, id) => {
    const name = h("input", { id: `${id}-name`, required: true });
    const url = h("input", { id: `${id}-url`, type: "url", required: true, spellcheck: "false" });
    name.value = w ? w.name : "";
    url.value = w ? w.url : "";
    const types = h("fieldset", { id: `${id}-types`, tabindex: "-1" }, h("legend", {}, "Event types"));
    const box = (t) => {
      const cb = h("input", { type: "checkbox", id: `${id}-t-${t}`, value: t, checked: w ? w.event_types.includes(t) : SENT.includes(t) });
      return h("div", { class: "check" }, cb, h("label", { for: cb.id }, t));
    };
    types.append(...SENT.map(box), h("p", { class: "help" }, "Accepted for compatibility, never sent:"), ...ACCEPTED.map(box));
    const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1", hidden: true });
    const controls = { name, url, event_types: types };
    const form = h("form", { novalidate: true },
      summary,
      h("label", { for: name.id }, "Name"), name,
      h("label", { for: url.id }, "URL"), url,
      types,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: () => close(null) }, "Cancel"),
        h("button", { type: "submit", "data-write": "" }, w ? "Save webhook" : "Create webhook")),
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearFieldErrors(summary, controls);
      const body = { name: name.value, url: url.value, event_types: [...types.querySelectorAll("input:checked")].map((c) => c.value) };
      try {
        if (w) await api("PUT", `/api/v1/webhooks/${encodeURIComponent(w.webhook_id)}/`, body);
        else created = await api("POST", hooksPath(), body);
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        const fields = Object.keys(e.fieldErrors).length ? e.fieldErrors : { "": [e.message] };
        showFieldErrors(summary, controls, fields, `Not saved: the API refused it (${e.status})`);
        return;
      }
      close(true);
    });
    return form;
  });
  if (created) {
    const secret = created.secret;
    created.secret = undefined;
    created = null;
    await secretPanel("Webhook created", "Copy this signing secret now: it is never shown again. Receivers verify X-Mem0-Signature with it.",
      secret, "Signing secret");
  }
  await refresh();
}
