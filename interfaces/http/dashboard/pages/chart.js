// The balance-over-time chart: inline SVG drawn here (no library, nothing inline in the HTML).

import { h } from "../lib/dom.js";
import { display } from "../lib/units.js";

const W = 600;
const H = 220;
const PAD = { l: 56, r: 8, t: 10, b: 24 };

/** An SVG of the running balance of one currency from its history items (any order). */
export function balanceChart(items, currency, limit) {
  const sorted = [...items].sort((a, b) => a.cursor - b.cursor);
  let balance = 0;
  const points = sorted.map((i) => ({ t: i.ts, b: (balance += i.amount) }));
  const title = `Balance of ${currency.code} over time`;
  if (!points.length) return h("p", { class: "muted" }, `No ${currency.code} movements yet.`);
  const t0 = points[0].t;
  const t1 = Math.max(points[points.length - 1].t, t0 + 1);
  const values = points.map((p) => p.b).concat([0, -limit]);
  const lo = Math.min(...values);
  const hi = Math.max(...values, lo + 1);
  const x = (t) => PAD.l + ((t - t0) / (t1 - t0)) * (W - PAD.l - PAD.r);
  const y = (b) => PAD.t + (1 - (b - lo) / (hi - lo)) * (H - PAD.t - PAD.b);
  let path = `M${x(t0).toFixed(1)},${y(0).toFixed(1)}`;
  for (const p of points) path += ` H${x(p.t).toFixed(1)} V${y(p.b).toFixed(1)}`;
  const d = currency.decimals;
  const day = (t) => new Date(t).toISOString().slice(0, 10);
  const last = points[points.length - 1].b;
  return h("figure", {},
    h("svg:svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title}: from ${day(t0)} to ${day(t1)}, now ${display(last, d)}` },
      h("svg:line", { class: "zero", x1: PAD.l, x2: W - PAD.r, y1: y(0), y2: y(0) }),
      limit ? h("svg:line", { class: "limit", x1: PAD.l, x2: W - PAD.r, y1: y(-limit), y2: y(-limit) }) : null,
      h("svg:path", { class: "line", d: path }),
      h("svg:text", { x: 2, y: y(hi) + 10 }, display(hi, d)),
      h("svg:text", { x: 2, y: y(lo) }, display(lo, d)),
      limit ? h("svg:text", { x: W - PAD.r - 80, y: y(-limit) - 4 }, `limit ${display(-limit, d)}`) : null,
      h("svg:text", { x: PAD.l, y: H - 6 }, day(t0)),
      h("svg:text", { x: W - PAD.r - 70, y: H - 6 }, day(t1))),
    h("figcaption", { class: "muted" }, `${title}; dashed: zero and your credit limit.`));
}
