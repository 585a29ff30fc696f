"""``icn compute``: store a task module, submit a task, follow it, run tasks as an executor.

``upload`` checks the module here as the node will (so a module the node would
refuse is never signed), signs ``compute.ModuleStored`` and hands the bytes to
the node, which keeps them by hash. ``submit`` signs ``compute.TaskSubmitted``:
the node holds ``--max-fee`` on the submitter's account and places the
replicas. ``status`` and ``result`` read the task. ``executor add`` registers a
node (an admin); ``executor run`` makes a node run what is placed on it,
committing and then revealing each answer, until stopped.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from icn.domain.compute import bodies as cb
from icn.domain.compute import task_bodies as tb
from icn.domain.compute.abi import MAX_INPUT_BYTES
from icn.domain.compute.task_bodies import MAX_REPLICAS
from icn.domain.refusals import Code
from icn.interfaces.cli.common import DataDir, Json, data_dir_of
from icn.interfaces.cli.writes import (
    Coop,
    Key,
    LocalWriter,
    Refused,
    RemoteWriter,
    Url,
    Writer,
    check_event_id,
    currency_of,
    report,
    units_of,
    writer,
)

if TYPE_CHECKING:
    from icn.application.compute_reads import TaskView

app = typer.Typer(
    name="compute", no_args_is_help=True, help="Paid WASM tasks: modules, tasks, executors."
)
executor_app = typer.Typer(no_args_is_help=True, help="Nodes that run the coop's tasks.")
app.add_typer(executor_app, name="executor")


def _intake(data: bytes) -> Any:
    """The module as the node will judge it (compiled with the task engine's settings)."""
    from icn.domain.refusals import Refusal
    from icn.infrastructure.compute.engine import EngineSettings
    from icn.infrastructure.compute.modules import intake
    from icn.infrastructure.compute.sandbox import Sandbox

    with Sandbox(EngineSettings(epoch_interruption=False)) as sandbox:
        result = intake(data, sandbox)
    if isinstance(result, Refusal):
        raise Refused(result.code, result.reason)
    return result


def _keep_bytes(w: Writer, module: str, binary: bytes) -> bool:
    """The bytes to the node: over HTTP, or into ``--data-dir``'s module store. True when
    the node shared them with the coop's other nodes (never for ``--data-dir``)."""
    if isinstance(w, RemoteWriter):
        from icn.interfaces.client.compute import put_module
        from icn.interfaces.client.errors import ApiError

        try:
            return put_module(w.client, w.coop, module, binary)
        except ApiError as exc:
            raise Refused(exc.code, exc.detail) from None
    if isinstance(w, LocalWriter):
        from icn.infrastructure.compute.store import module_store

        module_store(w.node.data_dir).put(w.coop, binary)
    return False


@app.command("upload")
def upload(
    file: Annotated[Path, typer.Argument(help="The module: a .wasm binary or .wat text.")],
    coop: Coop,
    key: Key,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Store a task module: check it against the task ABI, sign compute.ModuleStored (unless
    the coop has it already) and give the node its bytes (at most 4 MiB), which it shares
    with the coop's other nodes. Prints the module's hash."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise typer.BadParameter(f"{file}: {exc.strerror}", param_hint="'FILE'") from None
    module = _intake(data)
    with writer(data_dir, url, coop, key) as w:
        stored = True
        try:
            w.submit([(cb.MODULE_STORED, module.body())])
        except Refused as exc:
            if exc.code != Code.MODULE_EXISTS:
                raise
            stored = False
        shared = _keep_bytes(w, module.hash, module.binary)
    doc = {
        "module": module.hash,
        "size": module.size,
        "imports": module.imports,
        "new": stored,
        "shared": shared,
    }
    report(json, doc, [f"module {module.hash} ({module.size} bytes)"])


@app.command("submit")
def submit(
    module: Annotated[str, typer.Argument(help="The module's hash (from upload).")],
    coop: Coop,
    key: Key,
    fuel: Annotated[int, typer.Option("--fuel", min=1, help="Fuel limit of each run.")],
    max_fee: Annotated[
        str, typer.Option("--max-fee", help="Most the task may cost in all, e.g. 2.50.")
    ],
    currency: Annotated[str, typer.Option("--currency", help="Currency of the fee.")],
    input_file: Annotated[
        Path | None, typer.Option("--input-file", help="The input's bytes (at most 32 KiB).")
    ] = None,
    replicas: Annotated[
        int, typer.Option("--replicas", min=1, max=MAX_REPLICAS, help="Executors that run it.")
    ] = 2,
    region: Annotated[
        str | None, typer.Option("--region", help="Prefer executors in this region.")
    ] = None,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Submit a task: sign compute.TaskSubmitted. The node holds --max-fee on your account
    and places the replicas; refused with the node's code (credit-limit-exceeded …)."""
    check_event_id(module, "module hash")
    data = b""
    if input_file is not None:
        try:
            data = input_file.read_bytes()
        except OSError as exc:
            hint = "'--input-file'"
            raise typer.BadParameter(f"{input_file}: {exc.strerror}", param_hint=hint) from None
    if len(data) > MAX_INPUT_BYTES:
        raise Refused(Code.INPUT_TOO_LARGE, f"the input is {len(data)} bytes, over 32 KiB")
    with writer(data_dir, url, coop, key) as w:
        spec = currency_of(w.coop_record(), currency)
        body: dict[str, Any] = {
            "module": module,
            "input": base64.b64encode(data).decode(),
            "fuel_limit": fuel,
            "max_fee": units_of(max_fee, spec, allow_zero=True),
            "currency": currency,
            "replicas": replicas,
        }
        if region is not None:
            body["region"] = region
        written = w.submit([(tb.TASK_SUBMITTED, body)])[0]
    report(
        json,
        {**written.doc(), "task": written.event.id},
        [f"task {written.event.id}: submitted, {body['max_fee']} held"],
    )


def _task(w: Writer, task: str) -> TaskView:
    if isinstance(w, RemoteWriter):
        from icn.interfaces.client.compute import get_task
        from icn.interfaces.client.errors import ApiError

        try:
            return get_task(w.client, w.coop, task)
        except ApiError as exc:
            raise Refused(exc.code, exc.detail) from None
    from icn.application.compute_reads import task_view
    from icn.application.errors import NotFound

    assert isinstance(w, LocalWriter)
    try:
        return task_view(w.node.store, w.coop, task)
    except NotFound as exc:
        raise Refused(Code.UNKNOWN_TASK, str(exc)) from None


@app.command("status")
def status(
    task: Annotated[str, typer.Argument(help="The task's id (from submit).")],
    coop: Coop,
    key: Key,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Where a task stands: state, outcome, output (base64), fuel, fee, executors."""
    check_event_id(task, "task id")
    with writer(data_dir, url, coop, key) as w:
        t = _task(w, task)
    doc = {
        "task": t.id,
        "state": t.state,
        "outcome": t.outcome,
        "output": t.output,
        "fuel": t.fuel,
        "fee": t.fee,
        "executors": t.executors,
        "committed": t.committed,
        "revealed": t.revealed,
        "dissenting": t.dissenting,
        "disputes": t.disputes,
        "held": t.held,
        "engine": t.engine,
    }
    lines = [f"task {t.id}: {t.state}"]
    if t.outcome is not None:
        lines.append(f"outcome {t.outcome}, fuel {t.fuel}, fee {t.fee} each")
    lines += [f"dispute {d} about an outvoted executor" for d in t.disputes]
    report(json, doc, lines)


@app.command("result")
def result(
    task: Annotated[str, typer.Argument(help="The task's id.")],
    coop: Coop,
    key: Key,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the output here (default: stdout).")
    ] = None,
    url: Url = None,
    data_dir: DataDir = None,
) -> None:
    """The agreed output's bytes; refused while the executors' answers are not all in."""
    check_event_id(task, "task id")
    with writer(data_dir, url, coop, key) as w:
        t = _task(w, task)
    if t.output is None:
        raise Refused(Code.TASK_NOT_SETTLEABLE, f"task {t.id} has no agreed output ({t.state})")
    data = base64.b64decode(t.output)
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        out.write_bytes(data)


@executor_app.command("add")
def executor_add(
    node: Annotated[str, typer.Argument(help="The executor node's DID (an active member).")],
    coop: Coop,
    key: Key,
    cpu_millis: Annotated[int, typer.Option("--cpu-millis", min=1, help="1000 = one core.")],
    memory_mib: Annotated[int, typer.Option("--memory-mib", min=1, help="Memory offered.")],
    region: Annotated[str, typer.Option("--region", help="e.g. eu-1.")],
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Register a node to run the coop's tasks (an admin): compute.ExecutorRegistered. The
    node is paid into its own account, so it is admitted as a member first."""
    body = {"node": node, "cpu_millis": cpu_millis, "memory_mib": memory_mib, "region": region}
    with writer(data_dir, url, coop, key) as w:
        written = w.submit([(cb.EXECUTOR_REGISTERED, body)])[0]
    report(json, {**written.doc(), **body}, [f"executor {node} registered"])


@executor_app.command("run")
def executor_run(
    coop: Coop,
    key: Key,
    url: Annotated[str, typer.Option("--url", envvar="ICN_URL", help="The coop's node.")],
    interval: Annotated[
        float, typer.Option("--interval", min=0.05, help="Seconds between passes.")
    ] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Run the tasks placed on KEY's node: each run is committed, then revealed once every
    placed executor has committed. Modules and compiled code are kept in --data-dir."""
    from icn.interfaces.cli.compute_executor import executor_for, run_forever

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    home = data_dir_of(data_dir)
    with writer(data_dir, url, coop, key) as w:
        assert isinstance(w, RemoteWriter)
        ex = executor_for(w, home / "compute")
        if once:
            for line in ex.step():
                print(line)
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            run_forever(ex.step, interval, stop.is_set)
