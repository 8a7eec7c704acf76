// Memories: an entity's memories with filters and pages; edit and delete (OWNER only: not drawn for a READER).
import { $, entityOf, h, setStatus, short, table, when } from "../core/dom.js";
import { api } from "../core/api.js";
import { go } from "../core/router.js";
import { session } from "../core/session.js";
import { confirmAction, guarded, pager } from "../core/ui.js";
import { fillForm, submitTo } from "./forms.js";

export async function load(params) {
  const form = $("memories-form");
  submitTo(form, "/memories");
  fillForm(form, params);
  const out = $("memories-out");
  const p = Object.fromEntries(params);
  if (!p.eid) {
    out.replaceChildren(h("p", { class: "empty" }, "Choose an entity (or pick one under Entities) to list its memories."));
    $("memories-count").textContent = "";
    $("memories-pager").replaceChildren();
    return;
  }
  const page = Number(p.page || 1);
  const pageSize = Number(p.page_size || 25);
  const body = { filters: { [p.etype || "user_id"]: p.eid }, page, page_size: pageSize, show_expired: p.show_expired === "true" };
  if (p.keywords) body.keywords = p.keywords;
  if (p.category) body.categories = [p.category];
  await guarded("Loading memories", async () => {
    const data = await api("POST", `/v3/memories/?page=${page}&page_size=${pageSize}`, body);
    $("memories-count").textContent = `${data.count.toLocaleString()} ${data.count === 1 ? "memory" : "memories"}`;
    out.replaceChildren(memoryTable(data.results, () => load(params)));
    pager($("memories-pager"), { count: data.count, page, pageSize, onPage: (n) => go("/memories", { ...p, page: n }) });
  });
}

export function memoryTable(rows, refresh) {
  if (!rows.length) return h("p", { class: "empty" }, "No memories match.");
  return table("memories-table", "Newest first",
    ["Memory", "Entity", "Categories", "Metadata", "Updated", "Actions"],
    rows.map((m) => h("tr", { "data-id": m.id },
      h("td", { class: "memtext" }, m.memory),
      h("td", {}, entityOf(m)),
      h("td", {}, (m.categories || []).join(", ") || "—"),
      h("td", {}, m.metadata ? h("code", {}, JSON.stringify(m.metadata)) : "—"),
      h("td", {}, when(m.updated_at)),
      h("td", { class: "row-actions" }, memoryActions(m, refresh)),
    )));
}

export function memoryActions(m, refresh, { history = true } = {}) {
  const label = short(m.memory);
  return [
    history ? h("a", { href: `#/memory/${encodeURIComponent(m.id)}`, "aria-label": `History of “${label}”` }, "History") : null,
    session.can.write ? h("button", { type: "button", class: "link", "data-write": "", "aria-label": `Edit “${label}”`, onclick: () => editMemory(m, refresh) }, "Edit") : null,
    session.can.write ? h("button", { type: "button", class: "link", "data-write": "", "aria-label": `Delete “${label}”`, onclick: () => deleteMemory(m, refresh) }, "Delete") : null,
  ];
}

function editMemory(m, refresh) {
  const dialog = $("edit-dialog");
  const form = $("edit-form");
  const err = $("edit-error");
  const opener = document.activeElement;
  $("edit-text").value = m.memory;
  $("edit-metadata").value = m.metadata ? JSON.stringify(m.metadata, null, 2) : "";
  err.hidden = true;
  form.onsubmit = async (event) => {
    event.preventDefault();
    const body = { text: $("edit-text").value };
    const raw = $("edit-metadata").value.trim();
    if (raw) {
      try {
        body.metadata = JSON.parse(raw);
      } catch (e) {
        err.textContent = `Metadata is not valid JSON: ${e.message}`;
        err.hidden = false;
        return;
      }
    }
    try {
      await api("PUT", `/v1/memories/${encodeURIComponent(m.id)}/`, body);
    } catch (e) {
      err.textContent = `Saving failed (${e.status || "network"}): ${e.message}`;
      err.hidden = false;
      return;
    }
    dialog.close();
    await refresh();
    setStatus("Memory updated.");
  };
  dialog.onclose = () => {
    dialog.onclose = null;
    if (opener && opener.isConnected) opener.focus();
  };
  $("edit-cancel").onclick = () => dialog.close();
  dialog.showModal();
}

async function deleteMemory(m, refresh) {
  const text = `“${m.memory}” will be deleted. Its history is kept. This cannot be undone.`;
  if (!(await confirmAction("Delete memory?", text, "Delete"))) return;
  await guarded("Deleting", async () => {
    await api("DELETE", `/v1/memories/${encodeURIComponent(m.id)}/`);
    await refresh();
  });
  setStatus("Memory deleted.");
}
