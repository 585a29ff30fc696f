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

/** Names members gave themselves that more than one active member uses. */
export const sharedNames = (members) => {
  const seen = new Map();
  for (const m of members) if (m.name && m.status === "active") seen.set(m.name, (seen.get(m.name) || 0) + 1);
  return new Set([...seen].filter(([, n]) => n > 1).map(([name]) => name));
};

/** A member as every list shows them: the short DID always, and the name they gave
 *  themselves (coop.ProfileUpdated) *beside* it, never instead: anyone may choose any name,
 *  another member's included. The name is text in a <bdi>, so a right-to-left name cannot
 *  reorder the DID next to it; a name another active member also uses is marked. */
export const memberLabel = (m, me, shared = new Set()) => {
  const did = didLabel(m.did, me);
  if (!m.name) return did;
  return h("span", { class: "member", dataset: { did: m.did } },
    h("bdi", { class: "member-name" }, m.name), " ", did,
    shared.has(m.name) ? h("abbr", { class: "name-twin", title: "Another member uses this name too" }, " ⚠ same name") : null);
};

/** A member in a picker (an <option> holds text only): the name isolated (U+2068 … U+2069)
 *  so it cannot reorder what follows, then the short DID. */
export const memberText = (m) => (m.name ? `\u2068${m.name}\u2069 · ${shortDid(m.did)}` : shortDid(m.did));

export const when = (ms) => (ms ? new Date(ms).toISOString().slice(0, 16).replace("T", " ") : "—");

/** A status line that screen readers announce. */
export const status = (id) => h("p", { id, class: "status", role: "status", "aria-live": "polite" });

/** A wide table's box that scrolls sideways on a phone, reachable by keyboard. */
export const scroller = (label, ...children) =>
  h("div", { class: "scroll", tabindex: 0, role: "region", "aria-label": label }, ...children);
