// Log: recent events, live; any event by id; and "verify in my browser": the latest signed
// checkpoint, a consistency proof that it extends the checkpoint this browser saw last, and an
// inclusion proof of one of my events, all checked here (Ed25519 over the note by the node's
// DID, RFC 6962 hashing up to the note's root). Green only when every check ran in this
// browser and passed. The last checkpoint seen is kept in localStorage per coop and node
// (size and root only), and replaced only by one proven to extend it.

import { api } from "../lib/api.js";
import { canonical } from "../lib/json.js";
import { didLabel, fill, h, shortDid, status, when } from "../lib/dom.js";
import { inspect } from "../lib/event.js";
import { unhex } from "../lib/bytes.js";
import { checkConsistency, openCheckpoint, verifyInclusion } from "../lib/merkle.js";

const RECENT = 30;

const seenName = (coop, node) => `icn.checkpoint:${coop}:${node}`;

/** The checkpoint this browser verified last for this coop and node: {size, root} or null. */
function lastSeen(coop, node) {
  try {
    const kept = JSON.parse(localStorage.getItem(seenName(coop, node)) || "null");
    return kept && Number.isSafeInteger(kept.size) && /^[0-9a-f]{64}$/.test(kept.root) ? kept : null;
  } catch {
    return null;
  }
}

function remember(coop, node, size, root) {
  try {
    localStorage.setItem(seenName(coop, node), JSON.stringify({ size, root }));
  } catch {
    /* full or disabled: the next visit checks no consistency */
  }
}

function summary(e) {
  if (e.type === "ledger.EntryRecorded") {
    const txs = e.body.transactions || [];
    return txs.map((t) => `${shortDid(t.from)} → ${shortDid(t.to)} ${t.amount} ${t.currency}${t.memo ? ` “${t.memo}”` : ""}`).join("; ");
  }
  return "";
}

