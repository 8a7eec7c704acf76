// Access (#/settings/access): the project's and the organization's members with their roles, and the org's API
// keys. Project OWNERs change project members; an org OWNER's org-scoped key changes org members and manages
// keys (created keys are shown once). Refusals (the last OWNER, a bad email) appear where they happened.
import { $, h, setStatus, table, when } from "../core/dom.js";
import { api, ApiError, q } from "../core/api.js";
import { orgPath, projectPath, session } from "../core/session.js";
import { clearFieldErrors, confirmAction, dialog, guarded, secretPanel, showFieldErrors } from "../core/ui.js";

const ROLES = ["OWNER", "READER"];

export async function load(panel) {
  await guarded("Loading members and keys", async () => {
    const [project, org] = await Promise.all([
      api("GET", `${projectPath()}/members/`),
      api("GET", `${orgPath()}/members/`),
    ]);
    const refresh = () => load(panel);
    panel.replaceChildren(
      members("project", "Project members", project.members, session.can.write, refresh),
      members("org", "Organization members", org.members, session.can.orgAdmin, refresh),
      h("section", { "aria-labelledby": "keys-title", id: "keys-section" }, h("h2", { id: "keys-title" }, "API keys")),
    );
    await keys($("keys-section"));
  });
}

/** The calls of one member list: the project's (`?email=` on DELETE) or the org's (JSON bodies). */
function memberCalls(kind) {
  const base = kind === "project" ? `${projectPath()}/members/` : `${orgPath()}/members/`;
  return {
    add: (email, role) => api("POST", base, { email, role }),
    set: (email, role) => api("PUT", base, { email, role }),
    remove: (email) => (kind === "project" ? api("DELETE", `${base}${q({ email })}`) : api("DELETE", base, { email })),
  };
}

