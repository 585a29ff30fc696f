// Proposals: open and closed (by state), one proposal with its live tally (SVG, quorum
// progress), votes signed here (VoteCast; in a sealed domain VoteCommitted, then VoteRevealed
// after the close from the ballot this browser kept), delegation per domain, and the charter
// with every version of every section. Refusals are said in the node's words.

import { api } from "../lib/api.js";
import { didLabel, fill, h, memberText, scroller, shortDid, status, when } from "../lib/dom.js";
import { commitmentOf, dropBallot, hasBallot, keepBallot, keptBallot, newSalt } from "./ballots.js";
import { debounce, inWords, keyField, say, signAndPost } from "./signing.js";
import { tallyFigure } from "./tally.js";

const second = (ms) => (ms ? new Date(ms).toISOString().slice(0, 19).replace("T", " ") : "—");
const CLOSED_STATES = ["accepted", "rejected", "no-quorum", "withdrawn", "vetoed"];

function render(root, ctx) {
  const s = ctx.session;
  const me = s.did;
  let selected = null; // proposal id shown in the detail
  let members = [];
  let closeTimer = null;
  let draft = { id: null, reason: "", credits: "1" };
  let shownRules = {};

  const note = status("proposals-status");
  const signer = keyField(ctx, "gov-passphrase");
  const openList = h("ul", { id: "open-proposals", class: "feed" });
  const closedList = h("ul", { id: "closed-proposals", class: "feed" });
  const closedState = h("select", { id: "closed-state" },
    h("option", { value: "" }, "all closed"), CLOSED_STATES.map((x) => h("option", { value: x }, x)));
  const detail = h("section", { class: "card", id: "proposal", "aria-labelledby": "proposal-h", hidden: true });
  const delegations = h("div", { id: "delegations" });
  const delegateDomain = h("select", { id: "delegate-domain" });
  const delegateTo = h("select", { id: "delegate-to" });
  const delegateNote = status("delegate-status");
  const charter = h("div", { id: "charter" });

  root.append(
    h("h1", {}, "Proposals"),
    note,
    h("div", { class: "card" }, signer.label),
    detail,
    h("section", { class: "card", "aria-labelledby": "open-h" }, h("h2", { id: "open-h" }, "Open"), openList),
    h("section", { class: "card", "aria-labelledby": "closed-h" }, h("h2", { id: "closed-h" }, "Closed"),
      h("div", { class: "row" }, h("label", { for: "closed-state" }, "Show", closedState)), closedList),
    h("section", { class: "card", "aria-labelledby": "deleg-h" }, h("h2", { id: "deleg-h" }, "Delegation"),
      h("p", { class: "hint" }, "In a domain you delegate, your vote follows the member you name, unless you vote yourself."),
      delegations,
      h("form", { id: "delegate-form", onsubmit: delegate },
        h("div", { class: "row" },
          h("label", { for: "delegate-domain" }, "Domain", delegateDomain),
          h("label", { for: "delegate-to" }, "My vote follows", delegateTo)),
        h("button", { type: "submit" }, "Sign delegation"), delegateNote)),
    h("section", { class: "card", "aria-labelledby": "charter-h" }, h("h2", { id: "charter-h" }, "Charter"), charter),
  );
  closedState.addEventListener("change", () => loadLists().catch(oops));

  const oops = (err) => say(note, `Could not load proposals: ${err.message}`, "error");

  const entry = (p) => h("li", { dataset: { id: p.id, state: p.state } },
    h("button", { type: "button", class: "secondary", "aria-controls": "proposal", onclick: () => open(p.id) }, p.title),
    " ", h("span", { class: "badge" }, p.state), " ", h("span", { class: "muted" }, `${p.domain} · ${p.action}`),
    h("br"),
    h("span", { class: "muted" }, p.state === "open"
      ? `closes ${when(p.closes_at)} · ${p.votes.cast + p.votes.committed} ballot(s)`
      : `${p.outcome || p.state}${p.execution ? ` · ${p.execution}` : ""} · ${when(p.closes_at)}`));

  async function loadLists() {
    const q = closedState.value ? `?state=${closedState.value}&limit=100` : "?limit=100";
    const [open, closed] = await Promise.all([
      api(ctx.coopPath("/proposals?state=open&limit=100")),
      api(ctx.coopPath(`/proposals${q}`)),
    ]);
    fill(openList, open.items.length ? open.items.map(entry) : h("li", { class: "muted" }, "No open proposals."));
    const done = closed.items.filter((p) => p.state !== "open").reverse();
    fill(closedList, done.length ? done.map(entry) : h("li", { class: "muted" }, "None."));
  }

  async function open(id) {
    selected = id;
    await loadDetail();
    detail.focus();
  }

  async function loadDetail() {
    if (!selected) return;
    const id = selected;
    const [p, t, mine] = await Promise.all([
      api(ctx.coopPath(`/proposals/${id}`)),
      api(ctx.coopPath(`/proposals/${id}/tally`)),
      api(ctx.coopPath(`/members/${me}/votes`)),
    ]);
    if (id !== selected) return;
    const rules = p.rules || {};
    shownRules = rules;
    const myVotes = mine.votes.filter((v) => v.proposal === id);
    const kept = await hasBallot(s.coop, me, id).catch(() => false);
    const voteNote = status("vote-status");
    const now = Date.now();
    const isOpen = p.state === "open";
    const closed = now >= p.closes_at;
    const revealEnds = p.closes_at + (rules.reveal_window_ms || 0);
    const choices = ["yes", "no", "abstain"].concat(rules.method === "consent" ? ["block"] : []);
    // The detail is drawn again at every vote: what the member is typing is kept across.
    if (draft.id !== id) draft = { id, reason: "", credits: "1" };
    const credits = rules.method === "quadratic"
      ? h("input", { id: "vote-credits", type: "number", min: 0, max: rules.credits, value: draft.credits, inputmode: "numeric",
        oninput: (e) => { draft.credits = e.target.value; } }) : null;
    const reason = h("input", { id: "vote-reason", maxlength: 1024, autocomplete: "off", value: draft.reason,
      oninput: (e) => { draft.reason = e.target.value; } });

    const last = myVotes[myVotes.length - 1];
    const revealed = myVotes.some((v) => v.kind === "revealed");
    const committed = myVotes.some((v) => v.kind === "committed");
    const mineSaid = last
      ? last.kind === "cast" ? `You voted ${last.choice}.` : revealed ? `You revealed ${myVotes.find((v) => v.kind === "revealed").choice}.` : "You committed a sealed ballot."
      : "You have not voted.";

    const voting = [];
    if (isOpen && !closed && !(rules.sealed && committed)) {
      voting.push(
        h("p", { class: "hint" }, rules.sealed
          ? "Sealed ballots: your choice is hidden until the close. This browser keeps it (encrypted) and reveals it for you after the close."
          : "You may vote again until the close: your last vote counts."),
        h("div", { class: "row" },
          h("label", { for: "vote-reason" }, "Reason (optional)", reason),
          credits ? h("label", { for: "vote-credits" }, `Voice credits (up to ${rules.credits})`, credits) : null),
        h("div", { class: "row", role: "group", "aria-label": "Vote" },
          choices.map((c) => h("button", { type: "button", id: `vote-${c}`, onclick: () => vote(c) },
            rules.sealed ? `Commit ${c}` : `Vote ${c}`))));
    }
    if (rules.sealed && committed && !revealed) {
      if (!kept) voting.push(h("p", { class: "muted" }, "This browser does not keep your sealed ballot: reveal it where you voted (`icn reveal`)."));
      else if (!closed) voting.push(h("p", { class: "hint", id: "reveal-wait" }, `Your sealed ballot is kept here; reveal it after ${when(p.closes_at)}.`));
      else if (now < revealEnds) voting.push(h("button", { type: "button", id: "reveal", onclick: reveal }, "Reveal my ballot"));
      else voting.push(h("p", { class: "muted" }, "The reveal window has passed."));
    }
    clearTimeout(closeTimer);
    if (!closed) closeTimer = setTimeout(() => loadDetail().catch(oops), Math.min(p.closes_at - now + 300, 2 ** 31 - 1));

    async function vote(choice) {
      for (const b of detail.querySelectorAll("button")) b.disabled = true;
      try {
        const key = await signer.key();
        const spend = credits ? Number(credits.value) : null;
        if (credits && (!Number.isSafeInteger(spend) || spend < 0 || spend > rules.credits)) {
          throw new Error(`credits: a whole number from 0 to ${rules.credits}`);
        }
        if (rules.sealed) {
          const salt = newSalt();
          // A commitment has no reason field (a reason may show the choice): it waits, sealed
          // with the choice, for the reveal.
          await keepBallot(key, s.coop, id, { choice, credits: spend, salt, reason: reason.value || null });
          say(voteNote, "Signing your sealed ballot…");
          await signAndPost(ctx, key, "governance.VoteCommitted", { proposal: id, commitment: commitmentOf(choice, spend, salt) });
          say(voteNote, `Sealed ballot committed; reveal it after the close.`, "success");
        } else {
          const body = { proposal: id, choice };
          if (reason.value) body.reason = reason.value;
          if (credits) body.credits = spend;
          await signAndPost(ctx, key, "governance.VoteCast", body);
          draft.reason = "";
          reason.value = "";
          say(voteNote, `You voted ${choice}.`, "success");
          fill(detail.querySelector("#my-vote"), `You voted ${choice}.`);
          await loadTally();
          return;
        }
        await loadDetail();
        document.getElementById("vote-status").replaceWith(voteNote);
        voteNote.tabIndex = -1;
        voteNote.focus();
      } catch (err) {
        if (rules.sealed) await dropBallot(s.coop, me, id).catch(() => {});
        say(voteNote, inWords(err), "error");
      } finally {
        for (const b of detail.querySelectorAll("button")) b.disabled = false;
      }
    }

    async function reveal() {
      try {
        const key = await signer.key();
        const ballot = await keptBallot(key, s.coop, id);
        if (!ballot) throw new Error("this browser keeps no ballot for this proposal");
        const body = { proposal: id, choice: ballot.choice, salt: ballot.salt };
        if (ballot.credits !== null && ballot.credits !== undefined) body.credits = ballot.credits;
        if (ballot.reason) body.reason = ballot.reason;
        await signAndPost(ctx, key, "governance.VoteRevealed", body);
        await dropBallot(s.coop, me, id);
        await loadDetail();
        say(document.getElementById("vote-status"), `Revealed: ${ballot.choice}.`, "success");
      } catch (err) {
        say(voteNote, inWords(err), "error");
      }
    }

    const actionWords = Object.entries(p.action_body || {}).filter(([k]) => k !== "kind")
      .map(([k, v]) => `${k}: ${typeof v === "string" ? (v.startsWith("did:") ? shortDid(v) : v) : JSON.stringify(v)}`).join("; ");
    detail.hidden = false;
    detail.tabIndex = -1;
    fill(detail,
      h("h2", { id: "proposal-h" }, p.title),
      h("p", {}, h("span", { class: "badge", id: "proposal-state" }, p.state), " ",
        h("span", { class: "muted" }, `${p.domain} · ${rules.method || "majority"}${rules.sealed ? " · sealed" : ""} · by `), didLabel(p.author, me)),
      p.text ? h("p", { class: "wide-text" }, p.text) : null,
      h("p", {}, `Action: ${p.action}${actionWords ? ` (${actionWords})` : ""}`),
      h("p", { class: "muted" }, `Opens ${second(p.opens_at || p.submitted_ts)} · closes ${second(p.closes_at)} UTC` +
        (rules.sealed ? ` · reveals until ${second(revealEnds)}` : "")),
      tallyFigure(t, rules),
      p.state !== "open"
        ? h("p", { id: "proposal-ending", class: p.state === "accepted" ? "success" : "" },
          `Ended ${p.state}${p.reason ? ` (${p.reason})` : ""}` +
          (p.execution ? `; execution: ${p.execution}` : "") + (p.effects && p.effects.length ? `, ${p.effects.length} effect(s)` : "") +
          (p.failed ? ` — failed: ${p.failed}` : ""))
        : null,
      h("p", { id: "my-vote" }, mineSaid),
      voting, voteNote);
  }

  /** Only the tally is drawn again on a vote, so focus and typing in the detail stay put. */
  async function loadTally() {
    if (!selected) return;
    const id = selected;
    const t = await api(ctx.coopPath(`/proposals/${id}/tally`));
    const old = detail.querySelector("#tally");
    if (id !== selected || !old) return;
    if (old.dataset.state !== t.state || old.dataset.final !== String(t.final)) return loadDetail();
    old.replaceWith(tallyFigure(t, shownRules));
  }

  async function loadDelegations() {
    const [domains, mine, list] = await Promise.all([
      api(ctx.coopPath("/domains")),
      api(ctx.coopPath(`/members/${me}/votes`)),
      ctx.cached("members", ctx.coopPath("/members?limit=1000")),
    ]);
    members = list.members.filter((m) => m.did !== me && m.status === "active");
    const current = Object.fromEntries(mine.delegations.map((d) => [d.domain, d.to]));
    // A live reload keeps what the member has chosen in the form.
    const keep = [delegateDomain.value, delegateTo.value];
    fill(delegateDomain, domains.domains.map((d) => h("option", { value: d.domain }, d.domain)));
    fill(delegateTo, h("option", { value: "" }, "nobody: I vote myself"),
      members.map((m) => h("option", { value: m.did }, memberText(m))));
    if (keep[0]) delegateDomain.value = keep[0];
    if (keep[1] && members.some((m) => m.did === keep[1])) delegateTo.value = keep[1];
    fill(delegations, h("ul", { id: "my-delegations" }, domains.domains.map((d) =>
      h("li", { dataset: { domain: d.domain, to: current[d.domain] || "" } }, h("strong", {}, d.domain), ": ",
        current[d.domain] ? ["your vote follows ", didLabel(current[d.domain], me)] : "you vote yourself"))),
    mine.delegators.length
      ? h("p", { class: "muted" }, `${mine.delegators.length} member(s) delegate to you.`) : null);
  }

  async function delegate(ev) {
    ev.preventDefault();
    try {
      const key = await signer.key();
      const to = delegateTo.value || null;
      await signAndPost(ctx, key, "governance.VoteDelegated", { domain: delegateDomain.value, to });
      say(delegateNote, to ? `In ${delegateDomain.value}, your vote now follows ${shortDid(to)}.` : `In ${delegateDomain.value}, you vote yourself.`, "success");
      await loadDelegations();
    } catch (err) {
      say(delegateNote, inWords(err), "error");
    }
  }

  async function loadCharter() {
    const c = await api(ctx.coopPath("/charter"));
    if (!c.sections.length) {
      fill(charter, h("p", { class: "muted" }, "No section yet: an accepted amend-charter proposal writes one."));
      return;
    }
    fill(charter, c.sections.map((sec) => {
      const versions = c.history.filter((v) => v.section === sec.section);
      return h("article", { class: "charter-section", dataset: { section: sec.section, version: sec.version } },
        h("h3", {}, `${sec.section} `, h("span", { class: "badge" }, `version ${sec.version}`)),
        h("p", {}, sec.text),
        h("details", {}, h("summary", {}, `History (${versions.length} version${versions.length === 1 ? "" : "s"})`),
          h("ol", {}, versions.map((v) => h("li", {},
            h("p", {}, `Version ${v.version}, ${when(v.ts)}: ${v.text}`),
            h("p", { class: "muted" }, `Why: ${v.rationale} · proposal `, h("span", { class: "mono" }, v.proposal.slice(0, 12) + "…")))))));
    }));
  }

  const all = () => Promise.all([loadLists(), loadDelegations(), loadCharter()])
    .then(() => { if (note.classList.contains("error")) say(note, ""); }).catch(oops);
  all();

  // Live: a vote on the proposal shown moves its tally; its close, execution, withdrawal or
  // veto draws it again; any governance event refreshes the lists, delegations and charter.
  const soon = debounce(all, 200);
  const tallySoon = debounce(() => loadTally().catch(oops), 100);
  const detailSoon = debounce(() => loadDetail().catch(oops), 100);
  const off = ctx.onEvent(({ event }) => {
    if (!event.type.startsWith("governance.") && !event.type.startsWith("coop.")) return;
    const b = event.body || {};
    if (selected && (b.proposal === selected || event.id === selected)) {
      if (event.type.startsWith("governance.Vote")) tallySoon();
      else detailSoon();
    }
    soon();
  });
  return () => {
    off();
    soon.cancel();
    tallySoon.cancel();
    detailSoon.cancel();
    clearTimeout(closeTimer);
  };
}

export default { id: "proposals", title: "Proposals", render };
