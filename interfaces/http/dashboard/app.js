// The dashboard's entry: the session, the navigation, one live stream shared by every page.
//
// One page of HTML, pages drawn by modules (pages/*.js) under #/name routes, so the key opened
// at login stays in memory while a member moves between pages. A page module exports
// {id, title, render(root, ctx)} and render returns a cleanup function; pages/registry.js
// lists them (adding Proposals or Trust is a new module plus one line there).

import { api, coopPath, endSession, follow, session } from "./lib/api.js";
import { h, fill, shortDid } from "./lib/dom.js";
import { keyFiles, openKeyFile } from "./lib/keys.js";
import { PAGES } from "./pages/registry.js";
import { renderLogin } from "./pages/login.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");

let key = null; // {did, privateKey (non-extractable), publicKey}: memory only
let cleanup = () => {};
const listeners = new Set();
let live = null;
let cache = {};

const ctx = {
  get session() {
    return session();
  },
  key: () => key,
  setKey(k) {
    key = k;
  },
  /** Open this browser's stored key file for the session's DID with a passphrase. */
  async unlock(passphrase) {
    const s = session();
    const doc = (await keyFiles()).find((d) => d.did === s.did);
    if (!doc) throw new Error("this browser holds no key for your DID: log in again with your key file");
    key = await openKeyFile(doc, passphrase);
    return key;
  },
  /** Subscribe to live events ({position, event}); returns the unsubscribe function. */
  onEvent(fn) {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },
  liveState: "connecting",
  /** GET once per session (coop facts, members, node): pages share these. */
  async cached(name, path) {
    if (!(name in cache)) cache[name] = api(path).catch((e) => { delete cache[name]; throw e; });
    return cache[name];
  },
  forget(name) {
    delete cache[name];
  },
  coopPath,
  go(route) {
    location.hash = `#/${route}`;
  },
};

function startLive() {
  if (live) return;
  live = new AbortController();
  const s = session();
  api("/v1/ready")
    .catch((e) => e.problem || {})
    .then((ready) => {
      const size = ((ready.coops || {})[s.coop] || {}).size || 0;
      follow(size - 1, (item) => {
        cache = Object.fromEntries(Object.entries(cache).filter(([k]) => k === "node"));
        for (const fn of listeners) fn(item);
      }, live.signal, (state) => {
        ctx.liveState = state;
        const el = document.getElementById("live-state");
        if (el) el.textContent = state === "live" ? "live" : state;
      });
    });
}

function header() {
  const s = session();
  fill(nav, ...(s ? PAGES.map((p) => h("a", { href: `#/${p.id}`, "data-page": p.id }, p.title)) : []));
  fill(
    who,
    s
      ? [
          h("span", { class: "mono", title: s.did }, `${s.coop} · ${shortDid(s.did)}`),
          h("span", { id: "live-state", class: "badge", "aria-live": "polite" }, ctx.liveState),
          h("button", { class: "secondary", type: "button", onclick: logout }, "Log out"),
        ]
      : [],
  );
}

function logout() {
  endSession();
  key = null;
  cache = {};
  if (live) live.abort();
  live = null;
  location.hash = "#/login";
  route();
}

function route() {
  cleanup();
  cleanup = () => {};
  const s = session();
  const wanted = location.hash.replace(/^#\/?/, "") || "account";
  header();
  if (!s) {
    document.title = "Log in — ICN";
    cleanup = renderLogin(main, {
      ...ctx,
      done(k) {
        key = k;
        cache = {};
        location.hash = "#/account";
        route();
      },
    }) || (() => {});
    return;
  }
  startLive();
  const page = PAGES.find((p) => p.id === wanted) || PAGES.find((p) => p.id === "account");
  for (const a of nav.querySelectorAll("a")) {
    if (a.dataset.page === page.id) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${page.title} — ICN`;
  main.replaceChildren();
  cleanup = page.render(main, ctx) || (() => {});
  main.focus({ preventScroll: true });
}

// The skip link must not change the #/route: it moves focus to the content itself.
document.querySelector(".skip").addEventListener("click", (ev) => {
  ev.preventDefault();
  main.focus();
});
window.addEventListener("hashchange", route);
window.addEventListener("icn:session-ended", logout);
route();
