// Coop: its name, currencies, members (status, roles), totals and the latest checkpoint.

import { api } from "../lib/api.js";
import { didLabel, fill, h, memberLabel, scroller, sharedNames, status, when } from "../lib/dom.js";

async function allMembers(ctx) {
  const out = [];
  let after = null;
  do {
    const page = await api(ctx.coopPath(`/members?limit=1000${after ? `&after=${encodeURIComponent(after)}` : ""}`));
    out.push(...page.members);
    after = page.next;
  } while (after);
  return out;
}

function render(root, ctx) {
  const me = ctx.session.did;
  const facts = h("div");
  const totals = h("div");
  const members = h("div");
  const checkpoint = h("div");
  const note = status("coop-status");
  root.append(
    h("h1", { id: "coop-title" }, "Coop"),
    note,
    h("section", { class: "card", "aria-labelledby": "facts-h" }, h("h2", { id: "facts-h" }, "About"), facts),
    h("section", { class: "card", "aria-labelledby": "totals-h" }, h("h2", { id: "totals-h" }, "Totals"), totals),
    h("section", { class: "card", "aria-labelledby": "members-h" }, h("h2", { id: "members-h" }, "Members"), members),
    h("section", { class: "card", "aria-labelledby": "cp-h" }, h("h2", { id: "cp-h" }, "Latest checkpoint"), checkpoint),
  );

  async function load() {
    try {
      const [coop, list] = await Promise.all([api(ctx.coopPath()), allMembers(ctx)]);
      fill(root.querySelector("#coop-title"), coop.name);
      fill(facts, h("dl", { class: "grid" },
        h("div", {}, h("dt", { class: "muted" }, "Coop"), h("dd", { class: "mono" }, coop.coop)),
        h("div", {}, h("dt", { class: "muted" }, "Founded"), h("dd", {}, when(coop.founded_ms))),
        h("div", {}, h("dt", { class: "muted" }, "Currencies"),
          h("dd", {}, coop.currencies.map((c) => `${c.code} (${c.unit}, ${c.decimals} decimals)`).join(", "))),
        h("div", {}, h("dt", { class: "muted" }, "Coop DID"), h("dd", {}, didLabel(coop.did)))));
      fill(totals, scroller("Totals table", h("table", {},
        h("caption", { class: "muted" }, `As of log position ${coop.as_of}`),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Currency"), h("th", { scope: "col", class: "num" }, "Volume"),
          h("th", { scope: "col", class: "num" }, "Transactions"), h("th", { scope: "col", class: "num" }, "Accounts"),
          h("th", { scope: "col", class: "num" }, "Sum of balances"))),
        h("tbody", {}, Object.entries(coop.totals).map(([code, t]) =>
          h("tr", {}, h("td", {}, code), h("td", { class: "num" }, t.display_volume), h("td", { class: "num" }, t.transactions),
            h("td", { class: "num" }, t.accounts), h("td", { class: "num" }, t.balance_sum)))))));
      const shared = sharedNames(list);
      const counts = list.reduce((m, x) => ((m[x.status] = (m[x.status] || 0) + 1), m), {});
      fill(members,
        h("p", { class: "muted" }, Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(", ")),
        scroller("Members table", h("table", { id: "members-table" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Member"), h("th", { scope: "col" }, "Status"),
            h("th", { scope: "col" }, "Roles"), h("th", { scope: "col", class: "wide" }, "Joined"))),
          h("tbody", {}, list.map((m) =>
            h("tr", { dataset: { did: m.did } }, h("td", {}, memberLabel(m, me, shared)),
              h("td", {}, m.status + (m.frozen ? " (frozen)" : "")),
              h("td", {}, m.roles.join(", ") || "—"), h("td", { class: "wide" }, when(m.joined_ms))))))));
      note.textContent = "";
    } catch (err) {
      note.textContent = `Could not load the coop: ${err.message}`;
      note.className = "status error";
    }
    try {
      const cp = await api(ctx.coopPath("/checkpoint"));
      fill(checkpoint, h("p", {}, `Size ${cp.size}, root `, h("span", { class: "mono" }, cp.root)),
        h("details", {}, h("summary", {}, "Signed note"), h("pre", { class: "mono" }, cp.note)),
        h("p", { class: "hint" }, "Check it yourself on the ", h("a", { href: "#/log" }, "Log page"), "."));
    } catch (err) {
      fill(checkpoint, h("p", { class: "muted" }, err.code === "no-checkpoint-yet" ? "None signed yet." : err.message));
    }
  }
  load();
  let timer = null;
  const off = ctx.onEvent(() => {
    clearTimeout(timer);
    timer = setTimeout(load, 300); // many events at once: one reload
  });
  return () => {
    off();
    clearTimeout(timer);
  };
}

export default { id: "coop", title: "Coop", render };
