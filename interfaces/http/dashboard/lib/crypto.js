// The primitives: BLAKE3 (vendored @noble/hashes), SHA-256 and Ed25519 (WebCrypto).
//
// WebCrypto needs a secure context: the node over https, or on localhost/127.0.0.1.
// Private keys enter WebCrypto from a 32-byte seed as PKCS#8 and are never extractable.

import { blake3 as b3 } from "../vendor/blake3.js";
import { concat, equal, hex } from "./bytes.js";

export const blake3Hex = (bytes) => hex(b3(bytes));

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

// PKCS#8 wrapping of an Ed25519 seed (RFC 8410): a fixed 16-byte prefix, then the seed.
const PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

/**
 * A non-extractable signing key from a seed, and its 32-byte public key.
 * The public key is read from a short-lived extractable copy that is dropped at once.
 */
export async function keyFromSeed(seed) {
  const pkcs8 = concat(PKCS8_PREFIX, seed);
  try {
    const probe = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, ["sign"]);
    const jwk = await crypto.subtle.exportKey("jwk", probe);
    const publicKey = b64urlBytes(jwk.x);
    const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, [
      "sign",
    ]);
    return { privateKey, publicKey };
  } finally {
    pkcs8.fill(0);
  }
}

/** A fresh key pair made in the browser: the private half never leaves WebCrypto. */
export async function generateKey() {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
  const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return { privateKey: pair.privateKey, publicKey };
}

export async function sign(privateKey, message) {
  return new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, privateKey, message));
}

export async function verify(publicKey, signature, message) {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch {
    return false;
  }
}

function b64urlBytes(text) {
  const std = text.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(std + "=".repeat((4 - (std.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

export { equal };
