// Node positions for the graph page: vendored d3-force (unmodified UMD files under /console/vendor/d3/, loaded
// on the first graph visit by <script src>, which the CSP's script-src 'self' allows) with a fixed tick budget.
// d3-force draws its randomness from its own LCG, so one data set always gives the same picture.
const FILES = ["d3-dispatch", "d3-quadtree", "d3-timer", "d3-force"]; // each UMD file needs the ones before it
let loading = null;

function script(name) {
  return new Promise((resolve, reject) => {
    const el = document.createElement("script");
    el.src = `/console/vendor/d3/${name}.min.js`;
    el.onload = resolve;
    el.onerror = () => reject(new Error(`could not load ${name}`));
    document.head.append(el);
  });
}

export function loadD3() {
  if (!loading) {
    loading = FILES.reduce((p, name) => p.then(() => script(name)), Promise.resolve()).then(() => window.d3);
    loading.catch(() => {
      loading = null;
    });
  }
  return loading;
}

/** Positions for `nodes` ({id, center?}) joined by `links` ({source, target} ids), centred on (0, 0).
 * Neighbours start on concentric rings (sorted by the caller), which is already a readable radial picture;
 * forces then untangle it with N = clamp(60 000 / (nodes + links), 30, 300) ticks. Above 2 000 nodes + links
 * the rings are kept as they are: 30 ticks on 2k nodes + 2k links took 606 ms in Chromium (load average 8 on 2
 * cores), which put the first visit of a 2k-relation entity over a second (bench.console_render).
 * Returns Map(id -> {x, y}). */
export async function layout(nodes, links) {
  const ring = 12; // nodes on the first ring; each ring holds 6 more
  let r = 0;
  let onRing = 0;
  let cap = 0;
  let radius = 0;
  const placed = nodes.map((n) => ({ id: n.id }));
  placed.forEach((n, i) => {
    if (nodes[i].center) {
      n.x = n.fx = 0;
      n.y = n.fy = 0;
      return;
    }
    if (onRing >= cap) {
      r += 1;
      cap = ring + 6 * (r - 1);
      onRing = 0;
      radius = 120 * r;
    }
    const angle = (2 * Math.PI * onRing) / cap + r * 0.3;
    n.x = radius * Math.cos(angle);
    n.y = radius * Math.sin(angle);
    onRing += 1;
  });
  if (placed.length + links.length <= 2000 && placed.length > 1) {
    const d3 = await loadD3();
    const sim = d3.forceSimulation(placed)
      .force("link", d3.forceLink(links.map((l) => ({ ...l }))).id((d) => d.id).distance(110).strength(0.4))
      .force("charge", d3.forceManyBody().theta(0.9).strength(-260))
      .force("collide", d3.forceCollide(26))
      .stop();
    const ticks = Math.max(30, Math.min(300, Math.round(60000 / (placed.length + links.length))));
    sim.tick(ticks);
  }
  return new Map(placed.map((n) => [n.id, { x: n.x, y: n.y }]));
}
