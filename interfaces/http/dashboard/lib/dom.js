// Building the page without innerHTML: every text goes in as text, so data from the log
// (memos, names) can never become markup or script.

/** h("p", {class: "x", onclick: f}, "text", child, …): an element. */
export function h(tag, attrs = {}, ...children) {
  const svg = tag.startsWith("svg:");
  const el = svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  add(el, children);
  return el;
}

/** A short form of a DID for tables: the start and end of its key part. */
export const shortDid = (did) => (did && did.length > 24 ? `${did.slice(8, 16)}…${did.slice(-4)}` : did || "");

/** A DID shown short, with the whole DID for screen readers and on hover. */
export const didLabel = (did, me) =>
  h("abbr", { title: did, class: "did" }, did === me ? "you" : shortDid(did));

export const when = (ms) => (ms ? new Date(ms).toISOString().slice(0, 16).replace("T", " ") : "—");

/** A status line that screen readers announce. */
export const status = (id) => h("p", { id, class: "status", role: "status", "aria-live": "polite" });

/** A wide table's box that scrolls sideways on a phone, reachable by keyboard. */
export const scroller = (label, ...children) =>
  h("div", { class: "scroll", tabindex: 0, role: "region", "aria-label": label }, ...children);
