"""The members' dashboard in a real browser (Debian's chromium, headless) against a real node.

One node with the demo coop serves every test here. Members export their keys with
``icn id export --browser``, import them in the page and log in; the browser signs the
login challenge and every payment itself. Every request the flows make is recorded, and
the last test proves none carried the private key in any spelling. The spec's vectors run
through the page's own JavaScript and must get Python's verdicts.

Screenshots go to ``tests/e2e/artifacts/`` (git-ignored); the best are in docs/dashboard/.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, Route, sync_playwright
from support.nodes import RunningNode, bearer, login, run_icn

from icn.application.audit import audit_lines, split_lines
from icn.domain.log.merkle import VerificationError, verify_consistency
from icn.infrastructure.browser_key import open_seed, seal
from icn.infrastructure.keystore import Keystore

from .conftest import PASSPHRASE

CHROMIUM = os.environ.get("ICN_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
BROWSER_PASSPHRASE = "correct horse battery staple"
PAYER, PAYEE = "demo-amara", "demo-ben"
PHONE = {"width": 390, "height": 844}
WAIT_MS = 20_000
PAGE_ERRORS: dict[str, list[str]] = {}


class Seen:
    """Every request a browser context made: method, URL and body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes]] = []

    def record(self, request: Request) -> None:
        body = request.post_data_buffer or b""
        self.requests.append((request.method, request.url, body))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, icn_path_module: str, icn_env_module: dict):
    """A node with the demo coop, checkpointing every second; browser key files of two members."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: `make test` installs Debian's chromium (as root)")
    env = {**icn_env_module, "ICN_CHECKPOINT_SECONDS": "1"}
    data = tmp_path_factory.mktemp("dashboard") / "node"
    run_icn(icn_path_module, env, "node", "init", "--data-dir", str(data))
    run_icn(icn_path_module, env, "demo", "seed", "--data-dir", str(data))
    keys = {name: data.parent / f"{name}.browser-key.json" for name in (PAYER, PAYEE)}
    run_icn(
        icn_path_module, {**env, "EXPORT_PW": BROWSER_PASSPHRASE},
        "id", "export", PAYER, "--browser", "--out", str(keys[PAYER]),
        "--passphrase-env", "EXPORT_PW", "--data-dir", str(data),
    )  # fmt: skip
    assert keys[PAYER].stat().st_mode & 0o777 == 0o600
    # The payee's file is sealed in-process (the same function; one CLI start less).
    keystore = Keystore(data / "keys")
    sealed = seal(
        bytes(keystore.unlock(PAYEE, PASSPHRASE)), keystore.info(PAYEE).did, BROWSER_PASSPHRASE
    )
    keys[PAYEE].write_text(json.dumps(sealed))
    running = RunningNode(icn_path_module, env, data).start()
    yield running, keys
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless, driven by Playwright (no browser download)."""
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def seen() -> Seen:
    """The requests of every flow in this module, for the private-key test at the end."""
    return Seen()


def _context(browser: Browser, seen: Seen) -> BrowserContext:
    ctx = browser.new_context(viewport=PHONE)
    ctx.on("request", seen.record)
    return ctx


def _errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # The browser logs every refused request (a 409 is the refusal test's point): not an error.
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    return errors


def _log_in(page: Page, base: str, key_file: Path) -> None:
    page.goto(base + "/")
    page.wait_for_selector("#coop option[value=demo]", state="attached", timeout=WAIT_MS)
    page.select_option("#coop", "demo")
    page.set_input_files("#key-file", str(key_file))
    page.fill("#import-passphrase", BROWSER_PASSPHRASE)
    page.click("#import-form button[type=submit]")
    page.wait_for_selector("#balance-hours", timeout=WAIT_MS)


def _balance(page: Page) -> int:
    return int(page.get_attribute("#balance-hours", "data-units") or "0")


def _wait_balance(page: Page, units: int) -> None:
    # A function, not a string: the page's CSP forbids eval, and a string predicate is eval'd.
    page.wait_for_function(
        "(units) => document.querySelector('#balance-hours').dataset.units == units",
        arg=units,
        timeout=WAIT_MS,
    )


