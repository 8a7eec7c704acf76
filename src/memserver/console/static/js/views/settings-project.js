// Project settings: every setting (settings-fields.js), profiles and Dream. An OWNER edits them in one form;
// Save sends only what changed, and the API's 400s land under their fields. A READER sees the values only.
import { h, json, setStatus, when } from "../core/dom.js";
import { api, ApiError } from "../core/api.js";
import { projectPath, session } from "../core/session.js";
import { clearFieldErrors, guarded, showFieldErrors } from "../core/ui.js";
import { FIELDS, FIELDSETS } from "./settings-fields.js";

export async function load(panel) {
  await guarded("Loading the project settings", async () => {
    const [project, profiles, dream] = await Promise.all([
      api("GET", `${projectPath()}/`),
      api("GET", "/v2/profiles/settings/"),
      api("GET", `${projectPath()}/dream/config/`),
    ]);
    panel.replaceChildren(session.can.write ? form(panel, project, profiles, dream) : readOnly(project, profiles, dream));
  });
}

const shown = (v) => (v === null || v === undefined || v === "" ? "—" : typeof v === "string" ? v : JSON.stringify(v));
// The entity types the server has profiles for (user and agent today), in its order.
const profileTypes = (p) => Object.keys(p.entities || {});
const ownSchema = (p, t) => (p.entities[t].schema_source === "custom" ? p.entities[t].schema : null);

function readOnly(project, profiles, dream) {
  const dl = h("dl", { class: "kv", id: "settings-values" });
  for (const f of FIELDS) {
    dl.append(h("dt", { "data-setting": f.name }, f.label), h("dd", {}, f.kind === "categories" ? categoriesText(project[f.name]) : shown(project[f.name])));
  }
  dl.append(h("dt", { "data-setting": "profiles.enabled" }, "Profiles"), h("dd", {}, profiles.enabled ? "on" : "off"));
  for (const t of profileTypes(profiles)) {
    const e = profiles.entities[t];
    dl.append(h("dt", {}, `Profile schema (${t})`), h("dd", {}, e.schema ? [e.schema_source || "", json(e.schema)] : "—"));
  }
  dl.append(h("dt", { "data-setting": "dream.reflection_enabled" }, "Dream synthesis"),
    h("dd", {}, dream.reflection_enabled ? `on since ${when(dream.enabled_at)}` : "off"));
  return h("div", {}, h("p", { class: "muted" }, "Read-only: changing settings needs a project OWNER."), dl);
}

function categoriesText(value) {
  if (!value) return "the 15 default categories";
  return value.map((c) => (typeof c === "string" ? c : Object.entries(c).map(([k, v]) => `${k}: ${v}`).join(", "))).join(" · ");
}

function control(f, value) {
  const id = `set-${f.name}`;
  const common = { id, name: f.name, "data-setting": f.name, "aria-describedby": f.help ? `${id}-help` : null };
  switch (f.kind) {
    case "bool":
      return h("input", { ...common, type: "checkbox", checked: Boolean(value) });
    case "tristate": {
      const sel = h("select", common, f.options.map(([v, t]) => h("option", { value: v }, t)));
      sel.value = value === true ? "true" : value === false ? "false" : "";
      return sel;
    }
    case "json": {
      const t = h("textarea", { ...common, rows: 3, spellcheck: "false", class: "mono" });
      t.value = value == null ? "" : JSON.stringify(value, null, 2);
      return t;
    }
    case "text": {
      const t = h("textarea", { ...common, rows: 3 });
      t.value = value ?? "";
      return t;
    }
    default: {
      const i = h("input", { ...common, required: f.required || null });
      i.value = value ?? "";
      return i;
    }
  }
}

function labelled(f, el) {
  const help = f.help ? h("p", { id: `set-${f.name}-help`, class: "help" }, f.help) : null;
  if (f.kind === "bool") return h("div", { class: "field check" }, el, h("label", { for: el.id }, f.label), help);
  return h("div", { class: "field" }, h("label", { for: el.id }, f.label), el, help);
}

function categoryRow(list, name = "", description = "") {
  const n = list.children.length + 1;
  const nameIn = h("input", { id: `cat-name-${n}-${Date.now()}`, class: "cat-name", "aria-label": `Category ${n} name` });
  const descIn = h("input", { id: `cat-desc-${n}-${Date.now()}`, class: "cat-desc", "aria-label": `Category ${n} description` });
  nameIn.value = name;
  descIn.value = description;
  const row = h("li", { class: "cat-row" }, nameIn, descIn,
    h("button", { type: "button", class: "secondary", "data-write": "", "aria-label": `Remove category ${n}`, onclick: () => {
      row.remove();
      list.closest("fieldset").querySelector(".cat-add").focus();
    } }, "Remove"));
  list.append(row);
  return nameIn;
}

