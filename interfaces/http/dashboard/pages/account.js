// My account: balance and credit limit per currency (every term of the limit formula), the
// balance over time, the history with filters, and the Pay form (display units in, integer
// units signed; a refusal is said in words and units).

import { api, ApiError } from "../lib/api.js";
import { didLabel, fill, h, memberText, scroller, shortDid, status, when } from "../lib/dom.js";
import { signEvent } from "../lib/event.js";
import { display, parseAmount } from "../lib/units.js";
import { balanceChart } from "./chart.js";

const pct = (ppm) => `${(ppm / 10000).toFixed(2).replace(/\.?0+$/, "")} %`;

async function fullHistory(ctx, did) {
  const items = [];
  let after = null;
  do {
    const page = await api(ctx.coopPath(`/accounts/${did}/history?limit=1000${after !== null ? `&after=${after}` : ""}`));
    items.push(...page.items);
    after = page.next;
  } while (after !== null && items.length < 20000);
  return items;
}

function limitTerms(l, d) {
  const u = (n) => display(n, d);
  const rows = [
    ["Baseline", u(l.baseline)],
    ["Trust bonus", `${u(l.trust_bonus)} (standing ${pct(l.trust_ppm)} × multiplier ${pct(l.trust_multiplier_ppm)})`],
    ["History bonus", `${u(l.history_bonus)} (${pct(l.history_rate_ppm)} of ${u(l.cleared_volume)} cleared)`],
    ["Formula", `${u(l.formula_limit)} = baseline + trust bonus + history bonus`],
    ["Cap", u(l.max_limit)],
    ["New-member ramp", `from ${u(l.initial_limit)} over ${l.ramp_days} days; ${l.days_since_joining} days since joining`],
    ["Limit now", `${u(l.limit)} (you may go down to ${display(-l.limit, d)})`],
    ["Used", u(l.used)],
    ["Available", u(l.available)],
  ];
  return h("dl", { class: "terms" }, rows.map(([k, v]) => h("div", { class: "row" }, h("dt", { class: "muted" }, `${k}:`), h("dd", {}, v))));
}