def _shot(page: Page, name: str) -> None:
    """The whole page, and what a 390 px phone shows first (``-top``)."""
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-top.png"))


@pytest.fixture(scope="module")
def payer(node, browser: Browser, seen: Seen) -> Iterator[Page]:
    """demo-amara, logged in by importing her exported key file."""
    running, keys = node
    ctx = _context(browser, seen)
    page = ctx.new_page()
    PAGE_ERRORS[PAYER] = _errors(page)
    _log_in(page, running.base, keys[PAYER])
    yield page
    ctx.close()


def test_the_node_serves_the_dashboard_under_a_strict_csp(node) -> None:
    running, _ = node
    shell = httpx.get(running.base + "/")
    assert shell.status_code == 200 and shell.headers["content-type"].startswith("text/html")
    csp = shell.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "unsafe" not in csp
    assert "<script>" not in shell.text and "style=" not in shell.text  # nothing inline
    srcs = [
        part.split('"')[0]
        for part in shell.text.split('href="')[1:] + shell.text.split('src="')[1:]
    ]
    assets = [s for s in srcs if s.startswith("/assets/")]
    assert len(assets) >= 10
    for url in assets:
        got = httpx.get(running.base + url)
        assert got.status_code == 200 and "immutable" in got.headers["cache-control"]
        sri = "sha384-" + base64.b64encode(hashlib.sha384(got.content).digest()).decode()
        assert f'"{url}" integrity="{sri}"' in shell.text
    version = assets[0].split("/")[2]
    stale = httpx.get(running.base + assets[0].replace(version, "0" * 16))
    assert stale.status_code == 404
    outside = httpx.get(f"{running.base}/assets/{version}/serve.py")
    assert outside.status_code == 404