function render(root, ctx) {
  const me = ctx.session.did;
  const feed = h("ul", { class: "feed", id: "feed", "aria-live": "polite", "aria-relevant": "additions" });
  const lookupInput = h("input", { id: "event-id", pattern: "[0-9a-f]{64}", autocomplete: "off", required: true, placeholder: "64 hex characters" });
  const lookupOut = h("div", { id: "event-out" });
  const verifyOut = h("div", { id: "verify-out" });
  const verifyButton = h("button", { type: "button", id: "verify" }, "Verify in my browser");

  const item = ({ position, event: e }) =>
    h("li", {}, h("span", { class: "badge" }, `#${position}`), " ", h("strong", {}, e.type), " ",
      didLabel(e.author, me), " ", h("span", { class: "muted" }, when(e.ts)), h("br"),
      h("span", {}, summary(e)), " ", h("a", { href: "#/log", class: "mono", "data-id": e.id,
        onclick: (ev) => { ev.preventDefault(); lookupInput.value = e.id; lookup(); } }, e.id.slice(0, 12) + "…"));

  root.append(
    h("h1", {}, "Log"),
    h("section", { class: "card", "aria-labelledby": "verify-h" },
      h("h2", { id: "verify-h" }, "Verify in my browser"),
      h("p", { class: "hint" }, "Fetches the node's latest signed checkpoint, a proof that it extends the last one this browser saw, and a proof that your latest event is in it, and checks them here: the node is not trusted for the answer."),
      verifyButton, verifyOut),
    h("section", { class: "card", "aria-labelledby": "recent-h" },
      h("h2", { id: "recent-h" }, "Recent events ", h("span", { class: "muted" }, "(live)")), feed),
    h("section", { class: "card", "aria-labelledby": "lookup-h" },
      h("h2", { id: "lookup-h" }, "Any event by id"),
      h("form", { class: "row", onsubmit: (ev) => { ev.preventDefault(); lookup(); } },
        h("label", { for: "event-id" }, "Event id", lookupInput), h("button", { type: "submit" }, "Show")),
      lookupOut),
  );

  async function loadRecent() {
    const ready = await api("/v1/ready").catch((e) => e.problem || {});
    const size = ((ready.coops || {})[ctx.session.coop] || {}).size || 0;
    const page = await api(ctx.coopPath(`/events?after=${Math.max(-1, size - RECENT - 1)}&limit=${RECENT}`));
    feed.replaceChildren(...page.events.reverse().map(item));
  }

  async function lookup() {
    const id = lookupInput.value.trim();
    try {
      const got = await api(ctx.coopPath(`/events/${id}`));
      const checked = await inspect(canonical(got.event));
      fill(lookupOut,
        h("p", { class: checked.verdict ? "error" : "success" },
          checked.verdict ? `This browser finds the event ${checked.verdict}: ${checked.reason}` : "Id and signature checked in this browser."),
        h("p", {}, `Position ${got.position}`),
        h("pre", { class: "mono" }, JSON.stringify(got.event, null, 2)));
    } catch (err) {
      fill(lookupOut, h("p", { class: "error" }, err.message));
    }
  }

  async function verifyNow() {
    verifyButton.disabled = true;
    const steps = h("ol", { class: "steps", id: "verify-steps" });
    const verdict = h("p", { class: "verdict", id: "verdict", role: "status" }, "Checking…");
    fill(verifyOut, verdict, steps);
    const step = (ok, text) => {
      steps.append(h("li", { class: ok ? "ok" : "fail" }, `${ok ? "✓" : "✗"} ${text}`));
      return ok;
    };
    let good = false;
    try {
      const node = await api("/v1/health");
      const cp = await api(ctx.coopPath("/checkpoint"));
      const opened = await openCheckpoint(cp.note, node.node).catch((err) => ({ error: err.message }));
      if (!step(!opened.error, opened.error ? `Checkpoint note: ${opened.error}` :
        `Checkpoint note signed by the node ${shortDid(node.node)} (Ed25519, checked here)`)) throw 0;
      if (!step(opened.origin === `icn/${ctx.session.coop}/${node.node}` && opened.size === cp.size && opened.rootHex === cp.root,
        `It states this coop's tree: size ${opened.size}, root ${opened.rootHex.slice(0, 16)}…`)) throw 0;
      // The tree must extend the one this browser saw last: the node cannot take back or
      // rewrite what it signed before without this step failing.
      const before = lastSeen(ctx.session.coop, node.node);
      if (!before) {
        step(true, "The first checkpoint of this node this browser has seen: kept, to check the next one against");
      } else if (before.size === opened.size) {
        if (!step(before.root === opened.rootHex, before.root === opened.rootHex
          ? `The same tree as this browser saw last (size ${before.size})`
          : `The node signed a different root for size ${before.size} than this browser saw before`)) throw 0;
      } else if (before.size > opened.size) {
        step(false, `The checkpoint (size ${opened.size}) is smaller than the one this browser saw (size ${before.size})`);
        throw 0;
      } else {
        const c = await api(ctx.coopPath(`/proofs/consistency?from=${before.size}&to=${opened.size}`));
        const why = await checkConsistency(before.size, opened.size, c.proof.map(unhex), unhex(before.root), unhex(opened.rootHex))
          .then(() => null, (err) => err.message);
        if (!step(!why, why ? `The consistency proof from size ${before.size}: ${why}` :
          `Consistency proof (${c.proof.length} hashes): this tree extends the one this browser saw at size ${before.size}`)) throw 0;
      }
      remember(ctx.session.coop, node.node, opened.size, opened.rootHex);
      // My events in log order, page by page, up to the checkpoint's size: the last one inside.
      const inTree = [];
      let after = -1;
      for (;;) {
        const page = await api(ctx.coopPath(`/events?author=${encodeURIComponent(me)}&after=${after}&limit=1000`));
        inTree.push(...page.events.filter((x) => x.position < opened.size));
        const last = page.events[page.events.length - 1];
        if (page.next === null || !last || last.position >= opened.size) break;
        after = page.next;
      }
      if (!step(inTree.length > 0, inTree.length ? "One of your events is inside the checkpoint" : "None of your events is in the checkpoint yet: try again in a minute")) throw 0;
      const target = inTree[inTree.length - 1];
      const checked = await inspect(canonical(target.event));
      if (!step(!checked.verdict, checked.verdict ? `Your event: ${checked.reason}` :
        `Your event ${target.event.id.slice(0, 12)}… (position ${target.position}): id (BLAKE3) and signature checked here`)) throw 0;
      const proof = await api(ctx.coopPath(`/proofs/inclusion?id=${target.event.id}&size=${opened.size}`));
      const included = proof.index === target.position && proof.size === opened.size &&
        (await verifyInclusion(target.event.id, proof.index, proof.size, proof.proof, opened.rootHex));
      good = step(included, included ? `Inclusion proof (${proof.proof.length} hashes, SHA-256 per RFC 6962) leads to the signed root`
        : "The inclusion proof does not lead to the signed root");
    } catch (err) {
      if (err !== 0) step(false, err.message);
    }
    verdict.className = `verdict ${good ? "good" : "bad"}`;
    verdict.dataset.result = good ? "verified" : "failed";
    verdict.textContent = good ? "Verified in this browser" : "Not verified";
    verifyButton.disabled = false;
  }
  verifyButton.addEventListener("click", verifyNow);

  loadRecent().catch((err) => fill(feed, h("li", { class: "error" }, err.message)));
  const off = ctx.onEvent((x) => {
    feed.prepend(item(x));
    while (feed.children.length > 200) feed.lastChild.remove();
  });
  return off;
}

export default { id: "log", title: "Log", render };
