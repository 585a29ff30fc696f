// Keys stay in the browser. A key arrives as the file `icn id export NAME --browser` writes
// (or is made here), is kept in IndexedDB exactly as that sealed file, and is opened per
// session with the passphrase into a non-extractable WebCrypto key held in memory only.
// Format (docs/dashboard.md): PBKDF2-SHA256 (iterations, salt) -> AES-256-GCM (iv) over the
// 32-byte seed, additional data "icn-browser-key-v1:" + DID.

import { b64, didOfPublicKey, unb64, utf8 } from "./bytes.js";
import { keyFromSeed } from "./crypto.js";
import { objectStore } from "./idb.js";

export const ITERATIONS = 600000;
const AAD = "icn-browser-key-v1:";
const tx = objectStore("icn-dashboard", "keys", "did");

async function aesKey(passphrase, salt, iterations, usage) {
  const base = await crypto.subtle.importKey("raw", utf8(passphrase), "PBKDF2", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    base,
    { name: "AES-GCM", length: 256 },
    false,
    [usage],
  );
}

/** Check a parsed file is a browser key file; returns it or throws with a reason. */
export function checkKeyFile(doc) {
  const ok =
    doc && doc.format === "icn-browser-key" && doc.version === 1 && typeof doc.did === "string" &&
    doc.kdf === "PBKDF2-SHA256" && doc.cipher === "AES-256-GCM" && Number.isSafeInteger(doc.iterations) &&
    doc.iterations >= 100000 && ["salt", "iv", "ciphertext"].every((k) => typeof doc[k] === "string");
  if (!ok) throw new Error("not a key file from `icn id export --browser`");
  return doc;
}

/** Open a key file: {did, privateKey (non-extractable), publicKey}. Wrong passphrase: throws. */
export async function openKeyFile(doc, passphrase) {
  checkKeyFile(doc);
  const key = await aesKey(passphrase, unb64(doc.salt), doc.iterations, "decrypt");
  let seed;
  try {
    seed = new Uint8Array(
      await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: unb64(doc.iv), additionalData: utf8(AAD + doc.did) },
        key,
        unb64(doc.ciphertext),
      ),
    );
  } catch {
    throw new Error("wrong passphrase (or a damaged key file)");
  }
  try {
    const { privateKey, publicKey } = await keyFromSeed(seed);
    if (didOfPublicKey(publicKey) !== doc.did) throw new Error("the key file holds a key other than its DID");
    return { did: doc.did, privateKey, publicKey };
  } finally {
    seed.fill(0);
  }
}

/** A new key made here, sealed as a key file under `passphrase`: {doc, key}. */
export async function newKey(passphrase) {
  const seed = crypto.getRandomValues(new Uint8Array(32));
  try {
    const { privateKey, publicKey } = await keyFromSeed(seed);
    const did = didOfPublicKey(publicKey);
    const salt = crypto.getRandomValues(new Uint8Array(16));
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const aes = await aesKey(passphrase, salt, ITERATIONS, "encrypt");
    const sealed = new Uint8Array(
      await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: utf8(AAD + did) }, aes, seed),
    );
    const doc = {
      format: "icn-browser-key", version: 1, did, kdf: "PBKDF2-SHA256", iterations: ITERATIONS,
      salt: b64(salt), cipher: "AES-256-GCM", iv: b64(iv), ciphertext: b64(sealed),
    };
    return { doc, key: { did, privateKey, publicKey } };
  } finally {
    seed.fill(0);
  }
}

/** Keep a sealed key file in this browser (IndexedDB), by DID. */
export const saveKeyFile = (doc) => tx("readwrite", (s) => s.put(checkKeyFile(doc)));
export const keyFiles = () => tx("readonly", (s) => s.getAll());
export const forgetKeyFile = (did) => tx("readwrite", (s) => s.delete(did));