def test_the_browser_export_refuses_in_words_and_never_overwrites(
    node, icn_path_module: str, icn_env_module: dict
) -> None:
    running, keys = node
    before = keys[PAYER].read_bytes()
    env = {**icn_env_module, "EXPORT_PW": BROWSER_PASSPHRASE}
    d = ["--data-dir", str(running.data)]

    def export(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [icn_path_module, "id", "export", PAYER, *args, *d], env={**env, **(extra or {})},
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    out = str(keys[PAYER])
    taken = export("--browser", "--out", out, "--passphrase-env", "EXPORT_PW")
    assert taken.returncode == 1 and "File exists" in taken.stderr
    assert keys[PAYER].read_bytes() == before
    fresh = str(running.data.parent / "other.json")
    unset = export("--browser", "--out", fresh, "--passphrase-env", "NOT_SET")
    assert unset.returncode == 1 and "NOT_SET is unset or empty" in unset.stderr
    weak = export("--browser", "--out", fresh, "--passphrase-env", "W", extra={"W": "short"})
    assert weak.returncode == 1 and "at least 8 characters" in weak.stderr
    no_tty = export("--browser", "--out", fresh)
    assert no_tty.returncode == 1 and "--passphrase-env" in no_tty.stderr
    plain = export("--out", fresh, "--passphrase-env", "EXPORT_PW")
    assert plain.returncode == 2 and "--browser" in plain.stderr
    assert not Path(fresh).exists()
    for answer in (taken, unset, weak, no_tty, plain):
        assert "Traceback" not in answer.stderr


def test_the_spec_vectors_get_pythons_verdicts_in_the_browser(
    node, browser: Browser, vectors_dir: Path
) -> None:
    running, _ = node
    expected = json.loads((vectors_dir / "expected.json").read_text())
    merkle = json.loads((vectors_dir / "merkle.json").read_text())
    keys = json.loads((vectors_dir / "keys.json").read_text())
    logs = {name: (vectors_dir / name).read_bytes() for name in expected}
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(running.base + "/")
    base = page.eval_on_selector("script[type=module]", "s => s.src.replace(/app\\.js$/, '')")
    result = page.evaluate(
        """async ([base, logs, merkle, keys]) => {
            const ev = await import(base + "lib/event.js");
            const mk = await import(base + "lib/merkle.js");
            const js = await import(base + "lib/json.js");
            const cr = await import(base + "lib/crypto.js");
            const by = await import(base + "lib/bytes.js");
            const out = {logs: {}, ids: [], inclusion: [], dids: {}};
            for (const [name, text] of Object.entries(logs)) {
                const lines = text.split("\\n").filter((l) => l.length);
                out.logs[name] = await ev.audit(lines);
                if (name === "ok.jsonl") {
                    for (const line of lines) {
                        const e = js.parse(line).value;
                        out.ids.push([ev.computeId(e), js.canonical(e) === line]);
                    }
                }
            }
            for (const p of merkle.inclusion) {
                out.inclusion.push(await mk.verifyInclusion(
                    p.leaf, p.index, p.size, p.proof, merkle.roots[String(p.size)]));
            }
            out.consistency = [];
            for (const c of merkle.consistency) {
                const r1 = merkle.roots[String(c.size1)], r2 = merkle.roots[String(c.size2)];
                out.consistency.push(await mk.verifyConsistency(c.size1, c.size2, c.proof, r1, r2));
            }
            const flip = (x) => x.replace(/^./, (ch) => (ch === "0" ? "1" : "0"));
            out.consistencyBent = [];
            for (const c of merkle.consistency.filter((c) => c.proof.length)) {
                const r1 = merkle.roots[String(c.size1)], r2 = merkle.roots[String(c.size2)];
                const each = [];
                for (let i = 0; i < c.proof.length; i++) {
                    const wrong = [...c.proof];
                    wrong[i] = flip(wrong[i]);
                    each.push(await mk.verifyConsistency(c.size1, c.size2, wrong, r1, r2));
                }
                each.push(await mk.verifyConsistency(c.size1, c.size2, c.proof, r1, flip(r2)));
                each.push(await mk.verifyConsistency(c.size1, c.size2, c.proof.slice(1), r1, r2));
                out.consistencyBent.push(each);
            }
            const bent = merkle.inclusion.find((p) => p.proof.length);
            const wrong = [...bent.proof];
            wrong[0] = wrong[0].replace(/^./, (c) => (c === "0" ? "1" : "0"));
            out.tampered = await mk.verifyInclusion(
                bent.leaf, bent.index, bent.size, wrong, merkle.roots[String(bent.size)]);
            const cp = merkle.checkpoint;
            out.checkpoint = await mk.openCheckpoint(cp.note, cp.node);
            for (const [name, k] of Object.entries(keys)) {
                const key = await cr.keyFromSeed(by.unhex(k.seed));
                out.dids[name] = by.didOfPublicKey(key.publicKey);
            }
            return out;
        }""",
        [base, {k: v.decode() for k, v in logs.items()}, merkle, keys],
    )
    ctx.close()
    for name, raw in logs.items():
        python = audit_lines(split_lines(raw))
        assert result["logs"][name]["verdicts"] == expected[name]["verdicts"] == python.verdicts
        assert result["logs"][name]["balances"] == expected[name]["balances"] == python.balances
    ok_lines = logs["ok.jsonl"].splitlines()
    assert [i for i, _ in result["ids"]] == [json.loads(line)["id"] for line in ok_lines]
    assert all(same for _, same in result["ids"])  # canonical bytes == the exported line
    assert result["inclusion"] == [True] * len(merkle["inclusion"]) and not result["tampered"]
    # RFC 6962 consistency: the JS gets Python's verdict on every vector, and on each vector
    # bent (one hash of its proof flipped, the second root flipped, the proof cut short).
    python_says = []
    for c in merkle["consistency"]:
        r1, r2 = (bytes.fromhex(merkle["roots"][str(c[k])]) for k in ("size1", "size2"))
        try:
            verify_consistency(
                c["size1"], c["size2"], [bytes.fromhex(p) for p in c["proof"]], r1, r2
            )
            python_says.append(True)
        except VerificationError:
            python_says.append(False)
    assert result["consistency"] == python_says == [True] * len(merkle["consistency"])
    bent_cases = [c for c in merkle["consistency"] if c["proof"]]
    assert len(result["consistencyBent"]) == len(bent_cases) > 0
    assert not any(any(each) for each in result["consistencyBent"])
    assert result["checkpoint"]["size"] == merkle["checkpoint"]["size"]
    assert result["checkpoint"]["rootHex"] == merkle["checkpoint"]["root"]
    assert result["dids"] == {name: k["did"] for name, k in keys.items()}


def test_a_payment_shows_on_the_payees_page_live_and_a_refusal_in_units(
    node, browser: Browser, payer: Page, seen: Seen
) -> None:
    running, keys = node
    _shot(payer, "account")
    ctx = _context(browser, seen)
    payee = ctx.new_page()
    _log_in(payee, running.base, keys[PAYEE])
    before_payee, before_payer = _balance(payee), _balance(payer)
    payee_did = Keystore(running.data / "keys").info(PAYEE).did

    payer.select_option("#pay-to", payee_did)
    payer.fill("#pay-amount", "1.25")
    payer.fill("#pay-memo", "dashboard test")
    payer.click("#pay-form button[type=submit]")
    payer.wait_for_selector("#pay-status.success, #pay-status.error", timeout=WAIT_MS)
    assert "success" in (payer.get_attribute("#pay-status", "class") or ""), payer.inner_text(
        "#pay-status"
    )
    # The payee's page was not reloaded: the SSE stream moved it.
    _wait_balance(payee, before_payee + 125)
    _wait_balance(payer, before_payer - 125)
    _shot(payee, "account-payee-after-payment")

    payer.fill("#pay-amount", "500")
    payer.click("#pay-form button[type=submit]")
    payer.wait_for_selector("#pay-status.error", timeout=WAIT_MS)
    refusal = payer.inner_text("#pay-status")
    limit = httpx.get(
        f"{running.base}/v1/coops/demo/accounts/{payer_did(running)}/limit?currency=hours",
        headers=bearer(_token(running, PAYER)),
    ).json()
    after = (limit["balance"] - 50_000) / 100
    assert f"this would take you to \u2212{-after:.2f} hours" in refusal, refusal
    assert f"your limit is \u2212{limit['limit'] / 100:.2f}" in refusal, refusal
    _shot(payer, "pay-refused")
    payer.locator("#pay-form").screenshot(path=str(ARTIFACTS / "pay-refused-form.png"))
    assert PAGE_ERRORS[PAYER] == []
    ctx.close()


def payer_did(running: RunningNode) -> str:
    return Keystore(running.data / "keys").info(PAYER).did


def _token(running: RunningNode, name: str) -> str:
    key = Keystore(running.data / "keys").unlock(name, PASSPHRASE)
    return login(running.base, key, "demo")


def test_verify_in_the_browser_is_green_and_fails_on_a_tampered_proof(payer: Page) -> None:
    payer.click("a[data-page=log]")
    payer.click("#verify")
    payer.wait_for_selector("#verdict[data-result]", timeout=WAIT_MS)
    if payer.get_attribute("#verdict", "data-result") != "verified":  # checkpoint not yet signed
        time.sleep(2)
        payer.click("#verify")
        payer.wait_for_selector("#verdict[data-result]", timeout=WAIT_MS)
    assert payer.get_attribute("#verdict", "data-result") == "verified", payer.inner_text(
        "#verify-out"
    )
    assert "Verified in this browser" in payer.inner_text("#verdict")
    _shot(payer, "log-verified")

    def bend(route: Route) -> None:
        answer = route.fetch()
        proof = answer.json()
        assert proof["proof"], "a one-leaf tree proves nothing to tamper with"
        first = proof["proof"][0]
        proof["proof"][0] = ("1" if first[0] == "0" else "0") + first[1:]
        route.fulfill(response=answer, json=proof)

    payer.route("**/proofs/inclusion**", bend)
    payer.click("#verify")
    payer.wait_for_selector("#verdict[data-result]", timeout=WAIT_MS)
    payer.unroute("**/proofs/inclusion**")
    assert payer.get_attribute("#verdict", "data-result") == "failed"
    assert "does not lead to the signed root" in payer.inner_text("#verify-out")
    _shot(payer, "log-tampered")


def _verify(page: Page) -> str:
    page.click("#verify")
    page.wait_for_selector("#verdict[data-result]", timeout=WAIT_MS)
    return page.get_attribute("#verdict", "data-result") or ""


def test_verify_checks_the_checkpoint_extends_the_one_the_browser_saw(node, payer: Page) -> None:
    """The browser keeps the last checkpoint it verified; the next must be proven to extend it."""
    running, _ = node
    h = {"Authorization": f"Bearer {_token(running, PAYER)}"}
    where = {"coop": "demo", "node": httpx.get(f"{running.base}/v1/health").json()["node"]}
    seen = "([c, n]) => JSON.parse(localStorage.getItem(`icn.checkpoint:${c}:${n}`))"
    payer.click("a[data-page=log]")
    assert _verify(payer) == "verified", payer.inner_text("#verify-out")
    kept = payer.evaluate(seen, [where["coop"], where["node"]])
    size = kept["size"]
    assert size > 4 and len(kept["root"]) == 64
    # As if the browser had seen the tree 3 events shorter: the consistency step must run.
    older = httpx.get(
        f"{running.base}/v1/coops/demo/proofs/consistency",
        params={"from": size - 3, "to": size}, headers=h,
    ).json()  # fmt: skip
    put = "([c, n, v]) => localStorage.setItem(`icn.checkpoint:${c}:${n}`, JSON.stringify(v))"
    earlier = {"size": size - 3, "root": older["root1"]}
    payer.evaluate(put, [where["coop"], where["node"], earlier])
    assert _verify(payer) == "verified", payer.inner_text("#verify-out")
    assert f"extends the one this browser saw at size {size - 3}" in payer.inner_text("#verify-out")
    assert payer.evaluate(seen, [where["coop"], where["node"]])["size"] >= size

    def bend(route: Route) -> None:
        answer = route.fetch()
        proof = answer.json()
        first = proof["proof"][0]
        proof["proof"][0] = ("1" if first[0] == "0" else "0") + first[1:]
        route.fulfill(response=answer, json=proof)

    payer.evaluate(put, [where["coop"], where["node"], earlier])
    payer.route("**/proofs/consistency**", bend)
    assert _verify(payer) == "failed"
    payer.unroute("**/proofs/consistency**")
    assert "consistency proof from size" in payer.inner_text("#verify-out")
    # A root the node never had at that size (a rewritten history): refused, and not replaced.
    forged = {"size": size - 3, "root": "00" * 32}
    payer.evaluate(put, [where["coop"], where["node"], forged])
    assert _verify(payer) == "failed"
    assert "consistency proof from size" in payer.inner_text("#verify-out")
    assert payer.evaluate(seen, [where["coop"], where["node"]]) == forged
    # A checkpoint smaller than the one seen: refused without asking for a proof.
    bigger = {"size": 2**40, "root": kept["root"]}
    payer.evaluate(put, [where["coop"], where["node"], bigger])
    assert _verify(payer) == "failed"
    assert "is smaller than the one this browser saw" in payer.inner_text("#verify-out")
    payer.evaluate(put, [where["coop"], where["node"], kept])
    _shot(payer, "log-consistency-refused")


def test_no_serious_accessibility_violation_on_any_page(
    node, browser: Browser, payer: Page
) -> None:
    running, _ = node
    axe = AXE.read_text()
    ctx = browser.new_context(viewport=PHONE)
    login_page = ctx.new_page()
    login_page.goto(running.base + "/")
    login_page.wait_for_selector("#import-form")
    _shot(login_page, "login")
    pages: list[tuple[str, Page]] = [("login", login_page)]
    ready = {"coop": "#members-table tbody tr", "account": "#history-rows tr", "log": "#feed li"}
    for name in ("coop", "account", "log"):
        payer.click(f"a[data-page={name}]")
        payer.wait_for_selector(ready[name], timeout=WAIT_MS)  # the SSE stream never idles
        if name == "coop":
            _shot(payer, "coop")
        # Nothing wider than the phone: wide tables scroll inside their own box.
        assert payer.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], name
        pages.append((name, payer))
        found = _axe(payer, axe)
        assert found == [], (name, found)
        assert _keyboard_reaches_every_control(payer) > 5, name
    assert _axe(login_page, axe) == []
    # By keyboard: the first Tab reaches the skip link, Enter moves focus to the content,
    # the next Tab to the first field there.
    login_page.keyboard.press("Tab")
    assert login_page.evaluate("document.activeElement.className") == "skip"
    login_page.keyboard.press("Enter")
    assert login_page.evaluate("document.activeElement.id") == "main"
    login_page.keyboard.press("Tab")
    assert login_page.evaluate("document.activeElement.id") == "coop"
    assert len(pages) == 4
    ctx.close()


