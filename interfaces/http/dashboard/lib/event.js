// Signed events in the browser (spec sections 3, 4 and 6): id, signature, the verdicts.
//
// The same checks as icn.domain.events.envelope.inspect and chain.judge, so a line gets
// the same verdict here as from `icn audit verify`: the Playwright test runs the spec's
// vectors through this module and compares both verdicts and balances.

import { MAX_DEPTH, canonical, modelProblem, parse, Unsafe } from "./json.js";
import { concat, publicKeyOfDid, unhex, utf8 } from "./bytes.js";
import { blake3Hex, sign, verify } from "./crypto.js";
import { openCheckpoint } from "./merkle.js";

export const MAX_EVENT_BYTES = 64 * 1024;
export const MAX_LINE_BYTES = 4 * MAX_EVENT_BYTES;
export const SIGNING_CONTEXT = utf8("icn-event-v1:");
const ENVELOPE = ["v", "coop", "author", "seq", "prev", "ts", "type", "body"];
const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;
const COOP = /^[a-z0-9][a-z0-9-]{0,63}$/;
const TYPE = /^[a-z]+\.[A-Za-z]+$/;
const CURRENCY = /^[a-z0-9_-]{1,16}$/;
const isInt = (v) => typeof v === "number" && Number.isSafeInteger(v);

/** The unsigned part of an event (what its id hashes). */
export const unsigned = (e) => Object.fromEntries(ENVELOPE.map((k) => [k, e[k]]));

export const computeId = (e) => blake3Hex(utf8(canonical(unsigned(e))));

export const signingMessage = (id) => concat(SIGNING_CONTEXT, unhex(id));

/** Build and sign an event of the key's chain (the browser's own writes). */
export async function signEvent(key, { coop, author, seq, prev, ts, type, body }) {
  const e = { v: 1, coop, author, seq, prev, ts, type, body };
  const id = computeId(e);
  const sig = await sign(key, signingMessage(id));
  return { ...e, id, sig: Array.from(sig, (b) => b.toString(16).padStart(2, "0")).join("") };
}

function envelopeProblem(e) {
  if (e === null || typeof e !== "object" || Array.isArray(e)) return "not an object";
  for (const k of [...ENVELOPE, "id", "sig"]) {
    if (!(k in e)) return `Object missing required field \`${k}\``;
  }
  for (const k of Object.keys(e)) {
    if (!ENVELOPE.includes(k) && k !== "id" && k !== "sig") return `Object contains unknown field \`${k}\``;
  }
  if (e.v !== 1) return "`v` must be 1";
  if (typeof e.coop !== "string" || !COOP.test(e.coop)) return "bad `coop`";
  if (typeof e.author !== "string") return "bad `author`";
  if (!isInt(e.seq) || e.seq < 1) return "bad `seq`";
  if (e.prev !== null && (typeof e.prev !== "string" || !HEX64.test(e.prev))) return "bad `prev`";
  if (!isInt(e.ts) || e.ts < 0) return "bad `ts`";
  if (typeof e.type !== "string" || !TYPE.test(e.type)) return "bad `type`";
  if (e.body === null || typeof e.body !== "object" || Array.isArray(e.body)) return "bad `body`";
  if (typeof e.id !== "string" || !HEX64.test(e.id)) return "bad `id`";
  if (typeof e.sig !== "string" || !HEX128.test(e.sig)) return "bad `sig`";
  return null;
}

const validDid = (d) => {
  try {
    publicKeyOfDid(d);
    return true;
  } catch {
    return false;
  }
};

function entryProblem(body) {
  const keys = Object.keys(body);
  if (keys.length !== 1 || keys[0] !== "transactions") return "bad ledger.EntryRecorded body";
  const txs = body.transactions;
  if (!Array.isArray(txs) || txs.length < 1 || txs.length > 64) return "bad ledger.EntryRecorded body";
  for (const [i, tx] of txs.entries()) {
    if (tx === null || typeof tx !== "object" || Array.isArray(tx)) return `bad transaction ${i}`;
    for (const k of Object.keys(tx)) {
      if (!["from", "to", "amount", "currency", "memo"].includes(k)) return `bad transaction ${i}`;
    }
    if (!("amount" in tx) || !isInt(tx.amount) || tx.amount < 1) {
      return `transaction ${i}: amount must be a whole number of units from 1 to 2^53-1`;
    }
    if (typeof tx.from !== "string" || typeof tx.to !== "string") return `bad transaction ${i}`;
    if (typeof tx.currency !== "string" || !CURRENCY.test(tx.currency)) return `bad currency in transaction ${i}`;
    if (tx.memo != null && (typeof tx.memo !== "string" || Array.from(tx.memo).length > 1024)) {
      return `bad memo in transaction ${i}`;
    }
  }
  for (const [i, tx] of txs.entries()) {
    if (!validDid(tx.from) || !validDid(tx.to)) return `bad DID in transaction ${i}`;
    if (tx.from === tx.to) return `transaction ${i} pays an account to itself`;
  }
  return null;
}

function checkpointBodyProblem(body) {
  const keys = Object.keys(body).sort().join(",");
  if (keys !== "note,root,size") return "bad log.CheckpointIssued body";
  if (!isInt(body.size) || body.size < 0) return "bad log.CheckpointIssued body";
  if (typeof body.root !== "string" || !HEX64.test(body.root)) return "bad log.CheckpointIssued body";
  if (typeof body.note !== "string" || Array.from(body.note).length > 4096) return "bad log.CheckpointIssued body";
  return null;
}

const SPEC_BODIES = { "ledger.EntryRecorded": entryProblem, "log.CheckpointIssued": checkpointBodyProblem };

