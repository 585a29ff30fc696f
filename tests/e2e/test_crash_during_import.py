"""A node killed with SIGKILL mid-import keeps whole batches only, and a re-import completes it."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

from support.coops import CoopScript

EVENTS = 30000  # lines of the file: the coop's founding, then payments
BATCH = 500  # the CLI's import batch: one transaction each


def _log(path: Path) -> None:
    """crash-coop: founded with ten members, then payments around the ring (no one runs dry)."""
    script = CoopScript("crash-coop")
    names = [f"m{i}" for i in range(10)]
    with path.open("wb") as f:
        f.write(script.found({n: [] for n in names}).wire_bytes() + b"\n")
        for i in range(EVENTS - 1):
            e = script.pay(names[i % 10], names[(i + 1) % 10], 1 + i % 7, memo=f"crash test {i}")
            f.write(e.wire_bytes() + b"\n")


def _children(pid: int) -> list[int]:
    """The PIDs of a process's children (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _committed(db: Path) -> int:
    """Events committed so far, read straight from the SQLite file (a cheap probe)."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        row = conn.execute("SELECT size FROM log_trees WHERE coop = 'crash-coop'").fetchone()
    return row[0] if row else 0


def _state_balances(db: Path) -> dict[str, int]:
    """The balances the coop rules keep (``coop_state``), read straight from the SQLite file."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        rows = conn.execute(
            "SELECT value FROM coop_state WHERE coop = 'crash-coop' AND kind = 'account'"
        ).fetchall()
    accounts = [json.loads(value) for (value,) in rows]
    assert all(a["currency"] == "hours" for a in accounts)
    return {a["did"]: a["balance"] for a in accounts}


def test_sigkill_mid_import_leaves_whole_batches_and_an_intact_tree(
    icn, node_dir: Path, tmp_path: Path, icn_path: str, icn_process_env: dict
) -> None:
    log = tmp_path / "big.jsonl"
    _log(log)
    d = ["--data-dir", str(node_dir)]
    proc = subprocess.Popen(
        [icn_path, "log", "import", str(log), *d],
        env=icn_process_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = node_dir / "icn.sqlite3"
    deadline = time.monotonic() + 60
    # Kill it once it has committed something but before it is done.
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists() and _committed(db) >= BATCH:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the import finished before it could be killed"
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    # Its verification workers do not outlive it (nothing could stop them: they notice).
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)], "worker processes outlived the import"
    assert db.exists()

    after = json.loads(icn("audit", "verify", "--coop", "crash-coop", *d, "--json").stdout)
    assert after["passed"] and after["stored_tree_matches"]
    assert after["size"] % BATCH == 0, "a batch was stored in part"
    assert 0 < after["size"] < EVENTS
    # The rules' records hold exactly the committed batches, nothing of the killed one.
    assert _state_balances(db) == after["balances"]["hours"]

    # Importing the same file again stores exactly what was missing.
    icn("log", "import", str(log), *d)
    final = json.loads(icn("audit", "verify", "--coop", "crash-coop", *d, "--json").stdout)
    assert final["passed"] and final["size"] == EVENTS
    assert _state_balances(db) == final["balances"]["hours"]
    exported = icn("log", "export", "--coop", "crash-coop", *d).stdout
    assert exported == log.read_bytes()