_CONTROLS = """() => {
    const picked = [...document.querySelectorAll(
        'a[href], button, input, select, textarea, summary, [tabindex]')]
        .filter((el) => !el.disabled && el.tabIndex >= 0 && el.checkVisibility());
    picked.forEach((el, i) => { el.dataset.kbd = String(i); });
    return [picked.length, [...document.querySelectorAll('[tabindex]')]
        .filter((el) => el.tabIndex > 0).length];
}"""


def _keyboard_reaches_every_control(page: Page) -> int:
    """Tab from the top of the document reaches every visible control (links, buttons,
    fields, summaries, the focusable graph nodes and scroll boxes), with no positive tabindex
    reordering them. Returns how many controls the page had. (What a closed ``<details>``
    holds is not visible, so not asked for: its summary is.)"""
    count, positive = page.evaluate(_CONTROLS)
    assert positive == 0
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.evaluate("window.scrollTo(0, 0)")
    reached: set[str] = set()
    for _ in range(count * 4 + 20):  # a date field takes a Tab per part
        page.keyboard.press("Tab")
        mark = page.evaluate("document.activeElement && document.activeElement.dataset.kbd")
        if mark is not None:
            reached.add(mark)
        if len(reached) == count:
            break
    missed = page.evaluate(
        "(got) => [...document.querySelectorAll('[data-kbd]')].filter((el) =>"
        " !got.includes(el.dataset.kbd)).map((el) => el.outerHTML.slice(0, 80))",
        sorted(reached),
    )
    assert missed == [], missed
    return int(count)