function members(kind, title, rows, canEdit, refresh) {
  const calls = memberCalls(kind);
  const id = `${kind}-members`;
  const rowFor = (m) => {
    const err = h("p", { class: "field-error", id: `${id}-${m.email}-error`, role: "alert", hidden: true });
    const fail = (e) => {
      err.textContent = e instanceof ApiError ? `${e.message} (${e.status})` : String(e);
      err.hidden = false;
    };
    let roleCell = m.role;
    let actions = null;
    if (canEdit) {
      const sel = h("select", { "data-write": "", "aria-label": `Role of ${m.email}`, "aria-describedby": err.id },
        ROLES.map((r) => h("option", { value: r }, r)));
      sel.value = m.role;
      sel.addEventListener("change", async () => {
        err.hidden = true;
        try {
          await calls.set(m.email, sel.value);
        } catch (e) {
          sel.value = m.role;
          fail(e);
          return;
        }
        m.role = sel.value;
        setStatus(`${m.email} is now ${sel.value} in the ${kind === "project" ? "project" : "organization"}.`);
      });
      roleCell = sel;
      actions = h("button", { type: "button", class: "link", "data-write": "", "aria-label": `Remove ${m.email} from the ${kind === "project" ? "project" : "organization"}`,
        onclick: async () => {
          const where = kind === "project" ? "this project" : "the organization (and every project of it); their keys stop working";
          if (!(await confirmAction("Remove member?", `${m.email} will be removed from ${where}.`, "Remove"))) return;
          err.hidden = true;
          try {
            await calls.remove(m.email);
          } catch (e) {
            fail(e);
            return;
          }
          await refresh();
          setStatus(`${m.email} removed.`);
        } }, "Remove");
    }
    return h("tr", { "data-email": m.email }, h("td", {}, m.email), h("td", {}, roleCell), canEdit ? h("td", {}, actions, err) : null);
  };
  const cols = canEdit ? ["Email", "Role", "Actions"] : ["Email", "Role"];
  return h("section", { "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, title),
    rows.length ? table(`${id}-table`, null, cols, rows.map(rowFor)) : h("p", { class: "empty" }, "No members."),
    canEdit ? addMemberForm(id, calls, refresh) : null,
  );
}

function addMemberForm(id, calls, refresh) {
  const email = h("input", { id: `${id}-new-email`, type: "email", spellcheck: "false" });
  const role = h("select", { id: `${id}-new-role` }, ROLES.map((r) => h("option", { value: r, selected: r === "READER" }, r)));
  const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1", hidden: true });
  const controls = { email, role };
  const form = h("form", { class: "inline-form", novalidate: true, "data-write": "" },
    summary,
    h("label", { for: email.id }, "New member's email"), email,
    h("label", { for: role.id }, "Role"), role,
    h("button", { type: "submit", "data-write": "" }, "Add member"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFieldErrors(summary, controls);
    try {
      await calls.add(email.value.trim(), role.value);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      showFieldErrors(summary, controls, Object.keys(e.fieldErrors).length ? e.fieldErrors : { "": [e.message] },
        `Not added: the API refused it (${e.status})`);
      return;
    }
    const added = email.value.trim();
    await refresh();
    setStatus(`${added} added.`);
  });
  return form;
}

// -- keys ---------------------------------------------------------------------------------------------
async function keys(section, filter = { project_id: "", include_revoked: false }) {
  if (!session.can.orgAdmin) {
    section.append(h("p", { class: "note", id: "keys-note" },
      "Keys are managed with an organization-scoped key of an org OWNER (or `memserver keys` on the server)."));
    return;
  }
  const [list, projects] = await Promise.all([
    api("GET", `${orgPath()}/keys${q({ project_id: filter.project_id, include_revoked: filter.include_revoked ? "true" : "" })}`),
    api("GET", `${orgPath()}/projects/`),
  ]);
  const redraw = (f) => {
    section.replaceChildren(section.firstChild);
    return guarded("Loading keys", () => keys(section, f));
  };
  const project = h("select", { id: "keys-project" }, h("option", { value: "" }, "All projects"),
    projects.map((p) => h("option", { value: p.project_id }, p.name)));
  project.value = filter.project_id;
  const revoked = h("input", { type: "checkbox", id: "keys-revoked", checked: filter.include_revoked });
  const apply = () => redraw({ project_id: project.value, include_revoked: revoked.checked });
  project.addEventListener("change", apply);
  revoked.addEventListener("change", apply);
  section.append(
    h("div", { class: "toolbar" },
      h("label", { for: project.id }, "Project"), project,
      h("span", { class: "check" }, revoked, h("label", { for: revoked.id }, "Show revoked keys")),
      h("button", { type: "button", "data-write": "", onclick: () => createKey(projects, () => redraw(filter)) }, "Create key")),
    list.keys.length ? table("keys-table", "Keys (the key itself is never shown again: only its prefix)",
      ["Name", "Prefix", "Project", "Email", "Scope", "Role cap", "Bound to", "Created", "Last used", "Revoked", "Actions"],
      list.keys.map((k) => h("tr", { "data-id": k.key_id, class: k.revoked_at ? "revoked" : null },
        h("td", {}, k.name, k.key_id === session.ping.key_id ? " (this key)" : ""),
        h("td", { class: "mono" }, `${k.prefix}…`),
        h("td", {}, k.project_name),
        h("td", {}, k.email),
        h("td", {}, k.scope),
        h("td", {}, k.role || "member's role"),
        h("td", {}, k.bound_user_id ? `user ${k.bound_user_id}` : k.bound_agent_id ? `agent ${k.bound_agent_id}` : "—"),
        h("td", {}, when(k.created_at)),
        h("td", {}, when(k.last_used_at)),
        h("td", {}, k.revoked_at ? when(k.revoked_at) : "—"),
        h("td", {}, k.revoked_at ? null : h("button", { type: "button", class: "link", "data-write": "", "aria-label": `Revoke key ${k.name}`,
          onclick: () => revokeKey(k, () => redraw(filter)) }, "Revoke")),
      ))) : h("p", { class: "empty" }, "No keys match."),
  );
}

async function revokeKey(k, refresh) {
  const own = k.key_id === session.ping.key_id;
  const text = own
    ? `“${k.name}” is the key you are signed in with: revoking it signs you out at once. Clients using it get 401.`
    : `Key “${k.name}” (${k.prefix}…) stops working: clients using it get 401. This cannot be undone.`;
  if (!(await confirmAction("Revoke key?", text, "Revoke"))) return;
  if (!(await guarded("Revoking the key", () => api("DELETE", `${orgPath()}/keys/${encodeURIComponent(k.key_id)}`)))) return;
  if (own && session.onExpired) {
    session.onExpired("Signed out: the key you were signed in with was revoked.");
    return;
  }
  await refresh();
  setStatus(`Key ${k.name} revoked.`);
}

async function createKey(projects, refresh) {
  let created = null;
  await dialog("Create key", (close, id) => {
    const name = h("input", { id: `${id}-name` });
    const project = h("select", { id: `${id}-project_id` }, projects.map((p) => h("option", { value: p.project_id }, p.name)));
    project.value = session.ping.project_id;
    const email = h("input", { id: `${id}-email`, type: "email", spellcheck: "false" });
    email.value = session.ping.user_email || "";
    const scope = h("select", { id: `${id}-scope` },
      h("option", { value: "project" }, "project: this project only"),
      h("option", { value: "org" }, "org: may also manage the organization (if its member is an org OWNER)"));
    const role = h("select", { id: `${id}-role` },
      h("option", { value: "" }, "The member's role in the project"), h("option", { value: "READER" }, "READER (read only)"),
      h("option", { value: "OWNER" }, "OWNER"));
    const user = h("input", { id: `${id}-bind_user_id`, spellcheck: "false" });
    const agent = h("input", { id: `${id}-bind_agent_id`, spellcheck: "false" });
    const controls = { name, project_id: project, email, scope, role, bind_user_id: user, bind_agent_id: agent };
    const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1", hidden: true });
    const lbl = (el, text) => [h("label", { for: el.id }, text), el];
    const form = h("form", { novalidate: true }, summary,
      lbl(name, "Name"), lbl(project, "Project"), lbl(email, "Member's email (a new email becomes a member)"),
      lbl(scope, "Scope"), lbl(role, "Role cap"), lbl(user, "Bind to user id (optional)"), lbl(agent, "Bind to agent id (optional)"),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: () => close(null) }, "Cancel"),
        h("button", { type: "submit", "data-write": "" }, "Create key")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearFieldErrors(summary, controls);
      const body = { name: name.value.trim(), project_id: project.value, email: email.value.trim(), scope: scope.value,
        role: role.value || null };
      if (user.value.trim()) body.bind_user_id = user.value.trim();
      if (agent.value.trim()) body.bind_agent_id = agent.value.trim();
      try {
        created = await api("POST", `${orgPath()}/keys`, body);
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        showFieldErrors(summary, controls, Object.keys(e.fieldErrors).length ? e.fieldErrors : { "": [e.message] },
          `Not created: the API refused it (${e.status})`);
        return;
      }
      close(true);
    });
    return form;
  });
  if (created) {
    const key = created.key;
    created = null;
    await secretPanel("Key created", "Copy this key now: it is never shown again (only its prefix is listed).", key, "API key");
  }
  await refresh();
}
