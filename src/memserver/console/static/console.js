// memserver console: ES modules over memserver's REST API (no build step, no CDN, no framework).
// This file boots the page: sign-in and sign-out, and the route table; each view is loaded on its first visit.
import { $, setStatus, showError } from "./js/core/dom.js";
import { api, ApiError } from "./js/core/api.js";
import { apiKey, forgetKey, session, setPing, storeKey } from "./js/core/session.js";
import { register, route, showView } from "./js/core/router.js";

for (const name of ["entities", "memories", "search", "memory", "events", "event", "graph", "usage", "settings"]) {
  register(name, () => import(`./js/views/${name}.js`));
}

async function signIn(event) {
  event.preventDefault();
  const key = $("signin-key").value.trim();
  showError("");
  setStatus("Signing in…");
  let who;
  try {
    who = await api("GET", "/v1/ping/", undefined, { key });
  } catch (err) {
    // A refused key here is a failed sign-in, not a session that ended.
    setStatus("");
    showError(err instanceof ApiError ? `Sign-in failed (${err.status || "network"}): ${err.message}` : String(err));
    $("signin-key").focus();
    return;
  }
  setStatus("");
  storeKey(key);
  $("signin-key").value = "";
  signedIn(who);
  await routeOrSignIn();
}

function signedIn(who) {
  setPing(who);
  $("nav").hidden = false;
  $("signout").hidden = false;
  const el = $("whoami");
  el.hidden = false;
  el.textContent = `${who.org_name} / ${who.project_name} · ${who.role === "OWNER" ? "owner" : "read-only"}`;
}

function signOut(message) {
  forgetKey();
  $("nav").hidden = true;
  $("signout").hidden = true;
  $("whoami").hidden = true;
  for (const d of document.querySelectorAll("dialog[open]")) d.close();
  showView("signin");
  showError(message || "");
  setStatus(message ? "" : "Signed out.");
  $("signin-key").focus();
}
session.onExpired = signOut;

async function routeOrSignIn() {
  if (!apiKey()) {
    showView("signin");
    return;
  }
  await route();
}

document.addEventListener("DOMContentLoaded", async () => {
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", () => signOut(""));
  window.addEventListener("hashchange", routeOrSignIn);
  if (apiKey()) {
    try {
      signedIn(await api("GET", "/v1/ping/"));
    } catch (err) {
      signOut(err instanceof ApiError ? `Signed out: ${err.message}` : String(err));
      return;
    }
  }
  await routeOrSignIn();
});
