// Usage over time: memories added/updated/deleted, searches, LLM calls and tokens, failures, per day in the
// browser's time zone, from GET /v1/memserver/usage/ (every day present; searches null before counting began).
import { $, day, h, num } from "../core/dom.js";
import { api, q } from "../core/api.js";
import { guarded } from "../core/ui.js";
import { barChart } from "../draw/chart.js";
import { fillForm, submitTo } from "./forms.js";

const PERIODS = [7, 30, 90, 365];

function isoDay(d) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

export async function load(params) {
  const form = $("usage-form");
  submitTo(form, "/usage", { paged: false });
  fillForm(form, params);
  const days = PERIODS.includes(Number(params.get("days"))) ? Number(params.get("days")) : 30;
  form.elements.days.value = String(days);
  const out = $("usage-out");
  out.replaceChildren();
  const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const today = new Date();
  const first = new Date(today.getFullYear(), today.getMonth(), today.getDate() - (days - 1));
  await guarded("Loading usage", async () => {
    const u = await api("GET", `/v1/memserver/usage/${q({ from: isoDay(first), to: isoDay(today), tz })}`);
    const s = u.series;
    const t = u.totals;
    const since = u.searches_counted_since;
    out.replaceChildren(
      h("p", { class: "muted", id: "usage-range" }, `${day(u.from)} – ${day(u.to)}, days in ${u.tz}.`),
      h("dl", { class: "kv totals", id: "usage-totals" },
        [["memories added", t.memories_added], ["memories updated", t.memories_updated], ["memories deleted", t.memories_deleted],
          ["searches", t.searches], ["LLM calls", t.llm_calls], ["prompt tokens", t.prompt_tokens],
          ["completion tokens", t.completion_tokens],
          ["failures", t.failed_adds + t.failed_jobs + t.failed_deliveries]].map(([k, v]) => [h("dt", {}, k), h("dd", {}, num(v))])),
      h("div", { class: "charts" },
        barChart({ id: "chart-memories", title: "Memories", days: u.days, series: [
          { key: "memories_added", label: "added", values: s.memories_added },
          { key: "memories_updated", label: "updated", values: s.memories_updated },
          { key: "memories_deleted", label: "deleted", values: s.memories_deleted }] }),
        barChart({ id: "chart-searches", title: "Searches", days: u.days,
          note: since ? `counted since ${new Date(since).toLocaleString()}; approximate` : "not counted yet",
          series: [{ key: "searches", label: "searches", values: s.searches }] }),
        barChart({ id: "chart-llm", title: "LLM calls", days: u.days,
          series: [{ key: "llm_calls", label: "LLM calls", values: s.llm_calls }] }),
        barChart({ id: "chart-tokens", title: "Tokens", days: u.days, series: [
          { key: "prompt_tokens", label: "prompt tokens", values: s.prompt_tokens },
          { key: "completion_tokens", label: "completion tokens", values: s.completion_tokens }] }),
        barChart({ id: "chart-failures", title: "Failures", days: u.days, series: [
          { key: "failed_adds", label: "failed adds", values: s.failed_adds },
          { key: "failed_jobs", label: "failed jobs", values: s.failed_jobs },
          { key: "failed_deliveries", label: "failed webhook deliveries", values: s.failed_deliveries }] }),
      ),
    );
  });
}
