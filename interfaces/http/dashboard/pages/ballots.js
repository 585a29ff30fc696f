// Sealed ballots kept in this browser between the commit and the reveal.
//
// The commitment is exactly icn.domain.governance.tally.commitment_of: BLAKE3 of the canonical
// JSON array [choice, credits, salt] (credits null unless quadratic). Choice, credits and the
// salt (32 random bytes as hex) stay in IndexedDB (`icn-ballots`), sealed with AES-GCM under a
// key derived from the member's own signature over a fixed text: Ed25519 signatures are
// deterministic, so the same key opens them again after a reload, nothing else can, and the
// key itself never leaves WebCrypto. The record is dropped once the reveal is in the log.

import { concat, hex, unhex, utf8 } from "../lib/bytes.js";
import { blake3Hex, sha256, sign } from "../lib/crypto.js";
import { objectStore } from "../lib/idb.js";
import { canonical } from "../lib/json.js";

const tx = objectStore("icn-ballots", "ballots", "id");

export const commitmentOf = (choice, credits, salt) =>
  blake3Hex(utf8(canonical([choice, credits ?? null, salt])));

export const newSalt = () => hex(crypto.getRandomValues(new Uint8Array(32)));

async function sealingKey(key, coop) {
  const sig = await sign(key.privateKey, utf8(`icn-ballot-key-v1:${coop}:${key.did}`));
  const raw = await sha256(sig);
  return crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
}

const idOf = (coop, did, proposal) => `${coop} ${did} ${proposal}`;

/** Keep {choice, credits, salt} for a proposal, sealed for this member. */
export async function keepBallot(key, coop, proposal, ballot) {
  const aes = await sealingKey(key, coop);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const id = idOf(coop, key.did, proposal);
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: utf8(id) }, aes, utf8(JSON.stringify(ballot))),
  );
  await tx("readwrite", (s) => s.put({ id, sealed: hex(concat(iv, sealed)) }));
}

/** Whether this browser keeps a ballot of this member for the proposal (no key needed). */
export async function hasBallot(coop, did, proposal) {
  return Boolean(await tx("readonly", (s) => s.get(idOf(coop, did, proposal))));
}

/** The kept ballot, opened with the member's key; null when none is kept. */
export async function keptBallot(key, coop, proposal) {
  const id = idOf(coop, key.did, proposal);
  const row = await tx("readonly", (s) => s.get(id));
  if (!row) return null;
  const bytes = unhex(row.sealed);
  const aes = await sealingKey(key, coop);
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: bytes.slice(0, 12), additionalData: utf8(id) }, aes, bytes.slice(12),
  );
  return JSON.parse(new TextDecoder().decode(plain));
}

export const dropBallot = (coop, did, proposal) => tx("readwrite", (s) => s.delete(idOf(coop, did, proposal)));
