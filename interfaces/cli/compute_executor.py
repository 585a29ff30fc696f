"""The executor's loop: run the tasks placed on this node, commit, then reveal.

Each pass asks the coop's node for the running tasks placed on this node's DID.
A task it has not committed to yet is run here (module bytes fetched by hash
and checked, compiled through the MAC-checked cache, metered by fuel) and its
answer sealed; the reveal (answer and salt) is written to a private file
first, then the commitment is posted. A task every placed executor has
committed to gets this node's reveal, so a restart in between loses nothing.
A local failure (the wall clock, the module's bytes not reachable) posts
nothing: this node's trouble is never the task's verdict.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from nacl.signing import SigningKey

from icn.application.errors import ApplicationError
from icn.application.ports import EventStore
from icn.application.trust_epochs import CommittedState
from icn.domain.compute import task_bodies as tb
from icn.domain.compute.state import executor
from icn.domain.identity.did import did_from_public_key
from icn.domain.refusals import Refusal
from icn.infrastructure.compute.cache import CompiledModuleCache
from icn.infrastructure.compute.executor import execute
from icn.infrastructure.compute.modules import intake
from icn.infrastructure.compute.sandbox import LocalFailure, Sandbox
from icn.infrastructure.compute.store import ModuleStore
from icn.interfaces.cli.writes import Refused, RemoteWriter
from icn.interfaces.client.api import IcnClient
from icn.interfaces.client.compute import get_module, list_tasks
from icn.interfaces.client.errors import ApiError

log = logging.getLogger("icn.compute.executor")


class RevealBook:
    """Reveals waiting for their turn, one file per task (0600 in a 0700 folder), written
    before the commitment is posted: an executor restarted between commit and reveal still
    reveals. The salt is secret only until the reveal, and never leaves this machine before."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, task: str) -> Path:
        return self.root / f"{task}.json"

    def keep(self, task: str, body: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.root / f".{task}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(msgspec.json.encode(body))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path(task))

    def get(self, task: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = msgspec.json.decode(self._path(task).read_bytes())
        except (FileNotFoundError, msgspec.DecodeError):
            return None
        return found

    def drop(self, task: str) -> None:
        self._path(task).unlink(missing_ok=True)


@dataclass
class Executor:
    """One node's executor for one coop, posting through ``writer`` (logged in as the node)."""

    writer: RemoteWriter
    modules: ModuleStore
    cache: CompiledModuleCache
    reveals: RevealBook
    """Answers committed to and not revealed yet, by task."""
    not_run: set[str] = field(default_factory=set)
    """Tasks a pass could not run here and said so (an engine this node lacks, ...)."""

    def _bytes(self, module: str) -> bytes | None:
        """The module's binary: kept here, or fetched from the node (which reads it from the
        coop's other nodes when it lacks it) and judged as an upload before it is kept."""
        coop = self.writer.coop
        found = self.modules.get(coop, module)
        if found is None:
            try:
                fetched = get_module(self.writer.client, coop, module)
            except ApiError as exc:
                log.warning("module %s not reachable: %s", module, exc.code)
                return None
            checked = intake(fetched, self.cache.sandbox, expected_hash=module)
            if isinstance(checked, Refusal):
                log.warning("module %s from the node refused: %s", module, checked.code)
                return None
            self.modules.put(coop, checked.binary)
            found = checked.binary
        return found

    def step(self) -> list[str]:
        """One pass: what was posted, as ``commit <task>`` / ``reveal <task>``.

        The pass's commitments go out together, then its reveals: a few requests per
        pass rather than three per task (the chain head, its event, the post)."""
        me = self.writer.did
        placed = list_tasks(self.writer.client, self.writer.coop, state="running", executor=me)
        commits: list[tuple[str, dict[str, Any]]] = []
        reveals: list[tuple[str, dict[str, Any]]] = []
        for t in placed.tasks:
            if me not in t.committed:
                try:
                    sealed = execute(
                        self.cache,
                        self._bytes,
                        task=t.id,
                        executor=me,
                        module=t.module,
                        input=base64.b64decode(t.input),
                        fuel_limit=t.fuel_limit,
                        engine=t.engine,
                    )
                except LocalFailure as exc:
                    if t.id not in self.not_run:  # once a task: every pass would say it again
                        log.warning("task %s not run here: %s", t.id, exc)
                    self.not_run.add(t.id)
                    continue
                self.not_run.discard(t.id)
                a = sealed
                self.reveals.keep(
                    t.id,
                    {
                        "task": t.id,
                        "outcome": str(a.answer.outcome),
                        "output": base64.b64encode(a.result.output).decode(),
                        "output_hash": a.answer.output_hash,
                        "fuel": a.answer.fuel,
                        "salt": a.salt,
                    },
                )
                commits.append((t.id, {"task": t.id, "commitment": sealed.commitment}))
            elif me not in t.revealed and set(t.committed) == set(t.executors):
                body = self.reveals.get(t.id)
                if body is None:
                    log.warning("task %s: committed, and the answer to reveal is lost", t.id)
                    continue
                reveals.append((t.id, body))
        self.not_run &= {t.id for t in placed.tasks}  # the rest left this node's placements
        done = []
        for task, ok in self._post_all(tb.RESULT_COMMITTED, commits):
            if ok:
                done.append(f"commit {task}")
            else:
                self.reveals.drop(task)
        for task, ok in self._post_all(tb.RESULT_REVEALED, reveals):
            if ok:
                self.reveals.drop(task)
                done.append(f"reveal {task}")
        return done

    def _post_all(
        self, type_: str, bodies: list[tuple[str, dict[str, Any]]]
    ) -> list[tuple[str, bool]]:
        """Post ``bodies`` in batches (each all or nothing, within :data:`BATCH_BYTES`); a
        refused batch is posted again one by one, so one refused task holds up no other."""
        posted: list[tuple[str, bool]] = []
        for batch in _batches(bodies):
            if len(batch) > 1 and self._post(type_, [body for _, body in batch], quiet=True):
                posted += [(task, True) for task, _ in batch]
                continue
            posted += [(task, self._post(type_, [body])) for task, body in batch]
        return posted

    def _post(self, type_: str, bodies: list[dict[str, Any]], *, quiet: bool = False) -> bool:
        try:
            self.writer.submit([(type_, body) for body in bodies])
        except Refused as exc:
            if not quiet:
                log.warning("%s refused: %s %s", type_, exc.code, exc)
            return False
        return True


BATCH_BYTES = 12 * 1024
"""The bodies posted in one request: under the smallest trust class's body cap (16 KiB)
with room for the envelopes, so a batch is never refused for its size alone."""
BATCH_EVENTS = 50


def _batches(
    bodies: list[tuple[str, dict[str, Any]]],
) -> list[list[tuple[str, dict[str, Any]]]]:
    """``bodies`` in order, cut into runs of at most :data:`BATCH_EVENTS` and
    :data:`BATCH_BYTES` of JSON (a body larger than that goes alone: a body of one event
    is never refused for its size, up to the spec's 64 KiB, so a 32 KiB output's reveal
    is postable from every class)."""
    out: list[list[tuple[str, dict[str, Any]]]] = []
    size = 0
    for item in bodies:
        n = len(msgspec.json.encode(item[1])) + 400  # the envelope: ids, signature, chain
        if not out or len(out[-1]) >= BATCH_EVENTS or size + n > BATCH_BYTES:
            out.append([])
            size = 0
        out[-1].append(item)
        size += n
    return out


def executor_for(writer: RemoteWriter, data_dir: Path) -> Executor:
    """An executor keeping modules and compiled code in ``data_dir``."""
    sandbox = Sandbox()
    return Executor(
        writer=writer,
        modules=ModuleStore(data_dir / "modules"),
        cache=CompiledModuleCache(data_dir / "compiled", sandbox),
        reveals=RevealBook(data_dir / "reveals" / writer.coop),
    )


def run_forever(step: Callable[[], list[str]], interval_s: float, stop: Callable[[], bool]) -> None:
    """``step`` every ``interval_s`` until ``stop()``; a pass that fails is logged, not fatal."""
    import time

    while not stop():
        try:
            for line in step():
                log.info("%s", line)
        except (ApiError, ApplicationError) as exc:
            log.warning("executor pass failed: %s", exc)
        time.sleep(interval_s)


class NodeExecutors:
    """``icn node run --executor``: this node runs the tasks placed on it in every coop it
    serves where it is a registered executor, through its own HTTP API, in a thread."""

    def __init__(self, key: SigningKey, url: str, store: EventStore, home: Path) -> None:
        self._key, self._url, self._store, self._home = key, url, store, home
        self._did = did_from_public_key(bytes(key.verify_key))
        self._running: dict[str, Executor] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="icn-executor", daemon=True)

    def start(self) -> NodeExecutors:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _coops(self) -> list[str]:
        view = CommittedState(self._store)
        return [c for c in self._store.coops() if executor(view, c, self._did) is not None]

    def _executor(self, coop: str) -> Executor:
        found = self._running.get(coop)
        if found is None:
            client = IcnClient(self._url)
            client.login(self._key, coop)
            found = executor_for(RemoteWriter(client, self._key, coop), self._home)
            self._running[coop] = found
        return found

    def step(self) -> list[str]:
        done: list[str] = []
        for coop in self._coops():
            try:
                done += self._executor(coop).step()
            except ApiError as exc:
                log.warning("executor pass in %s failed: %s %s", coop, exc.code, exc.detail)
                if exc.status == 401:
                    self._running.pop(coop, None)  # the token expired: log in again
        return done

    def _loop(self) -> None:
        run_forever(self.step, 1.0, self._stop.is_set)
