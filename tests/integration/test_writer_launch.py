"""The writer process's start: created before the serving half opens the store, it
waits for the go (with the node key's passphrase) before it builds its own half.

Forked while the serving process is single-threaded (``icn node run``), spawned when a
thread runs (a fork would copy whatever lock that thread held); either way it writes
what it is given, and a writer stopped before it began, or whose serving half failed
to open, exits at once without a trace of a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.coops import sample_log, wire, write_jsonl

from icn.infrastructure.data_dir import DataDirBusy
from icn.infrastructure.settings import Settings
from icn.interfaces.bootstrap import build_node, init_node
from icn.interfaces.writer_process import WriterProcess, WriterSpec

PASSPHRASE = "writer launch passphrase"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("ICN_PASSPHRASE", PASSPHRASE)
    s = Settings(data_dir=tmp_path / "node", replication=False, clock_offset_ms=0)
    init_node(s)
    return s


def _gone(pid: int) -> bool:
    """True once ``pid`` is no process (or a zombie nobody will run again)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


@contextmanager
def _a_thread_running() -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="busy")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


WRITE_THROUGH_A_WRITER = """
import json, sys
from pathlib import Path
from icn.infrastructure.settings import Settings
from icn.interfaces.bootstrap import build_node, init_node
init_node(Settings(data_dir=Path(sys.argv[1])))
served = build_node(Settings(data_dir=Path(sys.argv[1]), replication=False), writer_process=True)
writer = served.writer
writer.passphrase = sys.argv[3]
writer.begin()
writer.start()
outcomes = served.node.append.append(Path(sys.argv[2]).read_bytes().splitlines())
size = served.node.store.tree_size(sys.argv[4])
writer.stop()
print(json.dumps({"forked": writer.forked, "failed": writer.failed, "pid": writer.pid,
                  "ids": [o.id for o in outcomes if o.stored], "size": size}))
"""


def test_a_single_threaded_server_forks_its_writer_and_it_writes(tmp_path: Path) -> None:
    """As ``icn node run`` starts it: in a fresh process, before any thread."""
    events = sample_log(payments=3)
    lines = write_jsonl(tmp_path / "lines.jsonl", events)
    data = tmp_path / "forking"
    done = subprocess.run(
        [sys.executable, "-c", WRITE_THROUGH_A_WRITER, str(data), str(lines), PASSPHRASE,
         events[0].coop],
        capture_output=True, timeout=120, env={**os.environ, "ICN_PASSPHRASE": PASSPHRASE},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    answer = json.loads(done.stdout.decode().splitlines()[-1])
    assert answer["forked"] is True
    assert not answer["failed"]
    assert answer["ids"] == [e.id for e in events]
    assert answer["size"] == len(events)
    assert _gone(answer["pid"])


def test_with_a_thread_running_the_writer_is_spawned_and_writes(settings: Settings) -> None:
    with _a_thread_running():
        served = build_node(settings, writer_process=True)
    writer = served.writer
    assert isinstance(writer, WriterProcess)
    assert not writer.forked
    try:
        writer.passphrase = PASSPHRASE
        writer.begin()
        writer.start()
        assert writer.pid is not None and writer.pid != os.getpid()
        events = sample_log(payments=3)
        outcomes = served.node.append.append([wire(e) for e in events])
        assert [(o.stored, o.id) for o in outcomes] == [(True, e.id) for e in events]
        assert served.node.store.tree_size(events[0].coop) == len(events)
    finally:
        writer.stop()
        served.node.close()
    assert not writer.failed
    assert _gone(writer.pid)


def test_a_writer_stopped_before_it_began_exits_at_once(settings: Settings) -> None:
    writer = WriterProcess(WriterSpec(settings, None, (), False, None))
    writer.launch()
    assert writer.pid is not None
    started = time.monotonic()
    writer.stop()
    assert time.monotonic() - started < 10
    assert not writer.failed
    assert _gone(writer.pid)


def test_a_busy_data_dir_stops_the_launched_writer(tmp_path: Path) -> None:
    """Another node holds the data dir: build_node raises, and its writer is gone."""
    data = tmp_path / "busy"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import time; from icn.infrastructure.settings import Settings; "
         "from icn.interfaces.bootstrap import init_node; "
         f"init_node(Settings(data_dir={str(data)!r})); print('held', flush=True); "
         "time.sleep(60)"],
        stdout=subprocess.PIPE, env={**os.environ, "ICN_PASSPHRASE": PASSPHRASE},
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        children_before = _children()
        with pytest.raises(DataDirBusy):
            build_node(Settings(data_dir=data, replication=False), writer_process=True)
        assert _children() - children_before == set()
    finally:
        holder.kill()
        holder.wait()


def _children() -> set[int]:
    """This process's live child processes."""
    me = os.getpid()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("PPid", "").strip() == str(me) and not fields["State"].startswith("Z"):
            found.add(int(entry.name))
    return found
