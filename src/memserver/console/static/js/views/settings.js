// Settings: the key's org and project, then four tabs: Project, Webhooks, Access, Backup (#/settings/<tab>).
import { $, h } from "../core/dom.js";
import { replace } from "../core/router.js";
import { session } from "../core/session.js";
import { tabs } from "../core/ui.js";

const TABS = [["project", "Project"], ["webhooks", "Webhooks"], ["access", "Access"], ["backup", "Backup"]];
const PANELS = {
  project: () => import("./settings-project.js"),
  webhooks: () => import("./webhooks.js"),
  access: () => import("./access.js"),
  backup: () => import("./backup.js"),
};

export async function load(params, [tab = "project", ...rest]) {
  const who = session.ping;
  $("settings-out").replaceChildren(h("dl", { class: "kv" },
    h("dt", {}, "organization"), h("dd", {}, `${who.org_name} (${who.org_id})`),
    h("dt", {}, "project"), h("dd", {}, `${who.project_name} (${who.project_id})`),
    h("dt", {}, "key owner"), h("dd", {}, who.user_email || "—"),
    h("dt", {}, "this key"), h("dd", { id: "key-role" }, describeKey(who)),
  ));
  const name = PANELS[tab] ? tab : "project";
  let shown = null;
  const { list, panel } = tabs("Settings", TABS, name, (chosen) => {
    if (chosen !== shown) replace(`/settings/${chosen}`);
    show(chosen, [], params);
  });
  const show = async (chosen, args, p) => {
    shown = chosen;
    panel.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    const mod = await PANELS[chosen]();
    if (shown !== chosen) return;
    await mod.load(panel, p, args);
  };
  $("settings-tabs").replaceChildren(list, panel);
  await show(name, rest, params);
}

function describeKey(p) {
  const role = p.role === "OWNER" ? "OWNER: reads and writes this project" : "READER: reads only";
  const scope = p.key_scope === "org" ? `organization key (org role ${p.org_role})` : "project key";
  const bound = p.bound_user_id ? `, bound to user ${p.bound_user_id}` : p.bound_agent_id ? `, bound to agent ${p.bound_agent_id}` : "";
  return `${role}; ${scope}${p.key_role ? `, capped to ${p.key_role}` : ""}${bound}`;
}
