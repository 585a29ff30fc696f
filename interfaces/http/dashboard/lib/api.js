// The node's JSON API, called with the bearer token of a DID login.
//
// CSRF-safe by construction: no cookie authenticates anything. The token lives in this
// tab's sessionStorage and goes out only in the Authorization header, which another site
// cannot make the browser add. The live stream is read with fetch (EventSource cannot send
// that header), parsed as Server-Sent Events here.

import { hex, unhex, utf8, concat } from "./bytes.js";
import { sign } from "./crypto.js";

const SESSION = "icn.session";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || "http-" + status;
    this.problem = problem;
  }
}

export function session() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION) || "null");
    return s && s.expires_at > Date.now() ? s : null;
  } catch {
    return null;
  }
}

export const endSession = () => sessionStorage.removeItem(SESSION);

async function call(path, { method = "GET", body, token, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method, headers, signal, body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    credentials: "omit", cache: "no-store",
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text };
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data || {});
    // An expired or refused token ends the session: the app shows Log in again.
    if (token && res.status === 401) window.dispatchEvent(new CustomEvent("icn:session-ended", { detail: err.code }));
    throw err;
  }
  return data;
}

/** GET/POST a path of the signed-in coop's API. */
export function api(path, opts = {}) {
  const s = session();
  return call(path, { ...opts, token: s && s.token });
}

export const coopPath = (rest = "") => `/v1/coops/${encodeURIComponent(session().coop)}${rest}`;

/** Which coops this node serves (no token needed). */
export async function coops() {
  const ready = await call("/v1/ready").catch((e) => (e.problem && e.problem.coops ? e.problem : { coops: {} }));
  return Object.keys(ready.coops || {}).sort();
}

/** DID login: sign the node's challenge in this browser; keep the token for this tab. */
export async function login(key, coop) {
  const { nonce } = await call("/v1/auth/challenge", { method: "POST", body: { did: key.did } });
  const signature = await sign(key.privateKey, concat(utf8("icn-auth-v1:"), unhex(nonce)));
  const t = await call("/v1/auth/verify", {
    method: "POST",
    body: { did: key.did, nonce, signature: hex(signature), coop },
  });
  const s = { token: t.token, expires_at: t.expires_at, scopes: t.scopes, did: key.did, coop };
  sessionStorage.setItem(SESSION, JSON.stringify(s));
  return s;
}

/**
 * Follow the coop's SSE stream from `after`; calls onEvent({position, event}) per event.
 * Reconnects after a drop (resuming from the last position) until `signal` aborts.
 */
export async function follow(after, onEvent, signal, onState = () => {}) {
  let last = after;
  while (!signal.aborted) {
    try {
      const s = session();
      if (!s) return;
      const res = await fetch(coopPath(`/stream?after=${last}`), {
        headers: { Authorization: `Bearer ${s.token}`, Accept: "text/event-stream" },
        signal, credentials: "omit", cache: "no-store",
      });
      if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => ({})));
      onState("live");
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let id = null;
          let kind = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("id:")) id = line.slice(3).trim();
            else if (line.startsWith("event:")) kind = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (id === null || kind === "error" || !data.length) continue;
          last = Number(id);
          onEvent({ position: last, event: JSON.parse(data.join("\n")), raw: data.join("\n") });
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      onState("reconnecting");
      if (err instanceof ApiError && err.status < 500 && err.status !== 429) {
        onState("stopped: " + err.message);
        return;
      }
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}
