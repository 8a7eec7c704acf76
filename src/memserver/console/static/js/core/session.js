// The signed-in key (sessionStorage only: closing the tab forgets it) and what it may do, from /v1/ping/.
const KEY_STORAGE = "memserver.apiKey";

export const session = {
  ping: null,
  // Write controls are created only when allowed (and the API refuses them anyway: x-memserver-role).
  can: { write: false, orgAdmin: false },
  onExpired: null, // set by main: a 401 during the session signs out with the API's message
};

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function storeKey(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
  session.ping = null;
  session.can = { write: false, orgAdmin: false };
}

export function setPing(ping) {
  session.ping = ping;
  session.can = {
    write: ping.role === "OWNER",
    orgAdmin: ping.key_scope === "org" && ping.org_role === "OWNER" && ping.key_role !== "READER",
  };
}

/** The project's path under the orgs API: `/api/v1/orgs/organizations/{org}/projects/{project}`. */
export function projectPath() {
  const p = session.ping;
  return `/api/v1/orgs/organizations/${encodeURIComponent(p.org_id)}/projects/${encodeURIComponent(p.project_id)}`;
}

export function orgPath() {
  return `/api/v1/orgs/organizations/${encodeURIComponent(session.ping.org_id)}`;
}