def _axe(page: Page, source: str) -> list[dict[str, Any]]:
    page.evaluate(source)  # through DevTools, not a <script>: the page's CSP stays as it is
    results = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in results
        if v["impact"] in ("serious", "critical")
    ]


def test_a_key_made_in_the_browser_logs_in_once_an_admin_admits_it(
    node, browser: Browser, seen: Seen, icn_path_module: str, icn_env_module: dict
) -> None:
    running, _ = node
    ctx = _context(browser, seen)
    page = ctx.new_page()
    page.goto(running.base + "/")
    page.wait_for_selector("#coop option[value=demo]", state="attached", timeout=WAIT_MS)
    page.click("#new-h")  # opens the <details>
    page.fill("#new-passphrase", BROWSER_PASSPHRASE)
    page.fill("#new-passphrase-2", BROWSER_PASSPHRASE)
    page.click("#new-form button[type=submit]")
    page.wait_for_selector("#new-key .mono", timeout=WAIT_MS)
    did = page.inner_text("#new-key .mono").strip()
    assert did.startswith("did:icn:z")
    # Not yet a member: the login is refused in words.
    page.fill("#stored-passphrase", BROWSER_PASSPHRASE)
    page.click("#stored-form button[type=submit]")
    page.wait_for_selector("#login-status.error", timeout=WAIT_MS)
    assert "not an active member of demo" in page.inner_text("#login-status")
    run_icn(
        icn_path_module, icn_env_module, "member", "admit", did, "--coop", "demo",
        "--key", PAYER, "--url", running.base, "--data-dir", str(running.data),
    )  # fmt: skip
    page.fill("#stored-passphrase", BROWSER_PASSPHRASE)
    page.click("#stored-form button[type=submit]")
    page.wait_for_selector("#balance-hours", timeout=WAIT_MS)
    assert _balance(page) == 0 and page.inner_text("#balance-hours") == "0.00"
    ctx.close()


