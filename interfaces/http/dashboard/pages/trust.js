// Trust: the attestations I gave and received (add one, revoke one: signed here), my standing
// and class at each epoch, and the coop's trust graph as a picture (pages/graph.js).
//
// The latest standing comes from GET …/trust/standing/{did}; the line over epochs from
// GET …/trust/standing/{did}/history, which the node keeps for every published epoch (paged
// by epoch; read whole here, a page of 1,000 epochs at a time).

import { api } from "../lib/api.js";
import { didLabel, fill, h, memberText, scroller, shortDid, status, when } from "../lib/dom.js";
import { legend, standingLine, trustGraph } from "./graph.js";
import { debounce, inWords, keyField, percent, say, signAndPost } from "./signing.js";

const CONTEXTS = ["general", "ledger", "governance", "compute"];

const MAX_EPOCHS = 5000; // a line of more points than this says nothing more on a phone

async function history(ctx, did, context) {
  const points = [];
  let after = 0;
  while (points.length < MAX_EPOCHS) {
    const page = await api(ctx.coopPath(`/trust/standing/${did}/history?context=${context}&after=${after}&limit=1000`));
    points.push(...page.standings);
    if (page.next === null) break;
    after = page.next;
  }
  return points;
}

function render(root, ctx) {
  const s = ctx.session;
  const me = s.did;
  const note = status("trust-status");
  const signer = keyField(ctx, "trust-passphrase");
  const standingBox = h("div", { id: "standing" });
  const graphBox = h("div", { id: "graph" });
  const graphTable = h("div");
  const graphContext = h("select", { id: "graph-context" }, CONTEXTS.map((c) => h("option", { value: c }, c)));
  const given = h("tbody", { id: "given-rows" });
  const received = h("tbody", { id: "received-rows" });
  const subject = h("select", { id: "vouch-subject", required: true });
  const context = h("select", { id: "vouch-context" }, CONTEXTS.map((c) => h("option", { value: c }, c)));
  const score = h("input", { id: "vouch-score", type: "number", min: 0, max: 100, step: 1, value: 80, inputmode: "numeric", required: true });
  const vouchNote = h("input", { id: "vouch-note", maxlength: 280, autocomplete: "off" });
  const expires = h("input", { id: "vouch-expires", type: "date" });
  const formNote = status("vouch-status");
  const listNote = status("revoke-status");

  const WIDE = new Set(["Since", "Note", "vs typical"]); // hidden on a phone (style.css: .wide)
  const head = (...cols) => h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col", class: WIDE.has(c) ? "wide" : null }, c))));
  root.append(
    h("h1", {}, "Trust"),
    note,
    h("div", { class: "card" }, signer.label),
    h("section", { class: "card", "aria-labelledby": "standing-h" }, h("h2", { id: "standing-h" }, "My standing"), standingBox),
    h("section", { class: "card", "aria-labelledby": "graph-h" }, h("h2", { id: "graph-h" }, "The coop's trust graph"),
      h("div", { class: "row" }, h("label", { for: "graph-context" }, "Context", graphContext)), legend(), graphBox, graphTable),
    h("section", { class: "card", "aria-labelledby": "vouch-h" }, h("h2", { id: "vouch-h" }, "Vouch for a member"),
      h("form", { id: "vouch-form", onsubmit: vouch },
        h("div", { class: "row" },
          h("label", { for: "vouch-subject" }, "Member", subject),
          h("label", { for: "vouch-context" }, "For", context),
          h("label", { for: "vouch-score" }, "How much (0–100 %)", score)),
        h("div", { class: "row" },
          h("label", { for: "vouch-note" }, "Note (optional)", vouchNote),
          h("label", { for: "vouch-expires" }, "Until (optional)", expires)),
        h("button", { type: "submit" }, "Sign attestation"), formNote)),
    h("section", { class: "card", "aria-labelledby": "given-h" }, h("h2", { id: "given-h" }, "I vouch for"), listNote,
      scroller("Attestations I gave", h("table", {}, head("Member", "For", "Score", "Since", "Note", ""), given))),
    h("section", { class: "card", "aria-labelledby": "received-h" }, h("h2", { id: "received-h" }, "Who vouches for me"),
      scroller("Attestations I received", h("table", {}, head("Member", "For", "Score", "Since", "Note"), received))),
  );
  graphContext.addEventListener("change", () => loadGraph().catch(oops));
  const oops = (err) => say(note, `Could not load trust: ${err.message}`, "error");

  async function loadStanding() {
    const [mine, epochs] = await Promise.all([
      api(ctx.coopPath(`/trust/standing/${me}`)),
      api(ctx.coopPath("/trust/epochs")),
    ]);
    const published = CONTEXTS.filter((c) => epochs.epochs.some((e) => e.context === c));
    const lines = await Promise.all(published.map((c) => history(ctx, me, c)));
    fill(standingBox,
      mine.standings.length
        ? scroller("My standing by context", h("table", { id: "standing-table" }, head("Context", "Epoch", "Standing", "vs typical", "Class"),
          h("tbody", {}, mine.standings.map((st) => h("tr", { dataset: { context: st.context, class: st.class } },
            h("td", {}, st.context), h("td", { class: "num" }, st.epoch), h("td", { class: "num" }, percent(st.standing_ppm)),
            h("td", { class: "num wide" }, percent(st.normalised_ppm)), h("td", {}, st.class))))))
        : h("p", { class: "muted", id: "no-standing" }, "No standing yet: the coop publishes one at each epoch."),
      published.map((c, i) => h("div", {}, h("h3", {}, c), standingLine(lines[i], c),
        lines[i].length ? h("details", {}, h("summary", {}, `My ${c} standing and class at each epoch, in words`),
          scroller(`My ${c} standing over epochs`, h("table", { id: `standing-history-${c}` }, head("Epoch", "Standing", "vs typical", "Class"),
            h("tbody", {}, lines[i].map((p) => h("tr", { dataset: { epoch: p.epoch, class: p.class } },
              h("td", { class: "num" }, p.epoch), h("td", { class: "num" }, percent(p.standing_ppm)),
              h("td", { class: "num wide" }, percent(p.normalised_ppm)), h("td", {}, p.class))))))) : null)));
  }

  async function loadGraph() {
    const g = await api(ctx.coopPath(`/trust/graph?context=${graphContext.value}`));
    fill(graphBox, trustGraph(g, me));
    fill(graphTable, h("details", {}, h("summary", {}, `The graph in words (${g.edges.length} attestations)`),
      scroller("Trust graph edges", h("table", { id: "graph-edges" }, head("From", "To", "Score", "Weight now"),
        h("tbody", {}, g.edges.map((e) => h("tr", {}, h("td", {}, didLabel(e.truster, me)), h("td", {}, didLabel(e.subject, me)),
          h("td", { class: "num" }, percent(e.score_ppm)), h("td", { class: "num" }, percent(e.weight_ppm)))))))));
  }

  async function loadAttestations() {
    const [mine, list] = await Promise.all([
      api(ctx.coopPath(`/members/${me}/attestations`)),
      ctx.cached("members", ctx.coopPath("/members?limit=1000")),
    ]);
    const keep = subject.value;
    fill(subject, list.members.filter((m) => m.did !== me && m.status === "active")
      .map((m) => h("option", { value: m.did }, memberText(m))));
    if (keep) subject.value = keep;
    const row = (a, who, revocable) => h("tr", { dataset: { id: a.id, subject: a.subject, truster: a.truster, revoked: String(a.revoked) } },
      h("td", {}, didLabel(who, me)), h("td", {}, a.context),
      h("td", { class: "num" }, a.revoked ? [h("s", {}, percent(a.score_ppm)), " revoked"] : percent(a.score_ppm)),
      h("td", { class: "wide" }, when(a.ts), a.expires_ts ? h("span", { class: "muted" }, ` until ${when(a.expires_ts)}`) : null),
      h("td", { class: "wide" }, a.note || ""),
      revocable ? h("td", {}, a.revoked ? "" : h("button", { type: "button", class: "secondary", "aria-label": `Revoke ${a.context} trust in ${shortDid(a.subject)}`,
        onclick: () => revoke(a) }, "Revoke")) : null);
    const none = (n) => h("tr", {}, h("td", { colspan: n, class: "muted" }, "None yet."));
    fill(given, mine.given.length ? mine.given.map((a) => row(a, a.subject, true)) : none(6));
    fill(received, mine.received.length ? mine.received.map((a) => row(a, a.truster, false)) : none(5));
  }

  async function vouch(ev) {
    ev.preventDefault();
    const pct = Number(score.value);
    if (!Number.isInteger(pct) || pct < 0 || pct > 100) return say(formNote, "How much: a whole number from 0 to 100.", "error");
    const body = { subject: subject.value, context: context.value, score_ppm: pct * 10000 };
    if (vouchNote.value) body.note = vouchNote.value;
    if (expires.value) body.expires_ts = Date.parse(expires.value);
    try {
      const key = await signer.key();
      say(formNote, "Signing…");
      await signAndPost(ctx, key, "trust.AttestationRecorded", body);
      say(formNote, `You vouch for ${shortDid(body.subject)} in ${body.context} (${pct} %).`, "success");
      vouchNote.value = "";
      await Promise.all([loadAttestations(), loadGraph()]);
    } catch (err) {
      say(formNote, inWords(err), "error");
    }
  }

  async function revoke(a) {
    try {
      const key = await signer.key();
      await signAndPost(ctx, key, "trust.AttestationRevoked", { attestation: a.id });
      say(listNote, `Revoked your ${a.context} trust in ${shortDid(a.subject)}.`, "success");
      await Promise.all([loadAttestations(), loadGraph()]);
    } catch (err) {
      say(listNote, inWords(err), "error");
    }
  }

  const all = () => Promise.all([loadStanding(), loadGraph(), loadAttestations()]).catch(oops);
  all();
  const soon = debounce(all, 250);
  const off = ctx.onEvent(({ event }) => {
    if (event.type.startsWith("trust.") || event.type.startsWith("coop.")) soon();
  });
  return () => {
    off();
    soon.cancel();
  };
}

export default { id: "trust", title: "Trust", render };
