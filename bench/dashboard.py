"""First load of the dashboard's My account page, beside the same API calls made alone.

A node with the demo coop; demo-amara's session is put in the tab before the
page loads (so the figure is the page, not the PBKDF2 of a login). Each
repetition is a fresh browser context (a cold cache), at 390 px, in Debian's
chromium driven by Playwright; it records the bytes the page transferred
(every finished response, headers and body; the live stream never finishes
and is not counted) and the time from navigation start to the balance in the
DOM (the page's own ``icn:balance-rendered`` performance mark). Interleaved
with each load, the API calls the page makes before it shows the balance
(``/v1/ready``, the coop, its members, the balances) are made one after
another by httpx with the same token. Appends a section to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import append_section, machine_info, markdown_table, print_table, utc_now
from playwright.sync_api import Request, sync_playwright

from icn.infrastructure.keystore import Keystore

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
ICN = str(Path(sys.executable).with_name("icn"))
CHROMIUM = os.environ.get("ICN_CHROMIUM", "/usr/bin/chromium")
BUDGET_KB = 300
PASSPHRASE = "bench dashboard passphrase"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _token(base: str, data: Path, name: str) -> tuple[str, str]:
    key = Keystore(data / "keys").unlock(name, PASSPHRASE)
    did = Keystore(data / "keys").info(name).did
    nonce = httpx.post(f"{base}/v1/auth/challenge", json={"did": did}).json()["nonce"]
    sig = key.sign(b"icn-auth-v1:" + bytes.fromhex(nonce)).signature.hex()
    answer = httpx.post(
        f"{base}/v1/auth/verify",
        json={"did": did, "nonce": nonce, "signature": sig, "coop": "demo"},
    )
    return str(answer.json()["token"]), did


def measure(reps: int) -> dict[str, list[float]]:
    """Bytes, ms to the balance, and ms of the API calls alone, ``reps`` times each."""
    out: dict[str, list[float]] = {
        "kb": [], "page_ms": [], "api_ms": [], "requests": [], "tokenless": []
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "node"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ICN_")}
        env.update({"ICN_PASSPHRASE": PASSPHRASE, "ICN_JWT_SECRET": "b" * 48})
        env.update({"ICN_RATE_IP_BURST": "100000", "ICN_RATE_IP_PER_S": "100000"})
        for argv in (["node", "init"], ["demo", "seed"]):
            subprocess.run([ICN, *argv, "--data-dir", str(data)], env=env, check=True,
                           capture_output=True)  # fmt: skip
        port = _port()
        base = f"http://127.0.0.1:{port}"
        node = subprocess.Popen(
            [ICN, "node", "run", "--data-dir", str(data), "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for _ in range(600):
                try:
                    httpx.get(f"{base}/v1/health", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            token, did = _token(base, data, "demo-amara")
            session = json.dumps(
                {"token": token, "expires_at": (time.time() + 3600) * 1000, "did": did,
                 "coop": "demo"}
            )  # fmt: skip
            with (
                sync_playwright() as p,
                httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api,
            ):
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
                for _ in range(reps):
                    ctx = browser.new_context(viewport={"width": 390, "height": 844})
                    ctx.add_init_script(f"sessionStorage.setItem('icn.session', {session!r})")
                    page = ctx.new_page()
                    moved: list[int] = []
                    page.on(
                        "requestfinished",
                        lambda r, m=moved: m.append(  # type: ignore[misc]
                            r.sizes()["responseBodySize"] + r.sizes()["responseHeadersSize"]
                        ),
                    )
                    asked: list[bool] = []  # per request: did it carry a token?

                    def ask(r: Request, a: list[bool] = asked) -> None:
                        a.append("authorization" in r.headers)

                    page.on("request", ask)
                    page.goto(base + "/#/account")
                    page.wait_for_selector("#balance-hours", timeout=30_000)
                    mark = "performance.getEntriesByName('icn:balance-rendered')[0].startTime"
                    out["page_ms"].append(float(page.evaluate(mark)))
                    page.wait_for_selector("#history-rows tr", timeout=30_000)
                    page.wait_for_selector("#chart figure", timeout=30_000)
                    out["kb"].append(sum(moved) / 1024)
                    # Tokenless requests are charged to the address's rate bucket (security.md).
                    out["requests"].append(len(asked))
                    out["tokenless"].append(asked.count(False))
                    ctx.close()
                    started = time.perf_counter()
                    for path in ("/v1/ready", "/v1/coops/demo", "/v1/coops/demo/members?limit=1000",
                                 f"/v1/coops/demo/accounts/{did}/balances"):  # fmt: skip
                        api.get(path).raise_for_status()
                    out["api_ms"].append((time.perf_counter() - started) * 1000)
                browser.close()
        finally:
            node.send_signal(signal.SIGTERM)
            node.wait(timeout=30)
    return out


def report(got: dict[str, list[float]], reps: int, load_before: tuple[float, ...]) -> None:
    """Print the table and append it, with the machine's load, to docs/benchmarks.md."""
    med = {k: statistics.median(v) for k, v in got.items()}
    rows = [
        ["bytes transferred (KB)", f"{med['kb']:.1f}",
         f"{min(got['kb']):.1f}–{max(got['kb']):.1f}"],
        ["balance rendered (ms)", f"{med['page_ms']:.0f}",
         f"{min(got['page_ms']):.0f}–{max(got['page_ms']):.0f}"],
        ["the same API calls alone (ms)", f"{med['api_ms']:.0f}",
         f"{min(got['api_ms']):.0f}–{max(got['api_ms']):.0f}"],
        ["page / API alone", f"{med['page_ms'] / med['api_ms']:.1f}", ""],
        ["requests (tokenless: the address's rate bucket)",
         f"{med['requests']:.0f} ({med['tokenless']:.0f})", ""],
    ]  # fmt: skip
    header = ["My account, first load (cold cache, 390 px)", "median", "range"]
    print_table("dashboard", header, rows)
    verdict = "met" if max(got["kb"]) <= BUDGET_KB else "NOT met"
    load_after = os.getloadavg()
    facts = {**machine_info(), "repetitions": str(reps)}
    text = "\n".join(
        [
            "bench/dashboard.py: demo-amara's My account in Debian's chromium (Playwright),",
            "a fresh context per load, beside the four API calls the page makes before it",
            "shows the balance, made alone by httpx; medians.",
            "",
            markdown_table(header, rows),
            "",
            f"Budget (issue 17): ≤ {BUDGET_KB} KB transferred: {verdict}. Load average "
            f"{' / '.join(f'{x:.2f}' for x in load_before)} before, {load_after[0]:.2f} after "
            "(1/5/15 min, 2 cores, shared with other engineers' work).",
            "",
            "; ".join(f"{k} {v}" for k, v in facts.items()),
        ]
    )
    append_section(DOCS, f"dashboard first load, {utc_now()}", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    load_before = os.getloadavg()
    report(measure(args.reps), args.reps, load_before)


if __name__ == "__main__":
    main()
