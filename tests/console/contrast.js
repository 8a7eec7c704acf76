// WCAG 2.x AA contrast of what is on screen, injected by the tests with page.evaluate (not subject to the page's
// CSP). Text (1.4.3): every visible element with a direct non-blank text node, its `color` (`fill` for SVG text)
// composited over the effective background (ancestors' translucent backgrounds composited down to the first
// opaque one, the page's white below; ancestors' opacity multiplied into the text's alpha): >= 4.5, or >= 3 for
// large text (>= 24 px, or >= 18.66 px and bold). Graphics (1.4.11): elements marked data-contrast="graphic"
// (their stroke, fill or border colour) and the focused element's outline: >= 3. An ancestor with a
// background-image cannot be judged: it is reported as a failure, never guessed. Disabled controls are exempt.
// Returns the failures: [{selector, kind, fg, bg, ratio, need}].
() => {
  const parse = (c) => {
    const m = /rgba?\(([^)]+)\)/.exec(c || "");
    if (!m) return null;
    const p = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const over = (top, below) => ({
    r: top.r * top.a + below.r * (1 - top.a),
    g: top.g * top.a + below.g * (1 - top.a),
    b: top.b * top.a + below.b * (1 - top.a),
    a: 1,
  });
  const lum = ({ r, g, b }) => {
    const f = (v) => {
      const x = v / 255;
      return x <= 0.04045 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const ratio = (a, b) => {
    const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const hex = (c) => `#${[c.r, c.g, c.b].map((v) => Math.round(v).toString(16).padStart(2, "0")).join("")}`;
  const describe = (el) => {
    const parts = [];
    for (let n = el; n && n.nodeType === 1 && parts.length < 4; n = n.parentElement) {
      let p = n.tagName.toLowerCase();
      if (n.id) {
        parts.unshift(`${p}#${n.id}`);
        break;
      }
      const cls = typeof n.className === "string" ? n.className : n.getAttribute("class");
      if (cls) p += `.${cls.trim().split(/\s+/).join(".")}`;
      parts.unshift(p);
    }
    return parts.join(" > ");
  };
  const failures = [];
  const backgroundOf = (el) => {
    const layers = [];
    let opacity = 1;
    for (let n = el; n; n = n.parentElement) {
      const cs = getComputedStyle(n);
      opacity *= Number(cs.opacity);
      if (cs.backgroundImage && cs.backgroundImage !== "none") return { error: `background-image on ${describe(n)}` };
      const bg = parse(cs.backgroundColor);
      if (bg && bg.a > 0 && !layers.some((l) => l.a >= 1)) layers.push(bg);
    }
    let base = { r: 255, g: 255, b: 255, a: 1 };
    for (let i = layers.length - 1; i >= 0; i -= 1) base = over(layers[i], base);
    return { bg: base, opacity };
  };
  const check = (el, kind, colour, need, what = el) => {
    const fg = parse(colour);
    if (!fg) return;
    const { bg, opacity, error } = backgroundOf(el);
    if (error) {
      failures.push({ selector: describe(what), kind, fg: colour, bg: error, ratio: 0, need });
      return;
    }
    const shown = over({ ...fg, a: fg.a * opacity }, bg);
    const r = ratio(shown, bg);
    if (r < need) failures.push({ selector: describe(what), kind, fg: hex(shown), bg: hex(bg), ratio: Math.round(r * 100) / 100, need });
  };
  const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility === "visible";
  for (const el of document.querySelectorAll("body *")) {
    if (!visible(el) || el.closest(":disabled, [inert], title, desc, script, style, option")) continue;
    const hasText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (hasText) {
      const cs = getComputedStyle(el);
      const size = parseFloat(cs.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(cs.fontWeight) >= 700);
      check(el, "text", el instanceof SVGElement ? cs.fill : cs.color, large ? 3 : 4.5);
    }
    if (el.dataset && el.dataset.contrast === "graphic") {
      // a graphic is judged against what is around it: its parent's effective background
      const cs = getComputedStyle(el);
      const filled = (c) => c && c !== "none" && (parse(c) || { a: 0 }).a > 0;
      let colour;
      if (el instanceof SVGElement) colour = filled(cs.fill) && !/^(line|polyline|path)$/.test(el.tagName) ? cs.fill : cs.stroke;
      else colour = filled(cs.backgroundColor) ? cs.backgroundColor : cs.borderTopColor;
      check(el.parentElement, "graphic", colour, 3, el);
    }
  }
  const focused = document.activeElement;
  if (focused && focused !== document.body && visible(focused)) {
    const cs = getComputedStyle(focused);
    if (cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) > 0) check(focused.parentElement, "focus outline", cs.outlineColor, 3, focused);
  }
  return failures;
}
