// RFC 6962 / 9162 Merkle proofs and C2SP signed checkpoint notes (spec section 5), in the browser.
//
// "Verify in my browser" is green only when these functions, run here, accept the node's
// answers: the checkpoint's Ed25519 signature by the node's DID, the inclusion proof of one
// event leading to the checkpoint's root, and the consistency proof that this checkpoint's
// tree extends the one this browser saw last (the node cannot rewrite what it showed before).

import { b64, concat, equal, hex, publicKeyOfDid, unb64, unhex, utf8 } from "./bytes.js";
import { sha256, verify } from "./crypto.js";

export const leafHash = (idBytes) => sha256(concat(Uint8Array.of(0), idBytes));
const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

/** The root an inclusion proof leads to (RFC 9162 section 2.1.3.2), or throws. */
export async function rootFromInclusion(index, size, leaf, proof) {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) {
    throw new Error("index must lie inside the tree");
  }
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) throw new Error("proof is longer than the tree");
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error("proof is shorter than the tree");
  return r;
}

/** True when `proof` shows the event `idHex` at `index` in the tree of `size` with `rootHex`. */
export async function verifyInclusion(idHex, index, size, proofHex, rootHex) {
  try {
    const leaf = await leafHash(unhex(idHex));
    const root = await rootFromInclusion(index, size, leaf, proofHex.map(unhex));
    return equal(root, unhex(rootHex));
  } catch {
    return false;
  }
}

const isPowerOfTwo = (n) => {
  while (n > 1 && n % 2 === 0) n /= 2;
  return n === 1;
};

/** Throws unless `proof` shows the tree of `size1` with `root1` is a prefix of the tree of
 * `size2` with `root2` (RFC 9162 section 2.1.4.2; halving, not bit shifts: sizes pass 2^31). */
export async function checkConsistency(size1, size2, proof, root1, root2) {
  if (!(Number.isSafeInteger(size1) && Number.isSafeInteger(size2) && size1 >= 0)) {
    throw new Error("tree sizes must be whole numbers");
  }
  if (size1 > size2) throw new Error("the first tree is larger than the second");
  if (size1 === size2) {
    if (proof.length || !equal(root1, root2)) throw new Error("equal sizes need an empty proof and equal roots");
    return;
  }
  if (size1 === 0) {
    if (proof.length) throw new Error("the empty tree needs an empty proof");
    return;
  }
  if (!proof.length) throw new Error("empty proof");
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) throw new Error("proof is longer than the tree is deep");
    if (fn % 2 === 1 || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error("proof is shorter than the tree is deep");
  if (!equal(fr, root1)) throw new Error("proof does not lead to the first root");
  if (!equal(sr, root2)) throw new Error("proof does not lead to the second root");
}

/** True when the hex `proof` shows tree (size1, root1Hex) is a prefix of tree (size2, root2Hex). */
export async function verifyConsistency(size1, size2, proofHex, root1Hex, root2Hex) {
  try {
    await checkConsistency(size1, size2, proofHex.map(unhex), unhex(root1Hex), unhex(root2Hex));
    return true;
  } catch {
    return false;
  }
}

const SIGNATURE_PREFIX = "\u2014 "; // EM DASH and a space (signed-note)

async function keyHash(name, publicKey) {
  return (await sha256(concat(utf8(name + "\n"), Uint8Array.of(1), publicKey))).slice(0, 4);
}

/** Check a note is signed by `signerDid` and parse it: {origin, size, rootHex}; throws. */
export async function openCheckpoint(note, signerDid) {
  const cut = note.indexOf("\n\n");
  if (cut <= 0) throw new Error("a note is text, a blank line, then signature lines");
  const text = note.slice(0, cut) + "\n";
  const signatures = note.slice(cut + 2);
  let publicKey;
  try {
    publicKey = publicKeyOfDid(signerDid);
  } catch (err) {
    throw new Error(`bad signer DID: ${err.message}`);
  }
  const expected = await keyHash(signerDid, publicKey);
  for (const line of signatures.split("\n")) {
    if (!line.startsWith(SIGNATURE_PREFIX)) continue;
    const rest = line.slice(SIGNATURE_PREFIX.length);
    const space = rest.indexOf(" ");
    const name = space < 0 ? rest : rest.slice(0, space);
    if (name !== signerDid) continue;
    let raw;
    try {
      const blob = space < 0 ? "" : rest.slice(space + 1);
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(blob)) continue;
      raw = unb64(blob);
    } catch {
      continue;
    }
    if (raw.length !== 68 || !equal(raw.slice(0, 4), expected)) continue;
    if (!(await verify(publicKey, raw.slice(4), utf8(text)))) throw new Error("note signature does not verify");
    return parseText(text);
  }
  throw new Error(`note carries no signature by ${signerDid}`);
}

function parseText(text) {
  const lines = text.split("\n");
  if (lines.length < 4) throw new Error("checkpoint text needs origin, size and root lines");
  const [origin, sizeLine, rootLine] = lines;
  if (!/^(0|[1-9][0-9]*)$/.test(sizeLine)) throw new Error("tree size must be a decimal number");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(rootLine)) throw new Error("root hash must be standard base64");
  const root = unb64(rootLine);
  if (root.length !== 32) throw new Error("root hash must be 32 bytes");
  return { origin, size: Number(sizeLine), rootHex: hex(root), rootB64: b64(root) };
}
