// memserver console: plain JavaScript over memserver's REST API (no build step, no CDN, no framework).
// The API key lives in sessionStorage only. Every text from the API is inserted as text, never as HTML.
"use strict";

const KEY_STORAGE = "memserver.apiKey";
const ENTITY_KEYS = ["user_id", "agent_id", "app_id", "run_id"];
const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// DOM and formatting helpers
// ---------------------------------------------------------------------------------------------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function when(value) {
  if (!value) return "—";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString();
}

function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

function badge(text, kind) {
  return h("span", { class: `badge ${kind || text}` }, text);
}

function entityOf(m) {
  return ENTITY_KEYS.filter((k) => m[k]).map((k) => `${k}=${m[k]}`).join(", ");
}

function setStatus(text) {
  $("status").textContent = text || "";
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

// ---------------------------------------------------------------------------------------------
// The REST API
// ---------------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

async function api(method, path, body, key) {
  const headers = { Authorization: `Token ${key || apiKey() || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, `memserver is unreachable: ${err.message}`);
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const msg = (data && (data.detail || data.error || data.message)) || `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, typeof msg === "string" ? msg : JSON.stringify(msg));
  }
  return data;
}

// Run one view's work: show progress, and the API's own error message when it fails.
async function guarded(label, fn) {
  showError("");
  setStatus(`${label}…`);
  try {
    await fn();
    setStatus("");
  } catch (err) {
    setStatus("");
    if (err instanceof ApiError && err.status === 401) {
      signOut(`Signed out: ${err.message}`);
      return;
    }
    showError(err instanceof ApiError ? `${label} failed (${err.status || "network"}): ${err.message}` : String(err));
  }
}

// ---------------------------------------------------------------------------------------------
// Routing: #/view?param=value, so every page has a URL and back/forward work
// ---------------------------------------------------------------------------------------------
function currentRoute() {
  const raw = location.hash.replace(/^#/, "") || "/entities";
  const [path, query] = raw.split("?");
  return { path, params: new URLSearchParams(query || "") };
}

function go(path, params) {
  const qs = params ? new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null)).toString() : "";
  const target = `#${path}${qs ? `?${qs}` : ""}`;
  if (location.hash === target) route();
  else location.hash = target;
}

function showView(name) {
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${name}`;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const title = document.querySelector(`#view-${name} h1`);
  document.title = `${title ? title.textContent : name} · memserver console`;
}

function focusTitle(name) {
  const title = document.querySelector(`#view-${name} h1`);
  if (title) title.focus({ preventScroll: true });
}

async function route() {
  if (!apiKey()) {
    showView("signin");
    return;
  }
  const { path, params } = currentRoute();
  const [, name, arg] = path.split("/");
  const views = { entities: loadEntities, memories: loadMemories, search: runSearch, events: loadEvents, settings: loadSettings };
  if (name === "memory" && arg) {
    showView("memory");
    await loadMemory(decodeURIComponent(arg));
  } else if (views[name]) {
    showView(name);
    await views[name](params);
  } else {
    go("/entities");
    return;
  }
  focusTitle(name);
}

function pager(container, { count, page, pageSize, onPage }) {
  container.replaceChildren();
  const pages = Math.max(1, Math.ceil(count / pageSize));
  if (pages <= 1) return;
  container.append(
    h("button", { type: "button", class: "secondary", disabled: page <= 1, onclick: () => onPage(page - 1) }, "← Previous"),
    h("span", { "aria-live": "polite" }, `Page ${page} of ${pages}`),
    h("button", { type: "button", class: "secondary", disabled: page >= pages, onclick: () => onPage(page + 1) }, "Next →"),
  );
}

function fillForm(form, params) {
  for (const el of form.elements) {
    if (!el.name || !params.has(el.name)) continue;
    if (el.type === "checkbox") el.checked = params.get(el.name) === "true";
    else el.value = params.get(el.name);
  }
}