function categoriesControl(value) {
  const list = h("ol", { class: "cat-list" });
  const custom = h("input", { type: "radio", name: "cat-mode", id: "cat-mode-custom", value: "custom", checked: Boolean(value) });
  const deflt = h("input", { type: "radio", name: "cat-mode", id: "cat-mode-default", value: "default", checked: !value });
  for (const c of value || []) {
    if (typeof c === "string") categoryRow(list, c);
    else for (const [k, v] of Object.entries(c)) categoryRow(list, k, v);
  }
  const add = h("button", { type: "button", class: "secondary cat-add", "data-write": "", onclick: () => {
    custom.checked = true;
    categoryRow(list).focus();
  } }, "Add category");
  const group = h("fieldset", { id: "set-custom_categories", "data-setting": "custom_categories", tabindex: "-1", "aria-describedby": "set-custom_categories-help" },
    h("legend", {}, "Categories"),
    h("p", { id: "set-custom_categories-help", class: "help" }, FIELDS.find((f) => f.name === "custom_categories").help),
    h("div", { class: "check" }, deflt, h("label", { for: "cat-mode-default" }, "The 15 default categories")),
    h("div", { class: "check" }, custom, h("label", { for: "cat-mode-custom" }, "These categories (name and description)")),
    list, add);
  group.read = () => {
    if (deflt.checked) return null;
    return [...list.querySelectorAll(".cat-row")].map((row) => {
      const name = row.querySelector(".cat-name").value.trim();
      const desc = row.querySelector(".cat-desc").value.trim();
      return desc ? { [name]: desc } : name;
    }).filter((c) => c !== "");
  };
  return group;
}

function readValue(f, el, errors) {
  if (f.kind === "categories") return el.read();
  if (f.kind === "bool") return el.checked;
  if (f.kind === "tristate") return el.value === "" ? null : el.value === "true";
  const raw = el.value.trim();
  if (f.kind === "json") {
    if (!raw) return null;
    try {
      return JSON.parse(raw);
    } catch (e) {
      errors[f.name] = [`Not valid JSON: ${e.message}`];
      return undefined;
    }
  }
  if (f.required) return el.value;
  return raw === "" ? null : el.value;
}

function form(panel, project, profiles, dream) {
  const controls = {};
  const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1", hidden: true });
  const sets = FIELDSETS.map(([key, legend]) => {
    if (key === "categories") return (controls.custom_categories = categoriesControl(project.custom_categories));
    const fs = h("fieldset", { class: `settings-${key}` }, h("legend", {}, legend));
    for (const f of FIELDS.filter((x) => x.fieldset === key)) {
      const el = control(f, project[f.name]);
      controls[f.name] = el;
      fs.append(labelled(f, el));
    }
    return fs;
  });
  // profiles
  const pEnabled = h("input", { type: "checkbox", id: "set-profiles-enabled", "data-setting": "profiles.enabled", checked: profiles.enabled });
  controls["profiles.enabled"] = pEnabled;
  controls.enabled = pEnabled; // the profile route names it `enabled`
  const profileFields = profileTypes(profiles).map((t) => {
    const schema = h("textarea", { id: `set-profiles-${t}-schema`, "data-setting": `profiles.${t}.schema`, rows: t === "user" ? 6 : 3, class: "mono", spellcheck: "false" });
    const own = ownSchema(profiles, t);
    schema.value = own ? JSON.stringify(own, null, 2) : "";
    const instr = h("textarea", { id: `set-profiles-${t}-instructions`, "data-setting": `profiles.${t}.custom_instructions`, rows: 2 });
    instr.value = profiles.entities[t].custom_instructions ?? "";
    controls[`entities.${t}.schema`] = schema;
    controls[`entities.${t}.custom_instructions`] = instr;
    const body = [
      h("div", { class: "field" }, h("label", { for: schema.id }, `${t} profile schema (JSON Schema)`), schema,
        h("p", { class: "help" }, t === "user" ? "Empty: memserver's default user schema." : "Empty: no profiles for this entity type.")),
      h("div", { class: "field" }, h("label", { for: instr.id }, `${t} profile instructions`), instr),
    ];
    return t === "user" ? body : h("details", {}, h("summary", {}, `${t} profiles`), body);
  });
  // dream
  const dEnabled = h("input", { type: "checkbox", id: "set-dream-reflection_enabled", "data-setting": "dream.reflection_enabled", checked: dream.reflection_enabled, "aria-describedby": "set-dream-help" });
  controls["dream.reflection_enabled"] = dEnabled;
  const s = dream.synthesis || {};
  const save = h("button", { type: "submit", "data-write": "" }, "Save settings");
  const el = h("form", { id: "settings-form", novalidate: true },
    summary,
    sets,
    h("fieldset", { class: "settings-profiles" }, h("legend", {}, "Profiles"),
      h("div", { class: "field check" }, pEnabled, h("label", { for: pEnabled.id }, "Generate user profiles")),
      profileFields),
    h("fieldset", { class: "settings-dream" }, h("legend", {}, "Dream"),
      h("div", { class: "field check" }, dEnabled, h("label", { for: dEnabled.id }, "Synthesis: distil recurring threads into pattern memories")),
      h("p", { id: "set-dream-help", class: "help" },
        dream.reflection_enabled ? `On since ${when(dream.enabled_at)}. ` : "",
        `A run per user every ${Math.round((s.cadence_seconds || 0) / 86400)} days once ${s.min_memories ?? "?"} new memories arrived (one LLM call each). Supersede and merge are always on.`)),
    h("div", { class: "actions" }, save),
  );
  el.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    await submit(panel, { project, profiles, dream, controls, summary });
  });
  return el;
}