function render(root, ctx) {
  const s = ctx.session;
  const me = s.did;
  let coop = null;
  let currencies = [];
  let members = [];
  const decimalsOf = (code) => (currencies.find((c) => c.code === code) || { decimals: 0 }).decimals;
  const unitOf = (code) => (currencies.find((c) => c.code === code) || { unit: code }).unit;

  const note = status("account-status");
  const cards = h("div", { class: "grid", id: "balances" });
  const terms = h("div", { id: "limit-terms" });
  const chart = h("div", { id: "chart" });
  const historyBody = h("tbody", { id: "history-rows" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Show more");
  const payNote = status("pay-status");

  // Filters
  const fCurrency = h("select", { id: "f-currency" });
  const fWho = h("select", { id: "f-who" });
  const fSince = h("input", { id: "f-since", type: "date" });
  const fUntil = h("input", { id: "f-until", type: "date" });
  const fOrder = h("select", { id: "f-order" }, h("option", { value: "desc" }, "Newest first"), h("option", { value: "asc" }, "Oldest first"));
  const filters = h("form", { id: "history-filters", class: "row", onsubmit: (e) => { e.preventDefault(); loadHistory(true); } },
    h("label", { for: "f-currency" }, "Currency", fCurrency),
    h("label", { for: "f-who" }, "With", fWho),
    h("label", { for: "f-since" }, "From", fSince),
    h("label", { for: "f-until" }, "Before", fUntil),
    h("label", { for: "f-order" }, "Order", fOrder),
    h("button", { type: "submit" }, "Filter"));

  // Pay form
  const payTo = h("select", { id: "pay-to", required: true });
  const payAmount = h("input", { id: "pay-amount", inputmode: "decimal", autocomplete: "off", required: true, placeholder: "1.50" });
  const payCurrency = h("select", { id: "pay-currency" });
  const payMemo = h("input", { id: "pay-memo", maxlength: 1024, autocomplete: "off" });
  const payPass = h("input", { id: "pay-passphrase", type: "password", autocomplete: "current-password" });
  const passLabel = h("label", { for: "pay-passphrase", hidden: true }, "Passphrase (to open your key for signing)", payPass);
  const payButton = h("button", { type: "submit" }, "Sign and pay");
  const payForm = h("form", { id: "pay-form", onsubmit: pay },
    h("div", { class: "row" },
      h("label", { for: "pay-to" }, "To", payTo),
      h("label", { for: "pay-amount" }, "Amount", payAmount),
      h("label", { for: "pay-currency" }, "Currency", payCurrency)),
    h("label", { for: "pay-memo" }, "Memo (optional)", payMemo),
    passLabel, payButton, payNote);

  root.append(
    h("h1", {}, "My account"),
    note,
    h("section", { class: "card", "aria-labelledby": "bal-h" }, h("h2", { id: "bal-h" }, "Balance"), cards),
    h("section", { class: "card", "aria-labelledby": "pay-h" }, h("h2", { id: "pay-h" }, "Pay"), payForm),
    h("section", { class: "card", "aria-labelledby": "lim-h" }, h("h2", { id: "lim-h" }, "Credit limit, term by term"), terms),
    h("section", { class: "card", "aria-labelledby": "chart-h" }, h("h2", { id: "chart-h" }, "Balance over time"), chart),
    h("section", { class: "card", "aria-labelledby": "hist-h" }, h("h2", { id: "hist-h" }, "History"), filters,
      scroller("History table", h("table", {},
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "When"), h("th", { scope: "col" }, "With"),
          h("th", { scope: "col", class: "num" }, "Amount"), h("th", { scope: "col", class: "wide" }, "Memo"))),
        historyBody)), more),
  );

  async function loadBalances(early) {
    const b = await (early || api(ctx.coopPath(`/accounts/${me}/balances`)));
    fill(cards, currencies.map((c) => {
      const a = b.accounts[c.code] || { balance: 0, credit_limit: 0, available: 0 };
      return h("div", {},
        h("p", { class: "muted" }, c.unit && `${c.unit}s` !== c.code ? `${c.code} (${c.unit}s)` : c.code),
        h("p", { class: "big", id: `balance-${c.code}`, "data-units": a.balance }, display(a.balance, c.decimals)),
        h("p", {}, `Credit limit ${display(a.credit_limit, c.decimals)} · available ${display(a.available, c.decimals)}`),
        h("p", { id: `held-${c.code}`, "data-units": a.held || 0 },
          `Held for tasks ${display(a.held || 0, c.decimals)}` +
          (a.spendable == null ? "" : ` · you can pay up to ${display(a.spendable, c.decimals)}`)));
    }));
    cards.dataset.loaded = String(Date.now());
    performance.mark("icn:balance-rendered");
    const limits = await Promise.all(currencies.map((c) => api(ctx.coopPath(`/accounts/${me}/limit?currency=${c.code}`))));
    fill(terms, limits.map((l) => h("div", {}, currencies.length > 1 ? h("h3", {}, l.currency) : null, limitTerms(l, decimalsOf(l.currency)))));
    return limits;
  }

  async function loadChart(limits) {
    const items = await fullHistory(ctx, me);
    fill(chart, currencies.map((c) => {
      const lim = limits.find((l) => l.currency === c.code);
      return balanceChart(items.filter((i) => i.currency === c.code), c, lim ? lim.limit : 0);
    }));
  }

  let nextCursor = null;
  async function loadHistory(reset) {
    if (reset) nextCursor = null;
    const q = new URLSearchParams({ limit: "25", order: fOrder.value || "desc" });
    if (fCurrency.value) q.set("currency", fCurrency.value);
    if (fWho.value) q.set("counterparty", fWho.value);
    if (fSince.value) q.set("since", String(Date.parse(fSince.value)));
    if (fUntil.value) q.set("until", String(Date.parse(fUntil.value)));
    if (nextCursor !== null) q.set("after", String(nextCursor));
    const page = await api(ctx.coopPath(`/accounts/${me}/history?${q}`));
    const rows = page.items.map((i) =>
      h("tr", {}, h("td", {}, when(i.ts)), h("td", {}, didLabel(i.counterparty, me)),
        h("td", { class: "num" }, `${display(i.amount, decimalsOf(i.currency))} ${i.currency}`),
        h("td", { class: "wide" }, i.memo || "")));
    if (reset) historyBody.replaceChildren(...rows);
    else historyBody.append(...rows);
    if (!historyBody.children.length) historyBody.append(h("tr", {}, h("td", { colspan: 4, class: "muted" }, "Nothing matches.")));
    nextCursor = page.next;
    more.hidden = page.next === null;
  }
  more.addEventListener("click", () => loadHistory(false));

  async function refresh(early) {
    try {
      const limits = await loadBalances(early);
      await Promise.all([loadChart(limits), loadHistory(true)]);
    } catch (err) {
      note.textContent = `Could not load your account: ${err.message}`;
      note.className = "status error";
    }
  }

  async function pay(ev) {
    ev.preventDefault();
    const say = (text, cls) => {
      payNote.textContent = text;
      payNote.className = `status ${cls}`;
    };
    const currency = payCurrency.value;
    const d = decimalsOf(currency);
    let amount;
    try {
      amount = parseAmount(payAmount.value, d);
    } catch (err) {
      return say(err.message, "error");
    }
    payButton.disabled = true;
    try {
      let key = ctx.key();
      if (!key) {
        if (!payPass.value) {
          passLabel.hidden = false;
          payPass.focus();
          throw new Error("Your key is locked: type its passphrase to sign.");
        }
        say("Opening your key…", "");
        key = await ctx.unlock(payPass.value);
        payPass.value = "";
        passLabel.hidden = true;
      }
      const head = await api(ctx.coopPath(`/chains/${me}/head`));
      const event = await signEvent(key.privateKey, {
        coop: s.coop, author: me, seq: head.next_seq, prev: head.prev, ts: Date.now(),
        type: "ledger.EntryRecorded",
        body: { transactions: [{ from: me, to: payTo.value, amount, currency, memo: payMemo.value || null }] },
      });
      await api(ctx.coopPath("/events"), { method: "POST", body: event });
      say(`Paid ${display(amount, d)} ${currency} to ${shortDid(payTo.value)}.`, "success");
      payAmount.value = "";
      payMemo.value = "";
      refresh();
    } catch (err) {
      say(await refusalInWords(err, amount, currency), "error");
    } finally {
      payButton.disabled = false;
    }
  }

  async function refusalInWords(err, amount, currency) {
    if (!(err instanceof ApiError)) return err.message;
    const d = decimalsOf(currency);
    if (err.code === "credit-limit-exceeded") {
      try {
        const l = await api(ctx.coopPath(`/accounts/${me}/limit?currency=${currency}`));
        return `Refused: this would take you to ${display(l.balance - amount, d)} ${unitOf(currency)}s; ` +
          `your limit is ${display(-l.limit, d)}.`;
      } catch {
        /* fall through to the node's own words */
      }
    }
    const words = {
      "account-frozen": "your account is frozen",
      "member-suspended": "a member of this payment is suspended",
      "not-a-member": "the payee is not an active member",
      "unknown-currency": "the coop has no such currency",
      "self-payment": "you cannot pay yourself",
    };
    return `Refused (${err.code}): ${words[err.code] || err.message}.`;
  }

  (async () => {
    try {
      // The three first answers at once: the balance is what a member came for.
      const early = api(ctx.coopPath(`/accounts/${me}/balances`));
      early.catch(() => {});
      const [coopInfo, page] = await Promise.all([
        ctx.cached("coop", ctx.coopPath()),
        ctx.cached("members", ctx.coopPath("/members?limit=1000")),
      ]);
      coop = coopInfo;
      currencies = coop.currencies;
      members = page.members.filter((m) => m.did !== me);
      const opt = (m) => h("option", { value: m.did }, memberText(m));
      fill(payTo, members.filter((m) => m.status === "active").map(opt));
      fill(fWho, h("option", { value: "" }, "anyone"), members.map(opt));
      fill(payCurrency, currencies.map((c) => h("option", { value: c.code }, c.code)));
      fill(fCurrency, h("option", { value: "" }, "all"), currencies.map((c) => h("option", { value: c.code }, c.code)));
      if (!ctx.key()) passLabel.hidden = false;
      await refresh(early);
    } catch (err) {
      note.textContent = `Could not load your account: ${err.message}`;
      note.className = "status error";
    }
  })();

  let timer = null;
  const off = ctx.onEvent(({ event }) => {
    const mine = event.type === "ledger.EntryRecorded" &&
      (event.body.transactions || []).some((t) => t.from === me || t.to === me);
    if (!mine && event.type.split(".")[0] !== "coop") return;
    clearTimeout(timer);
    timer = setTimeout(refresh, 150);
  });
  return () => {
    off();
    clearTimeout(timer);
  };
}

export default { id: "account", title: "My account", render };
