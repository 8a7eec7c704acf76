// Hash routes (#/view/arg?param=value), so every page has a URL and back/forward work. Each view module is
// loaded on its first visit; focus moves to the page's <h1>; `route:start` marks the start of each visit.
import { ready } from "./dom.js";
import { apiKey } from "./session.js";

const views = {};

export function register(name, loader) {
  views[name] = loader;
}

export function currentRoute() {
  const raw = location.hash.replace(/^#/, "") || "/entities";
  const [path, query] = raw.split("?");
  const [, name, ...args] = path.split("/");
  return { path, name, args: args.map(decodeURIComponent), params: new URLSearchParams(query || "") };
}

export function link(path, params) {
  const qs = params ? new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null)).toString() : "";
  return `#${path}${qs ? `?${qs}` : ""}`;
}

export function go(path, params) {
  const target = link(path, params);
  if (location.hash === target) route();
  else location.hash = target;
}

/** The URL changes without a new visit (a tab, a slider): history.replaceState fires no hashchange. */
export function replace(path, params) {
  history.replaceState(null, "", link(path, params));
}

export function showView(name) {
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${name}`;
  const nav = { memory: "memories", event: "events" }[name] || name;
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.view === nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const title = document.querySelector(`#view-${name} h1`);
  document.title = `${title ? title.textContent : name} · memserver console`;
}

let visit = 0;

export async function route() {
  const { name, args, params } = currentRoute();
  const loader = views[name];
  if (!loader) {
    go("/entities");
    return;
  }
  const mine = ++visit;
  performance.clearMarks("route:start");
  performance.mark("route:start");
  showView(name);
  const mod = await loader();
  if (mine !== visit) return;
  await mod.load(params, args);
  if (mine !== visit || !apiKey()) return; // another visit began, or the session ended (a 401) meanwhile
  showView(name); // the title may have changed with the data
  const title = document.querySelector(`#view-${name} h1`);
  if (title) title.focus({ preventScroll: true });
  await ready(name);
}