def test_first_load_of_my_account_is_small_and_fast(node, browser: Browser) -> None:
    running, _ = node
    token = _token(running, PAYER)
    did = payer_did(running)
    session = json.dumps(
        {"token": token, "expires_at": (time.time() + 3600) * 1000, "did": did, "coop": "demo"}
    )
    loads, sizes = [], []
    for _ in range(3):
        ctx = browser.new_context(viewport=PHONE)  # a cold cache every time
        ctx.add_init_script(f"sessionStorage.setItem('icn.session', {json.dumps(session)})")
        page = ctx.new_page()
        moved: list[int] = []

        def count(request: Request, into: list[int] = moved) -> None:
            sizes_ = request.sizes()
            into.append(sizes_["responseBodySize"] + sizes_["responseHeadersSize"])

        page.on("requestfinished", count)
        page.goto(running.base + "/#/account")
        page.wait_for_selector("#balance-hours", timeout=WAIT_MS)
        loads.append(
            page.evaluate("performance.getEntriesByName('icn:balance-rendered')[0].startTime")
        )
        # Everything the page loads (not the live stream, which never ends), then the bytes.
        page.wait_for_selector("#history-rows tr", timeout=WAIT_MS)
        page.wait_for_selector("#chart figure", timeout=WAIT_MS)
        sizes.append(sum(moved))
        ctx.close()
    # The API calls the page makes before it shows the balance, made alone.
    h = bearer(token)
    alone = []
    with httpx.Client(base_url=running.base, headers=h) as c:
        for _ in range(3):
            started = time.perf_counter()
            c.get("/v1/ready")
            c.get("/v1/coops/demo")
            c.get("/v1/coops/demo/members?limit=1000")
            c.get(f"/v1/coops/demo/accounts/{did}/balances")
            alone.append((time.perf_counter() - started) * 1000)
    load = os.getloadavg()[0]
    print(
        f"\nMy account, first load (cold cache, 390 px): {max(sizes) / 1024:.1f} KB transferred; "
        f"balance rendered after {statistics.median(loads):.0f} ms (median of 3); the same API "
        f"calls alone {statistics.median(alone):.0f} ms; load average {load:.2f}"
    )
    assert max(sizes) <= 300 * 1024
    assert statistics.median(loads) < 15_000