async function submit(panel, { project, profiles, dream, controls, summary }) {
  clearFieldErrors(summary, controls);
  const errors = {};
  const patch = {};
  for (const f of FIELDS) {
    const v = readValue(f, controls[f.name], errors);
    if (v !== undefined && JSON.stringify(v) !== JSON.stringify(project[f.name] ?? null)) patch[f.name] = v;
  }
  const prof = {};
  if (controls["profiles.enabled"].checked !== profiles.enabled) prof.enabled = controls["profiles.enabled"].checked;
  for (const t of profileTypes(profiles)) {
    const change = {};
    const raw = controls[`entities.${t}.schema`].value.trim();
    let schema = null;
    if (raw) {
      try {
        schema = JSON.parse(raw);
      } catch (e) {
        errors[`entities.${t}.schema`] = [`Not valid JSON: ${e.message}`];
      }
    }
    if (JSON.stringify(schema) !== JSON.stringify(ownSchema(profiles, t))) change.schema = schema;
    const ci = controls[`entities.${t}.custom_instructions`].value.trim() || null;
    if (ci !== (profiles.entities[t].custom_instructions ?? null)) change.custom_instructions = ci;
    if (Object.keys(change).length) (prof.entities ||= {})[t] = change;
  }
  const reflection = controls["dream.reflection_enabled"].checked;
  if (Object.keys(errors).length) {
    showFieldErrors(summary, controls, errors, "Nothing was saved: fix these first");
    return;
  }
  const done = [];
  const notes = [];
  try {
    if (Object.keys(patch).length) {
      const r = await api("PATCH", `${projectPath()}/`, patch);
      done.push(...Object.keys(patch));
      for (const n of r.notes || []) notes.push(`${n.setting}: ${n.note}`);
    }
    if (Object.keys(prof).length) {
      await api("POST", "/v2/profiles/settings/", prof);
      done.push("profiles");
    }
    if (reflection !== dream.reflection_enabled) {
      try {
        await api("PATCH", `${projectPath()}/dream/config/`, { reflection_enabled: reflection });
      } catch (e) {
        if (e instanceof ApiError && !Object.keys(e.fieldErrors).length) e.fieldErrors["dream.reflection_enabled"] = [e.message];
        throw e;
      }
      done.push("dream");
    }
  } catch (e) {
    if (!(e instanceof ApiError) || e.status === 401) {
      await guarded("Saving", () => Promise.reject(e));
      return;
    }
    const fields = Object.keys(e.fieldErrors).length ? e.fieldErrors : { "": [e.message] };
    const intro = done.length ? `Saved ${done.join(", ")}; the rest was refused (${e.status})` : `Nothing was saved: the API refused it (${e.status})`;
    showFieldErrors(summary, controls, fields, intro);
    return;
  }
  await load(panel);
  setStatus(done.length ? `Saved: ${done.join(", ")}.${notes.length ? ` Notes: ${notes.join(" ")}` : ""}` : "Nothing changed.");
}
