// Bar charts per day in plain SVG (a screen reader cannot read a canvas; this is smaller than a charting
// library and themed by CSS). Each chart is a <figure>: the SVG (role="img", a computed summary), a legend in
// words, and a "Show table" toggle with the exact numbers, which is the keyboard and screen-reader path.
import { h, s, table } from "../core/dom.js";

const W = 760;
const H = 220;
const M = { top: 12, right: 12, bottom: 28, left: 56 };

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const f of [1, 2, 5, 10]) if (f * p >= v) return f * p;
  return 10 * p;
}

// One formatter each, reused: toLocaleString() builds a new Intl formatter per call, and a year of five charts
// formats ~15 000 values: the 365-day page took 3 445 ms (median) with a formatter per call, 719 ms with these
// (bench.console_render --quick, load average 10-12 on 2 cores).
const NUM = new Intl.NumberFormat();
const SHORT = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
const LONG = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" });
const num = (v) => (v == null ? "—" : NUM.format(v));
const dateOf = (value) => new Date(`${value}T00:00:00`);
const shortDay = (value) => SHORT.format(dateOf(value));
const day = (value) => LONG.format(dateOf(value));

/** The summary a screen reader hears: total, and the busiest day, per series. */
export function summaryOf(title, days, series) {
  const span = days.length ? `${shortDay(days[0])}–${shortDay(days[days.length - 1])}` : "";
  const parts = series.map((x) => {
    const counted = x.values.map((v, i) => [v, i]).filter(([v]) => v != null);
    if (!counted.length) return `${x.label}: not counted yet`;
    const total = counted.reduce((a, [v]) => a + v, 0);
    const [most, at] = counted.reduce((a, b) => (b[0] > a[0] ? b : a));
    const gap = counted.length < days.length ? ` (${days.length - counted.length} days not counted yet)` : "";
    return `${x.label}: ${num(total)} in total${most > 0 ? `, most ${num(most)} on ${shortDay(days[at])}` : ""}${gap}`;
  });
  return `${title} per day, ${span}. ${parts.join("; ")}.`;
}

/** `series`: [{key, label, values: (number|null)[]}] over `days` (YYYY-MM-DD). null is a gap, not a zero. */
export function barChart({ id, title, days, series, note }) {
  const max = niceMax(Math.max(0, ...series.flatMap((x) => x.values.filter((v) => v != null))));
  const iw = W - M.left - M.right;
  const ih = H - M.top - M.bottom;
  const band = iw / Math.max(1, days.length);
  const bw = Math.max(1, (band * 0.8) / series.length);
  const y = (v) => M.top + ih - (v / max) * ih;
  const summary = summaryOf(title, days, series);
  const svg = s("svg", { id: `${id}-svg`, class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-labelledby": `${id}-svg-title`, "aria-describedby": `${id}-svg-desc` },
  s("title", { id: `${id}-svg-title` }, title), s("desc", { id: `${id}-svg-desc` }, summary));
  for (let i = 0; i <= 4; i += 1) {
    const v = (max * i) / 4;
    svg.append(s("line", { x1: M.left, x2: W - M.right, y1: y(v), y2: y(v), class: i ? "grid" : "axis", "data-contrast": i ? null : "graphic" }),
      s("text", { x: M.left - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" }, num(Math.round(v * 100) / 100)));
  }
  const every = days.length <= 14 ? 1 : 7;
  days.forEach((d, i) => {
    const x0 = M.left + i * band;
    if ((days.length - 1 - i) % every === 0) {
      svg.append(s("text", { x: x0 + band / 2, y: H - 8, "text-anchor": "middle", class: "tick" }, shortDay(d)));
    }
    if (series.every((x) => x.values[i] == null)) {
      svg.append(s("rect", { x: x0, y: M.top, width: band, height: ih, class: "gap", "data-day": d }, s("title", {}, `${day(d)}: not counted yet`)));
      return;
    }
    series.forEach((x, j) => {
      const v = x.values[i];
      if (v == null) return;
      svg.append(s("rect", { x: x0 + band * 0.1 + j * bw, y: y(v), width: bw, height: M.top + ih - y(v), class: `cbar s${j}`,
        "data-contrast": "graphic", "data-day": d, "data-series": x.key }, s("title", {}, `${x.label}, ${day(d)}: ${num(v)}`)));
    });
  });
  const tableId = `${id}-table`;
  const tbl = table(tableId, `${title} per day`, ["Day", ...series.map((x) => x.label)],
    days.map((d, i) => h("tr", { "data-day": d }, h("th", { scope: "row" }, day(d)),
      series.map((x) => h("td", { class: "num", "data-series": x.key }, x.values[i] == null ? "not counted" : num(x.values[i]))))),
    { hidden: true });
  const toggle = h("button", { type: "button", class: "secondary", "aria-pressed": "false", "aria-controls": tableId }, "Show table");
  toggle.addEventListener("click", () => {
    const on = tbl.hidden;
    tbl.hidden = !on;
    toggle.setAttribute("aria-pressed", String(on));
  });
  return h("figure", { class: "chart-figure", id, "aria-labelledby": `${id}-caption` },
    h("figcaption", { id: `${id}-caption` }, h("strong", {}, title), note ? h("span", { class: "muted" }, ` — ${note}`) : null),
    svg,
    h("ul", { class: "chart-legend" }, series.map((x, j) => h("li", {}, h("span", { class: `swatch s${j}`, "aria-hidden": "true" }), x.label))),
    h("p", { class: "chart-summary muted" }, summary),
    toggle, tbl);
}
