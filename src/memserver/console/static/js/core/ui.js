// Shared widgets, after the WAI-ARIA Authoring Practices: modal dialogs (native <dialog>, focus returned to the
// control that opened them), tabs, the show-once secret panel, pagers, field errors and the error summary.
import { $, h, setStatus, showError } from "./dom.js";
import { ApiError } from "./api.js";
import { session } from "./session.js";

let dialogCount = 0;

/** Run one view's work: show progress, and the API's own error message when it fails. */
export async function guarded(label, fn) {
  showError("");
  setStatus(`${label}…`);
  try {
    await fn();
    setStatus("");
    return true;
  } catch (err) {
    setStatus("");
    if (err instanceof ApiError && err.status === 401 && session.onExpired) {
      session.onExpired(`Signed out: ${err.message}`);
      return false;
    }
    showError(err instanceof ApiError ? `${label} failed (${err.status || "network"}): ${err.message}` : String(err));
    return false;
  }
}

/** A modal dialog built on demand; removed from the document when it closes, focus back on the opener.
 * `build(close)` returns the dialog's content (after its <h2>). Resolves with the value given to close(). */
export function dialog(title, build, { role = "dialog", describedBy } = {}) {
  const opener = document.activeElement;
  const id = `dlg-${++dialogCount}`;
  const el = h("dialog", { id, "aria-labelledby": `${id}-title`, role: role === "dialog" ? null : role });
  let result;
  const close = (value) => {
    result = value;
    el.close();
  };
  el.append(h("h2", { id: `${id}-title` }, title), build(close, id));
  if (describedBy) el.setAttribute("aria-describedby", describedBy);
  return new Promise((resolve) => {
    el.addEventListener("close", () => {
      el.remove();
      if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
      resolve(result);
    });
    document.body.append(el);
    el.showModal();
    const first = el.querySelector("[autofocus], input:not([type=hidden]), select, textarea");
    if (first) first.focus();
  });
}

/** "Are you sure?" in the page's confirm dialog; resolves true when confirmed. Escape or Cancel: false. */
export function confirmAction(title, text, okLabel = "Delete") {
  const box = $("confirm-dialog");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = okLabel;
  const opener = document.activeElement;
  box.returnValue = "";
  return new Promise((resolve) => {
    box.onclose = () => {
      box.onclose = null;
      if (opener && opener.isConnected) opener.focus();
      resolve(box.returnValue === "confirm");
    };
    box.showModal();
  });
}

/** The show-once panel for a new key or webhook secret: the value lives in this dialog's DOM only and is gone
 * when it closes (never stored, never in the URL). Copy uses the Clipboard API, else select + execCommand. */
export function secretPanel(title, intro, secret, label) {
  return dialog(title, (close, id) => {
    const input = h("input", { id: `${id}-secret`, readonly: true, value: secret, class: "mono", spellcheck: "false",
      onfocus: (e) => e.target.select() });
    input.value = secret;
    const copy = async () => {
      try {
        if (navigator.clipboard && window.isSecureContext) await navigator.clipboard.writeText(input.value);
        else {
          input.select();
          if (!document.execCommand("copy")) throw new Error("copy refused");
        }
        setStatus("Copied to the clipboard.");
      } catch (err) {
        input.focus();
        input.select();
        setStatus(`Copy failed (${err.message}): select the text and copy it by hand.`);
      }
    };
    return h("div", {},
      h("p", { id: `${id}-desc`, class: "secret-intro" }, intro),
      h("label", { for: `${id}-secret` }, label),
      input,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: copy }, "Copy"),
        h("button", { type: "button", onclick: () => { input.value = ""; close(true); } }, "I have stored it"),
      ),
    );
  }, { role: "alertdialog" }).then((v) => {
    setStatus("");
    return v;
  });
}

