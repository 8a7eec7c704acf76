// memserver's REST API, with the session's key. Errors carry the API's own words and, on field-keyed 400s,
// each field's messages (`errors: {field: [msg]}`; webhooks answer Mem0's `{"url": ["..."]}` at the top level).
import { apiKey } from "./session.js";

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
    this.fieldErrors = fieldErrorsOf(body);
  }
}

const NOT_FIELDS = new Set(["detail", "message", "error", "request_id", "errors", "status"]);

export function fieldErrorsOf(body) {
  if (!body || typeof body !== "object") return {};
  const out = {};
  if (body.errors && typeof body.errors === "object") Object.assign(out, body.errors);
  for (const [k, v] of Object.entries(body)) {
    if (!NOT_FIELDS.has(k) && Array.isArray(v) && v.every((m) => typeof m === "string")) out[k] = v;
  }
  return out;
}

export function messageOf(body, res) {
  const raw = body && (body.detail || body.error || body.message);
  if (typeof raw === "string") return raw;
  if (raw && typeof raw.message === "string") return raw.message; // the profile routes' {"error": {code, message}}
  return res ? `${res.status} ${res.statusText}` : "unknown error";
}

function headers(key, extra) {
  return { Authorization: `Token ${key || apiKey() || ""}`, ...extra };
}

export async function api(method, path, body, { key, signal } = {}) {
  const init = { method, headers: headers(key), signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, `memserver is unreachable: ${err.message}`, null);
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) throw new ApiError(res.status, messageOf(data, res), data);
  return data;
}

/** A download with progress: `onProgress(received, total)`; resolves to a Blob. `total` is the Content-Length
 * (null when the server sent none). */
export async function download(path, { onHeaders, onProgress, signal } = {}) {
  let res;
  try {
    res = await fetch(path, { headers: headers(), signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, `memserver is unreachable: ${err.message}`, null);
  }
  if (!res.ok) {
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    throw new ApiError(res.status, messageOf(data, res), data);
  }
  const total = Number(res.headers.get("Content-Length")) || null;
  if (onHeaders) onHeaders(total);
  const reader = res.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    if (onProgress) onProgress(received, total);
  }
  return new Blob(chunks, { type: res.headers.get("Content-Type") || "application/octet-stream" });
}

/** POST a file with XMLHttpRequest (fetch has no upload progress), reading an NDJSON answer line by line.
 * `onUpload(sent, total)`, `onLine(obj)`; resolves to the last line. A 4xx before the stream is an ApiError. */
export function upload(path, file, { onUpload, onLine, accept = "application/x-ndjson" } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    let seen = 0;
    let last = null;
    const drain = (final) => {
      const text = xhr.responseText;
      let end = text.lastIndexOf("\n");
      if (final) end = text.length;
      if (end <= seen) return;
      for (const raw of text.slice(seen, end).split("\n")) {
        if (!raw.trim()) continue;
        try {
          last = JSON.parse(raw);
        } catch {
          continue;
        }
        if (onLine) onLine(last);
      }
      seen = end;
    };
    xhr.open("POST", path);
    xhr.setRequestHeader("Authorization", `Token ${apiKey() || ""}`);
    xhr.setRequestHeader("Content-Type", "application/x-ndjson");
    xhr.setRequestHeader("Accept", accept);
    xhr.upload.onprogress = (e) => onUpload && onUpload(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onprogress = () => xhr.status === 200 && drain(false);
    xhr.onerror = () => reject(new ApiError(0, "memserver is unreachable", null));
    xhr.onload = () => {
      if (xhr.status !== 200) {
        let data = null;
        try {
          data = JSON.parse(xhr.responseText);
        } catch {
          data = null;
        }
        reject(new ApiError(xhr.status, messageOf(data, { status: xhr.status, statusText: xhr.statusText }), data));
        return;
      }
      drain(true);
      resolve(last);
    };
    xhr.send(file);
  });
}

export const q = (params) => {
  const out = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") out.set(k, v);
  const text = out.toString();
  return text ? `?${text}` : "";
};