def test_no_request_of_any_flow_carried_the_private_key(node, seen: Seen) -> None:
    running, keys = node
    assert len(seen.requests) >= 20
    urls = " ".join(url for _, url, _ in seen.requests)
    assert "/v1/auth/verify" in urls and "/v1/coops/demo/events" in urls
    assert any(m == "POST" and "/events" in u for m, u, _ in seen.requests)
    secrets: list[bytes] = [BROWSER_PASSPHRASE.encode(), PASSPHRASE.encode()]
    for name in (PAYER, PAYEE):
        seed = bytes(Keystore(running.data / "keys").unlock(name, PASSPHRASE))
        doc = json.loads(keys[name].read_text())
        assert open_seed(doc, BROWSER_PASSPHRASE) == seed
        pkcs8 = bytes.fromhex("302e020100300506032b657004220420") + seed
        for raw in (seed, pkcs8):
            secrets += [
                raw.hex().encode(),
                raw.hex().upper().encode(),
                base64.b64encode(raw),
                base64.urlsafe_b64encode(raw),
                base64.urlsafe_b64encode(raw).rstrip(b"="),
                base64.b64encode(raw).rstrip(b"="),
            ]
        secrets.append(doc["ciphertext"].encode())  # not even the sealed file goes out
    for method, url, body in seen.requests:
        blob = url.encode() + b" " + body
        for secret in secrets:
            assert secret not in blob, (method, url)