/** Tabs (APG, automatic activation): ←/→/Home/End move and select; `onSelect(name)` renders the panel. */
export function tabs(label, items, selected, onSelect) {
  const list = h("div", { role: "tablist", "aria-label": label, class: "tabs" });
  const panel = h("div", { role: "tabpanel", id: "tabpanel", tabindex: "0", class: "tabpanel" });
  const buttons = items.map(([name, text]) => h("button", {
    type: "button", role: "tab", id: `tab-${name}`, "aria-controls": "tabpanel", "data-tab": name,
  }, text));
  const select = (name, focus) => {
    for (const b of buttons) {
      const on = b.dataset.tab === name;
      b.setAttribute("aria-selected", String(on));
      b.tabIndex = on ? 0 : -1;
      if (on) {
        panel.setAttribute("aria-labelledby", b.id);
        if (focus) b.focus();
      }
    }
    onSelect(name);
  };
  list.addEventListener("keydown", (e) => {
    const i = buttons.indexOf(document.activeElement);
    if (i < 0) return;
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: buttons.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    select(buttons[(next + buttons.length) % buttons.length].dataset.tab, true);
  });
  for (const b of buttons) b.addEventListener("click", () => select(b.dataset.tab, false));
  list.append(...buttons);
  for (const b of buttons) {
    b.setAttribute("aria-selected", String(b.dataset.tab === selected));
    b.tabIndex = b.dataset.tab === selected ? 0 : -1;
    if (b.dataset.tab === selected) panel.setAttribute("aria-labelledby", b.id);
  }
  return { list, panel };
}

export function pager(container, { count, page, pageSize, onPage }) {
  container.replaceChildren();
  const pages = Math.max(1, Math.ceil(count / pageSize));
  if (pages <= 1) return;
  container.append(
    h("button", { type: "button", class: "secondary", disabled: page <= 1, onclick: () => onPage(page - 1) }, "← Previous"),
    h("span", { "aria-live": "polite" }, `Page ${page} of ${pages}`),
    h("button", { type: "button", class: "secondary", disabled: page >= pages, onclick: () => onPage(page + 1) }, "Next →"),
  );
}

/** Each API field message under its control (`aria-invalid`, `aria-describedby`), and a summary
 * (`role="alert"`, focused) listing them, with links to the fields. `controls`: field name -> element. */
export function showFieldErrors(summary, controls, errors, intro) {
  clearFieldErrors(summary, controls);
  const items = [];
  for (const [field, messages] of Object.entries(errors)) {
    const text = messages.join(" ");
    const control = controls[field];
    if (control) {
      const msgId = `${control.id}-error`;
      control.setAttribute("aria-invalid", "true");
      control.setAttribute("aria-describedby", [control.getAttribute("aria-describedby"), msgId].filter(Boolean).join(" "));
      control.after(h("p", { id: msgId, class: "field-error" }, text));
      items.push(h("li", {}, h("a", { href: `#${control.id}`, onclick: (e) => { e.preventDefault(); control.focus(); } }, text)));
    } else {
      items.push(h("li", {}, field ? `${field}: ${text}` : text));
    }
  }
  summary.replaceChildren(h("h2", {}, intro), h("ul", {}, items));
  summary.hidden = false;
  summary.focus();
}

export function clearFieldErrors(summary, controls) {
  summary.hidden = true;
  summary.replaceChildren();
  for (const control of Object.values(controls)) {
    if (!control) continue;
    control.removeAttribute("aria-invalid");
    const msgId = `${control.id}-error`;
    const rest = (control.getAttribute("aria-describedby") || "").split(" ").filter((x) => x && x !== msgId);
    if (rest.length) control.setAttribute("aria-describedby", rest.join(" "));
    else control.removeAttribute("aria-describedby");
    document.getElementById(msgId)?.remove();
  }
}

/** A labelled <progress> and a line of text under it. */
export function progressBar(id, label) {
  const bar = h("progress", { id, "aria-labelledby": `${id}-label` });
  const text = h("p", { id: `${id}-label`, class: "progress-text" }, label);
  return {
    el: h("div", { class: "progress" }, text, bar),
    set(value, max, line) {
      if (value == null) bar.removeAttribute("value");
      else {
        bar.max = max;
        bar.value = value;
      }
      if (line) text.textContent = line;
    },
  };
}

export function field(id, label, control, help) {
  control.id = id;
  if (help) control.setAttribute("aria-describedby", `${id}-help`);
  return h("div", { class: "field" },
    h("label", { for: id }, label),
    control,
    help ? h("p", { id: `${id}-help`, class: "help" }, help) : null,
  );
}