/**
 * The stateless checks of one line: {verdict: null|"malformed"|"bad-id"|"bad-signature", reason, event}.
 * `event` is kept for bad-id and bad-signature (the chain checks still run on it first).
 */
export async function inspect(line) {
  const bytes = typeof line === "string" ? utf8(line) : line;
  const malformed = (reason) => ({ verdict: "malformed", reason, event: null });
  if (bytes.length > MAX_LINE_BYTES) return malformed("event too large");
  let parsed;
  try {
    parsed = parse(typeof line === "string" ? line : new TextDecoder("utf-8", { fatal: true }).decode(line));
  } catch (err) {
    return malformed(`not JSON: ${err.message}`);
  }
  const e = parsed.value;
  for (const k of ["v", "seq", "ts"]) if (e && e[k] instanceof Unsafe) return malformed(`bad \`${k}\``);
  const shape = envelopeProblem(e);
  if (shape) return malformed(shape);
  if (parsed.depth > MAX_DEPTH) return malformed(`nesting deeper than ${MAX_DEPTH} levels`);
  if ((e.prev === null) !== (e.seq === 1)) return malformed("`prev` must be null exactly when `seq` is 1");
  try {
    publicKeyOfDid(e.author);
  } catch (err) {
    return malformed(`bad author DID: ${err.message}`);
  }
  const model = modelProblem(e.body, "$.body");
  if (model) return malformed(model);
  const spec = SPEC_BODIES[e.type];
  const bodyProblem = spec ? spec(e.body) : null;
  if (bodyProblem) return malformed(bodyProblem);
  const wire = utf8(canonical(e));
  if (wire.length > MAX_EVENT_BYTES) return malformed(`event too large: ${wire.length} bytes`);
  const expected = computeId(e);
  if (expected !== e.id) return { verdict: "bad-id", reason: `id does not match content (expected ${expected})`, event: e };
  const ok = await verify(publicKeyOfDid(e.author), unhex(e.sig), signingMessage(e.id));
  if (!ok) return { verdict: "bad-signature", reason: "signature does not verify for author", event: e };
  return { verdict: null, reason: "", event: e };
}

/** The chain state a verifier keeps: heads per (coop, author), ids by seq, coop DIDs. */
export class Chains {
  constructor() {
    this.heads = new Map();
    this.ids = new Map();
    this.coopDids = new Map();
  }
  head(coop, author) {
    return this.heads.get(`${coop} ${author}`) || null;
  }
  accept(e) {
    this.heads.set(`${e.coop} ${e.author}`, { seq: e.seq, id: e.id, ts: e.ts });
    this.ids.set(`${e.coop} ${e.author} ${e.seq}`, e.id);
    if (e.type === "coop.Founded" && !this.coopDids.has(e.coop)) this.coopDids.set(e.coop, e.author);
  }
}

async function stateProblem(e, chains) {
  if (e.type === "ledger.EntryRecorded") {
    const txs = e.body.transactions;
    if (txs.every((tx) => tx.from === e.author)) return null;
    if (e.author === chains.coopDids.get(e.coop)) return null;
    const i = txs.findIndex((tx) => tx.from !== e.author);
    return `transaction ${i} debits ${txs[i].from}; only the author's account may be debited`;
  }
  if (e.type === "log.CheckpointIssued") {
    try {
      const cp = await openCheckpoint(e.body.note, e.author);
      if (cp.origin !== `icn/${e.coop}/${e.author}`) return "checkpoint note names another log";
      if (cp.size !== e.body.size || cp.rootHex !== e.body.root) {
        return "checkpoint note does not state the body's size and root";
      }
    } catch (err) {
      return `bad checkpoint note: ${err.message}`;
    }
  }
  return null;
}

/** The verdict of spec section 4 for one line against the chains seen so far. */
export async function judge(line, chains) {
  const seen = await inspect(line);
  const e = seen.event;
  if (seen.verdict === "malformed" || !e) return { verdict: seen.verdict || "malformed", reason: seen.reason };
  const state = await stateProblem(e, chains);
  if (state) return { verdict: "malformed", reason: state };
  if (seen.verdict) return { verdict: seen.verdict, reason: seen.reason };
  const head = chains.head(e.coop, e.author);
  const last = head ? head.seq : 0;
  if (e.seq <= last) {
    if (chains.ids.get(`${e.coop} ${e.author} ${e.seq}`) === e.id) return { verdict: "duplicate", reason: "already accepted" };
    return { verdict: "fork", reason: `a different event is already at seq ${e.seq} of this chain` };
  }
  if (e.seq > last + 1) return { verdict: "gap", reason: `seq ${e.seq} but the chain ends at ${last}` };
  if (head) {
    if (e.prev !== head.id) return { verdict: "broken-link", reason: `prev is not the id of seq ${head.seq}` };
    if (e.ts < head.ts) return { verdict: "broken-link", reason: "ts goes back along the chain" };
  }
  return { verdict: "ok", reason: "", event: e };
}

/** Verdicts of every line of a log, and the balances its ok entries make (spec section 6). */
export async function audit(lines) {
  const chains = new Chains();
  const verdicts = [];
  const reasons = [];
  const balances = {};
  for (const line of lines) {
    const j = await judge(line, chains);
    verdicts.push(j.verdict);
    reasons.push(j.reason);
    if (j.verdict !== "ok") continue;
    chains.accept(j.event);
    if (j.event.type !== "ledger.EntryRecorded") continue;
    for (const tx of j.event.body.transactions) {
      const c = (balances[tx.currency] ||= {});
      c[tx.from] = (c[tx.from] || 0) - tx.amount;
      c[tx.to] = (c[tx.to] || 0) + tx.amount;
    }
  }
  return { verdicts, reasons, balances };
}
