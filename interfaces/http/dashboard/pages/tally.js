// A proposal's tally as SVG drawn here: the ballots' weights per choice with the threshold
// `yes` must pass, and quorum progress (ballots counted against what the quorum needs).
// Colours are SVG presentation attributes (the CSP allows no inline style); every figure is
// also said in text, so nothing depends on colour.

import { h } from "../lib/dom.js";
import { percent } from "./signing.js";

const W = 1000;
const COLOURS = { yes: "#17692f", no: "#a3211a", abstain: "#6b7280", block: "#5b2a86", quorum: "#0b5cad" };
const CHOICES = ["yes", "no", "abstain", "block"];

/** One horizontal bar (segments by value, a dashed mark at `mark` of the width), as wide as its box. */
function bar(id, parts, total, mark, label) {
  let x = 0;
  const rects = [];
  for (const [name, value] of parts) {
    if (!value) continue;
    const w = total ? (value / total) * W : 0;
    rects.push(h("svg:rect", { x: x.toFixed(1), y: 0, width: Math.max(w, 2).toFixed(1), height: 24, fill: COLOURS[name] }));
    x += w;
  }
  const m = mark === null ? null : Math.min(Math.max(mark * W, 2), W - 2);
  return h("div", { class: "tally-bar" },
    h("p", { class: "muted", id: `${id}-label` }, label),
    h("svg:svg", { id, width: "100%", height: 24, viewBox: `0 0 ${W} 24`, preserveAspectRatio: "none", role: "img", "aria-labelledby": `${id}-label` },
      h("svg:rect", { x: 0, y: 0, width: W, height: 24, fill: "#eceef1", stroke: "#767b82", "stroke-width": 2 }), rects,
      m === null ? null : h("svg:line", { x1: m, x2: m, y1: 0, y2: 24, stroke: "#1b1f23", "stroke-width": 4, "stroke-dasharray": "5 3" })));
}

/** The tally of a TallyView (GET …/proposals/{id}/tally) under the proposal's rules. */
export function tallyFigure(t, rules) {
  const counts = t.counts;
  const weights = counts ? CHOICES.map((c) => [c, counts[`${c}_weight`] || 0]) : [];
  const total = weights.reduce((a, [, v]) => a + v, 0);
  const yesNo = counts ? counts.yes_weight + counts.no_weight : 0;
  const threshold = rules && typeof rules.threshold_ppm === "number" ? rules.threshold_ppm : 500000;
  const eligible = Math.max(t.eligible, 1);
  const words = [];
  if (counts) {
    words.push(CHOICES.filter((c) => counts[c] || c === "yes" || c === "no")
      .map((c) => `${c} ${counts[c]}${counts[`${c}_weight`] !== counts[c] ? ` (weight ${counts[`${c}_weight`]})` : ""}`).join(", "));
  } else if (t.sealed) {
    words.push(`${t.ballots ?? t.counted} sealed ballot(s), ${t.revealed ?? 0} revealed: the count shows once the ballots are revealed`);
  }
  words.push(`quorum ${t.counted} of ${t.quorum_needed} needed (${t.eligible} eligible)${t.quorum_met ? ", met" : ""}`);
  const ending = t.final ? `outcome: ${t.outcome}` : t.projected ? `as it stands: ${t.projected}` : "";
  if (ending) words.push(ending);
  const summary = words.join("; ");
  const key = counts ? h("p", { class: "row muted", "aria-hidden": "true" }, weights.filter(([, v]) => v).map(([c]) =>
    h("span", { class: "badge" }, h("svg:svg", { width: 10, height: 10, viewBox: "0 0 10 10" }, h("svg:rect", { width: 10, height: 10, fill: COLOURS[c] })), ` ${c}`))) : null;
  return h("div", { id: "tally", class: "tally", dataset: {
    state: t.state, final: String(t.final), counted: t.counted, quorumMet: String(t.quorum_met),
    yes: counts ? counts.yes : "", no: counts ? counts.no : "", ballots: t.ballots ?? "", revealed: t.revealed ?? "",
    outcome: t.outcome || "",
  } },
  counts ? bar("tally-weights", weights, total || 1, yesNo && total ? (threshold / 1e6) * (yesNo / total) : null,
    total ? `Ballots by weight (the mark: yes must pass ${percent(threshold)} of yes + no)` : "No ballots yet") : null,
  key,
  bar("tally-quorum", [["quorum", Math.min(t.counted, eligible)]], eligible, t.quorum_needed / eligible,
    `Quorum: ${t.counted} of ${t.quorum_needed} needed (the mark), ${t.eligible} eligible`),
  h("p", { id: "tally-words", role: "status" }, summary[0].toUpperCase() + summary.slice(1) + "."));
}
