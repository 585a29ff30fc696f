// The coop's trust graph as SVG drawn here: members on a circle in DID order (deterministic:
// the same graph gives the same picture on every screen), sized by standing, coloured by
// class, attestations as arrows whose opacity is their decayed weight. Each member is a
// focusable node with a title, so the picture is reachable by keyboard; a table says it all
// in words as well.

import { h, shortDid } from "../lib/dom.js";
import { percent } from "./signing.js";

export const CLASS_COLOURS = { isolated: "#6b7280", known: "#0b5cad", partner: "#17692f", federated: "#7a3db8" };
const SIZE = 400;
const R = 150;

/** A class's legend swatch and name. */
export const legend = () => h("div", { id: "graph-legend" },
  h("p", { class: "row" }, h("span", { class: "muted" }, "Colour: class"),
    Object.entries(CLASS_COLOURS).map(([name, colour]) => h("span", { class: "badge" },
      h("svg:svg", { width: 12, height: 12, viewBox: "0 0 12 12", "aria-hidden": "true" }, h("svg:circle", { cx: 6, cy: 6, r: 6, fill: colour })),
      ` ${name}`))),
  h("p", { class: "muted" }, "Size: standing. Arrow: who vouches for whom (fainter: less weight now). Tab moves through the members."));

/** The figure of a GraphView (GET …/trust/graph) for the member `me`. */
export function trustGraph(g, me, nameOf = shortDid) {
  const dids = new Set(g.nodes.map((n) => n.did));
  for (const e of g.edges) dids.add(e.truster).add(e.subject);
  const byDid = Object.fromEntries(g.nodes.map((n) => [n.did, n]));
  const order = [...dids].sort();
  const most = Math.max(1, ...g.nodes.map((n) => n.standing_ppm));
  const place = {};
  order.forEach((did, i) => {
    const a = (2 * Math.PI * i) / Math.max(order.length, 1) - Math.PI / 2;
    const n = byDid[did] || { standing_ppm: 0, class: "isolated" };
    place[did] = {
      x: SIZE / 2 + (order.length > 1 ? R * Math.cos(a) : 0),
      y: SIZE / 2 + (order.length > 1 ? R * Math.sin(a) : 0),
      r: 7 + 17 * Math.sqrt(n.standing_ppm / most),
      n,
    };
  });
  const edges = g.edges.map((e) => {
    const a = place[e.truster];
    const b = place[e.subject];
    const dx = b.x - a.x;
    const dy = b.y - a.y;
    const len = Math.hypot(dx, dy) || 1;
    const opacity = 0.3 + 0.7 * Math.min(e.weight_ppm / 1e6, 1);
    // Each arrow keeps to its right, so two members who vouch for each other show two arrows.
    const ox = (-dy / len) * 5;
    const oy = (dx / len) * 5;
    return h("svg:line", {
      x1: (a.x + (dx / len) * a.r + ox).toFixed(1), y1: (a.y + (dy / len) * a.r + oy).toFixed(1),
      x2: (b.x - (dx / len) * (b.r + 3) + ox).toFixed(1), y2: (b.y - (dy / len) * (b.r + 3) + oy).toFixed(1),
      stroke: "#3b4450", "stroke-width": 1.5, "stroke-opacity": opacity.toFixed(2), "marker-end": "url(#arrow)",
      dataset: { truster: e.truster, subject: e.subject },
    });
  });
  const nodes = order.map((did) => {
    const p = place[did];
    const words = `${did === me ? "You" : nameOf(did)}: ${p.n.class}, standing ${percent(p.n.standing_ppm)}; ` +
      `vouches for ${g.edges.filter((e) => e.truster === did).length}, vouched for by ${g.edges.filter((e) => e.subject === did).length}`;
    return h("svg:g", { class: "graph-node", tabindex: 0, role: "img", "aria-label": words, dataset: { did, class: p.n.class } },
      h("svg:title", {}, `${words} (${did})`),
      h("svg:circle", { cx: p.x.toFixed(1), cy: p.y.toFixed(1), r: p.r.toFixed(1), fill: CLASS_COLOURS[p.n.class] || "#6b7280",
        stroke: did === me ? "#f5b700" : "#fff", "stroke-width": did === me ? 4 : 2 }),
      h("svg:text", { x: p.x.toFixed(1), y: (p.y + p.r + 13).toFixed(1), "text-anchor": "middle", "font-size": 12, fill: "#1b1f23" },
        did === me ? "you" : nameOf(did).slice(0, 9)));
  });
  const svg = h("svg:svg", {
    id: "trust-graph", width: "100%", viewBox: `0 0 ${SIZE} ${SIZE}`, role: "group",
    "aria-label": `Trust graph of the ${g.context} context: ${order.length} members, ${g.edges.length} attestations`,
    dataset: { nodes: order.length, edges: g.edges.length },
  },
  h("svg:defs", {}, h("svg:marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    h("svg:path", { d: "M0,0 L10,5 L0,10 z", fill: "#3b4450" }))),
  edges, nodes);
  svg.style.maxWidth = "34rem"; // CSSOM, which the CSP allows (a style attribute it would not)
  svg.style.display = "block";
  svg.style.margin = "0 auto";
  return svg;
}

/** A member's standing over epochs (ppm) as a small line, points coloured by class. */
export function standingLine(points, context) {
  const W = 360;
  const H = 140;
  const P = { l: 40, r: 8, t: 12, b: 24 };
  if (!points.length) return h("p", { class: "muted" }, `No standing yet in ${context}: it is computed at each epoch.`);
  const e0 = points[0].epoch;
  const e1 = Math.max(points[points.length - 1].epoch, e0 + 1);
  const hi = Math.max(...points.map((p) => p.standing_ppm), 1);
  const x = (e) => P.l + ((e - e0) / (e1 - e0)) * (W - P.l - P.r);
  const y = (v) => P.t + (1 - v / hi) * (H - P.t - P.b);
  const path = points.map((p, i) => `${i ? "L" : "M"}${x(p.epoch).toFixed(1)},${y(p.standing_ppm).toFixed(1)}`).join(" ");
  const lastP = points[points.length - 1];
  return h("div", {},
    h("svg:svg", { class: "chart", id: `standing-line-${context}`, viewBox: `0 0 ${W} ${H}`, role: "img", dataset: { points: points.length },
      "aria-label": `Your standing in ${context} over ${points.length} epoch(s): now ${percent(lastP.standing_ppm)}, ${lastP.class}` },
    h("svg:line", { x1: P.l, x2: W - P.r, y1: y(0), y2: y(0), stroke: "#888", "stroke-dasharray": "4 3" }),
    h("svg:path", { d: path, fill: "none", stroke: "#0b5cad", "stroke-width": 2 }),
    points.map((p) => h("svg:circle", { cx: x(p.epoch).toFixed(1), cy: y(p.standing_ppm).toFixed(1), r: 5, fill: CLASS_COLOURS[p.class] || "#6b7280" },
      h("svg:title", {}, `epoch ${p.epoch}: ${percent(p.standing_ppm)}, ${p.class}`))),
    h("svg:text", { x: 2, y: y(hi) + 10 }, percent(hi)),
    h("svg:text", { x: 2, y: y(0) }, "0"),
    h("svg:text", { x: P.l, y: H - 6 }, `epoch ${e0}`),
    h("svg:text", { x: W - P.r - 50, y: H - 6 }, `epoch ${e1}`)),
  h("p", { class: "muted" }, `Standing (share of the whole) at each published ${context} epoch; dots coloured by class.`));
}