function formParams(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    out[el.name] = el.type === "checkbox" ? (el.checked ? "true" : "") : el.value.trim();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sign in / out
// ---------------------------------------------------------------------------------------------
async function signIn(event) {
  event.preventDefault();
  const key = $("signin-key").value.trim();
  showError("");
  setStatus("Signing in…");
  let who;
  try {
    who = await api("GET", "/v1/ping/", undefined, key);
  } catch (err) {
    // Not `guarded`: a refused key here is a failed sign-in, not a session that ended.
    setStatus("");
    showError(err instanceof ApiError ? `Sign-in failed (${err.status || "network"}): ${err.message}` : String(err));
    $("signin-key").focus();
    return;
  }
  setStatus("");
  sessionStorage.setItem(KEY_STORAGE, key);
  $("signin-key").value = "";
  signedIn(who);
  await route();
}

function signedIn(who) {
  $("nav").hidden = false;
  $("signout").hidden = false;
  const who_ = $("whoami");
  who_.hidden = false;
  who_.textContent = `${who.org_name} / ${who.project_name}`;
  who_.dataset.ping = JSON.stringify(who);
}

function signOut(message) {
  sessionStorage.removeItem(KEY_STORAGE);
  $("nav").hidden = true;
  $("signout").hidden = true;
  $("whoami").hidden = true;
  showView("signin");
  showError(message || "");
  setStatus(message ? "" : "Signed out.");
  $("signin-key").focus();
}

// ---------------------------------------------------------------------------------------------
// Entities
// ---------------------------------------------------------------------------------------------
async function loadEntities(params) {
  const form = $("entities-form");
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
      out.replaceChildren(
        h("table", { id: "entities-table" },
          h("caption", {}, "Users, agents, apps and runs that have memories"),
          h("thead", {}, h("tr", {}, ["Type", "Name", "Memories", "Created", "Updated"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, rows.map((e) => h("tr", {},
            h("td", {}, badge(e.type, "type")),
            h("td", {}, h("a", { href: `#/memories?etype=${e.type}_id&eid=${encodeURIComponent(e.name)}` }, e.name)),
            h("td", { class: "num" }, e.total_memories),
            h("td", {}, when(e.created_at)),
            h("td", {}, when(e.updated_at)),
          ))),
        ),
      );
    }
    pager($("entities-pager"), {
      count: data.count, page, pageSize,
      onPage: (p) => go("/entities", { ...Object.fromEntries(params), page: p }),
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Memories: browse, edit, delete
// ---------------------------------------------------------------------------------------------
function memoryFilters(p) {
  const filters = { [p.etype || "user_id"]: p.eid };
  return filters;
}

async function loadMemories(params) {
  const form = $("memories-form");
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
  const body = { filters: memoryFilters(p), page, page_size: pageSize, show_expired: p.show_expired === "true" };
  if (p.keywords) body.keywords = p.keywords;
  if (p.category) body.categories = [p.category];
  await guarded("Loading memories", async () => {
    const data = await api("POST", `/v3/memories/?page=${page}&page_size=${pageSize}`, body);
    $("memories-count").textContent = `${data.count} ${data.count === 1 ? "memory" : "memories"}`;
    out.replaceChildren(memoryTable(data.results, () => loadMemories(params)));
    pager($("memories-pager"), { count: data.count, page, pageSize, onPage: (n) => go("/memories", { ...p, page: n }) });
  });
}

function memoryTable(rows, refresh) {
  if (!rows.length) return h("p", { class: "empty" }, "No memories match.");
  return h("table", { id: "memories-table" },
    h("caption", {}, "Newest first"),
    h("thead", {}, h("tr", {}, ["Memory", "Entity", "Categories", "Metadata", "Updated", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((m) => h("tr", { "data-id": m.id },
      h("td", { class: "memtext" }, m.memory),
      h("td", {}, entityOf(m)),
      h("td", {}, (m.categories || []).join(", ") || "—"),
      h("td", {}, m.metadata ? h("code", {}, JSON.stringify(m.metadata)) : "—"),
      h("td", {}, when(m.updated_at)),
      h("td", { class: "row-actions" }, memoryActions(m, refresh)),
    ))),
  );
}

function memoryActions(m, refresh, { history = true } = {}) {
  const short = m.memory.length > 40 ? `${m.memory.slice(0, 40)}…` : m.memory;
  return [
    history ? h("a", { href: `#/memory/${encodeURIComponent(m.id)}`, "aria-label": `History of “${short}”` }, "History") : null,
    h("button", { type: "button", class: "link", "aria-label": `Edit “${short}”`, onclick: () => editMemory(m, refresh) }, "Edit"),
    h("button", { type: "button", class: "link", "aria-label": `Delete “${short}”`, onclick: () => deleteMemory(m, refresh) }, "Delete"),
  ];
}

function editMemory(m, refresh) {
  const dialog = $("edit-dialog");
  const form = $("edit-form");
  const err = $("edit-error");
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
    setStatus("Memory updated.");
    await refresh();
    setStatus("Memory updated.");
  };
  $("edit-cancel").onclick = () => dialog.close();
  dialog.showModal();
}

function deleteMemory(m, refresh) {
  const dialog = $("confirm-dialog");
  $("confirm-text").textContent = `“${m.memory}” will be deleted. Its history is kept. This cannot be undone.`;
  dialog.returnValue = "";
  dialog.onclose = async () => {
    dialog.onclose = null;
    if (dialog.returnValue !== "confirm") return;
    await guarded("Deleting", async () => {
      await api("DELETE", `/v1/memories/${encodeURIComponent(m.id)}/`);
      await refresh();
    });
    setStatus("Memory deleted.");
  };
  dialog.showModal();
}

// ---------------------------------------------------------------------------------------------
// Search, with each hit's score breakdown
// ---------------------------------------------------------------------------------------------
async function runSearch(params) {
  const form = $("search-form");
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
    const fill = h("span");
    fill.style.width = `${(Math.max(0, Math.min(1, Number(value))) * 100).toFixed(1)}%`; // CSSOM: allowed by the CSP
    dl.append(h("div", {},
      h("dt", {}, name),
      h("dd", {}, h("span", { class: "bar", "aria-hidden": "true" }, fill), Number(value).toFixed(3)),
    ));
  }
  return dl;
}

// ---------------------------------------------------------------------------------------------
// One memory and its history timeline
// ---------------------------------------------------------------------------------------------
async function loadMemory(id) {
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
          h("dt", {}, "created"), h("dd", {}, when(memory.created_at)),
          h("dt", {}, "updated"), h("dd", {}, when(memory.updated_at)),
          h("dt", {}, "expires"), h("dd", {}, memory.expiration_date || "never"),
        ),
        h("div", { class: "actions" }, memoryActions(memory, () => loadMemory(id), { history: false })),
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

// ---------------------------------------------------------------------------------------------
// Events feed
// ---------------------------------------------------------------------------------------------
async function loadEvents(params) {
  const form = $("events-form");
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
      out.replaceChildren(h("table", { id: "events-table" },
        h("caption", {}, `${data.count} events, newest first`),
        h("thead", {}, h("tr", {}, ["Status", "Type", "Created", "Latency", "Outcome"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows.map((e) => h("tr", { "data-id": e.id },
          h("td", {}, badge(e.status)),
          h("td", {}, e.event_type),
          h("td", {}, when(e.created_at)),
          h("td", { class: "num" }, e.latency != null ? `${Math.round(e.latency)} ms` : "—"),
          h("td", {}, eventOutcome(e)),
        ))),
      ));
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
    parts.push(h("ul", {}, e.results.map((r) => h("li", {}, `${r.event || ""} `, r.id
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

// ---------------------------------------------------------------------------------------------
// Settings: the key's org and project (project settings and webhooks are managed through the API and SDKs)
// ---------------------------------------------------------------------------------------------
async function loadSettings() {
  await guarded("Loading the project", async () => {
    const who = await api("GET", "/v1/ping/");
    $("settings-out").replaceChildren(h("dl", { class: "kv" },
      h("dt", {}, "organization"), h("dd", {}, `${who.org_name} (${who.org_id})`),
      h("dt", {}, "project"), h("dd", {}, `${who.project_name} (${who.project_id})`),
      h("dt", {}, "key owner"), h("dd", {}, who.user_email || "—"),
    ));
  });
}

// ---------------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------------
function submitTo(formId, path) {
  $(formId).addEventListener("submit", (event) => {
    event.preventDefault();
    go(path, { ...formParams(event.target), page: 1 });
  });
}

document.addEventListener("DOMContentLoaded", async () => {
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", () => signOut(""));
  submitTo("entities-form", "/entities");
  submitTo("memories-form", "/memories");
  submitTo("events-form", "/events");
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    go("/search", formParams(event.target));
  });
  window.addEventListener("hashchange", route);
  if (apiKey()) {
    try {
      signedIn(await api("GET", "/v1/ping/"));
    } catch (err) {
      signOut(err instanceof ApiError ? `Signed out: ${err.message}` : String(err));
      return;
    }
  }
  await route();
});
