// Backup (#/settings/backup): export the project as a JSONL file, import one into an empty project, each with
// progress (the export's Content-Length; the import's upload, then the server's NDJSON phases).
import { h, setStatus } from "../core/dom.js";
import { ApiError, download, upload } from "../core/api.js";
import { session } from "../core/session.js";
import { guarded, progressBar } from "../core/ui.js";

const SCOPE = "Memories with their history, entities, events and settings are carried; the graph is not (it is rebuilt by new adds with the graph on).";

export async function load(panel) {
  if (!session.can.write) {
    panel.replaceChildren(h("p", { class: "note" }, "Export and import need a project OWNER's key."), h("p", { class: "help" }, SCOPE));
    return;
  }
  panel.replaceChildren(exportPart(), importPart());
}

const mb = (n) => `${(n / 1048576).toFixed(n < 10485760 ? 2 : 1)} MB`;

function exportPart() {
  const bar = progressBar("export-progress", "Not started.");
  bar.el.hidden = true;
  const button = h("button", { type: "button", id: "export-button", "data-write": "" }, "Export project");
  button.addEventListener("click", async () => {
    button.disabled = true;
    bar.el.hidden = false;
    bar.set(null, null, "Preparing the export…");
    let blob = null;
    const ok = await guarded("Exporting", async () => {
      blob = await download("/v1/memserver/export/", {
        onHeaders: (total) => bar.set(0, total || 1, total ? `Downloading 0 of ${mb(total)}…` : "Downloading…"),
        onProgress: (got, total) => bar.set(total ? got : null, total || 1, total ? `Downloading ${mb(got)} of ${mb(total)}…` : `Downloading ${mb(got)}…`),
      });
    });
    button.disabled = false;
    if (!ok) {
      bar.el.hidden = true;
      return;
    }
    bar.set(blob.size, blob.size || 1, `Export ready: ${mb(blob.size)}.`);
    const url = URL.createObjectURL(blob);
    const name = `memserver-${session.ping.project_name}.jsonl`.replace(/[^\w.-]+/g, "_");
    const a = h("a", { href: url, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    setStatus(`Exported ${mb(blob.size)} as ${name}.`);
  });
  return h("section", { "aria-labelledby": "export-title" },
    h("h2", { id: "export-title" }, "Export"),
    h("p", {}, "Downloads the whole project as one JSONL file (the first line is a header). ", SCOPE),
    h("div", { class: "toolbar" }, button), bar.el);
}

function importPart() {
  const file = h("input", { type: "file", id: "import-file", accept: ".jsonl,.json,.ndjson,application/x-ndjson,application/json", "aria-describedby": "import-help" });
  const bar = progressBar("import-progress", "Not started.");
  bar.el.hidden = true;
  const result = h("div", { id: "import-result", class: "card", hidden: true });
  // One line per phase the server reports (the embedding line counts up in place): what happened, in order.
  const log = h("ol", { id: "import-log", class: "phase-log", "aria-label": "Import phases" });
  const phase = (key, text) => {
    let item = log.querySelector(`[data-phase="${key}"]`);
    if (!item) log.append((item = h("li", { "data-phase": key })));
    item.textContent = text;
  };
  const button = h("button", { type: "submit", id: "import-button", "data-write": "" }, "Import file");
  const form = h("form", { novalidate: true },
    h("label", { for: file.id }, "Export file (JSONL) or a Mem0 get_all dump"), file,
    h("p", { id: "import-help", class: "help" }, "Into an empty project only; everything is written in one transaction, or nothing is."),
    h("div", { class: "toolbar" }, button));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const chosen = file.files[0];
    result.hidden = true;
    if (!chosen) {
      setStatus("Choose a file to import first.");
      file.focus();
      return;
    }
    button.disabled = true;
    log.replaceChildren();
    bar.el.hidden = false;
    bar.set(0, chosen.size || 1, `Uploading 0 of ${mb(chosen.size)}…`);
    let last = null;
    await guarded("Importing", async () => {
      last = await upload("/v1/memserver/import/", chosen, {
        onUpload: (sent, total) => {
          bar.set(sent, total || 1, sent >= total ? "Uploaded; checking the file…" : `Uploading ${mb(sent)} of ${mb(total)}…`);
          if (sent >= total) phase("upload", "Uploaded");
        },
        onLine: (line) => {
          if (line.phase === "embedding") {
            // total 0: the file carries every vector (same embedding model), nothing is computed
            const text = line.total ? `Embedding memories: ${line.done} of ${line.total}` : "Embeddings: all carried by the file";
            bar.set(line.done, line.total || 1, `${text}…`);
            phase("embedding", text);
          } else if (line.phase === "writing") {
            bar.set(null, null, "Writing everything in one transaction…");
            phase("writing", "Writing everything in one transaction");
          } else if (line.message) phase("done", line.message);
          else if (line.error) phase("done", `Failed: ${line.error} (nothing was written)`);
        },
      });
      if (last && last.error) throw new ApiError(last.status || 500, last.error, last);
    });
    button.disabled = false;
    if (!last || last.error) {
      bar.el.hidden = true;
      return;
    }
    const counts = Object.entries(last.imported || {}).map(([k, v]) => `${v} ${k}`).join(", ");
    bar.set(1, 1, `${last.message}: ${counts || "nothing"}.`);
    result.replaceChildren(h("p", {}, `${last.message}: ${counts || "nothing"}. `, h("a", { href: "#/memories" }, "See the memories")));
    result.hidden = false;
    setStatus(`${last.message}.`);
  });
  return h("section", { "aria-labelledby": "import-title" },
    h("h2", { id: "import-title" }, "Import"), form, bar.el, log, result);
}
