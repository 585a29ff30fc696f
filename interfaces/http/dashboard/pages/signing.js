// Signing from the Proposals and Trust pages: one passphrase field per page (shown only while
// the key is locked), the author's chain head asked of the node, the event built, hashed and
// signed here, then posted. A refusal is said in the node's own words (its problem details).

import { api, ApiError } from "../lib/api.js";
import { h } from "../lib/dom.js";
import { signEvent } from "../lib/event.js";

/** The page's "open my key" field and a function that returns the opened key (or throws). */
export function keyField(ctx, id) {
  const input = h("input", { id, type: "password", autocomplete: "current-password" });
  const label = h("label", { for: id, hidden: !!ctx.key() }, "Passphrase (to open your key for signing)", input);
  async function key() {
    const open = ctx.key();
    if (open) return open;
    if (!input.value) {
      label.hidden = false;
      input.focus();
      throw new Error("Your key is locked: type its passphrase above to sign.");
    }
    const k = await ctx.unlock(input.value);
    input.value = "";
    label.hidden = true;
    return k;
  }
  return { label, key };
}

/** Build, sign (in this browser) and post one event of the member's chain; returns it. */
export async function signAndPost(ctx, key, type, body) {
  const s = ctx.session;
  const head = await api(ctx.coopPath(`/chains/${s.did}/head`));
  const event = await signEvent(key.privateKey, {
    coop: s.coop, author: s.did, seq: head.next_seq, prev: head.prev, ts: Date.now(), type, body,
  });
  await api(ctx.coopPath("/events"), { method: "POST", body: event });
  return event;
}

/** A refusal in words: the problem document's detail and its stable code. */
export function inWords(err) {
  if (!(err instanceof ApiError)) return err.message;
  const p = err.problem || {};
  const said = p.detail || p.title || err.message;
  return `Refused: ${said}${said.endsWith(".") ? "" : "."} (${err.code})`;
}

/** Set a status line's text and its look (success or error). */
export function say(el, text, cls = "") {
  el.textContent = text;
  el.className = `status ${cls}`.trim();
}

/** Run fn after `ms` of quiet: many events at once make one reload. */
export function debounce(fn, ms) {
  let timer = null;
  const run = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  run.cancel = () => clearTimeout(timer);
  return run;
}

export const percent = (ppm) => `${(ppm / 10000).toFixed(1).replace(/\.0$/, "")} %`;
