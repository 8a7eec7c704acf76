// Filter forms whose values live in the URL: filled from the route's params, submitted as a new route.
import { go } from "../core/router.js";

export function fillForm(form, params) {
  for (const el of form.elements) {
    if (!el.name || !params.has(el.name)) continue;
    if (el.type === "checkbox") el.checked = params.get(el.name) === "true";
    else el.value = params.get(el.name);
  }
}

export function formParams(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    out[el.name] = el.type === "checkbox" ? (el.checked ? "true" : "") : el.value.trim();
  }
  return out;
}

const wired = new WeakSet();

/** Submitting `form` navigates to `path` with its values (page 1 unless `keepPage`). Wired once. */
export function submitTo(form, path, { paged = true } = {}) {
  if (wired.has(form)) return;
  wired.add(form);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    go(path, paged ? { ...formParams(form), page: 1 } : formParams(form));
  });
}
