"""Signed events in: one wire event or a batch, verified and appended before the answer.

The body is read as bytes and handed to the same write path the CLI uses;
the framework never re-encodes an event (its bytes are what was signed).
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

import anyio
import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from icn.application.append import Outcome
from icn.application.group_commit import Writer
from icn.application.parallel import shared_verifier
from icn.application.ports import Telemetry
from icn.domain.events.envelope import Inspection
from icn.domain.events.ijson import TOO_DEEP
from icn.domain.refusals import Code
from icn.interfaces.http.auth import Principal
from icn.interfaces.http.coop_paths import COOP_ROUTES, CoopPath
from icn.interfaces.http.dependencies import FeedDep, StoreDep, WriterDep
from icn.interfaces.http.gate import needs
from icn.interfaces.http.problems import ApiProblem, problem_responses, status_for
from icn.interfaces.writer_process import WriterProcess

MAX_BATCH = 100


class Appended(msgspec.Struct):
    """Where an event sits in the coop's log (``position`` = leaf index)."""

    id: str
    position: int


class AppendedBatch(msgspec.Struct):
    """Every event of a batch, in order."""

    events: list[Appended]


class ChainHeadView(msgspec.Struct):
    """What the author's next event must carry."""

    next_seq: int
    prev: str | None


def _split(body: bytes) -> tuple[list[bytes], bool]:
    """The events of a body (one object, or an array of 1..100) and whether it was a batch."""
    stripped = body.lstrip()
    if stripped.startswith(b"["):
        try:
            items = msgspec.json.decode(body, type=list[msgspec.Raw])
        except msgspec.DecodeError as exc:
            raise ApiProblem(400, "malformed", f"body is not a JSON array: {exc}") from None
        except RecursionError:  # also checked in front of every route (json_guard)
            raise ApiProblem(400, "malformed", f"request body: {TOO_DEEP}") from None
        if not 1 <= len(items) <= MAX_BATCH:
            raise ApiProblem(400, "invalid-request", f"a batch holds 1 to {MAX_BATCH} events")
        return [bytes(i) for i in items], True
    if not stripped.startswith(b"{"):
        raise ApiProblem(400, "malformed", "body must be one wire event or an array of them")
    return [body], False


def _refuse(status: int, code: str, line: int, detail: str) -> ApiProblem:
    problem = ApiProblem(status, code, f"line {line}: {detail}")
    problem.line = line
    return problem


def _check_senders(inspections: list[Inspection], coop: str, who: Principal) -> None:
    """Before judging: each line decodes, belongs to this coop, and is the caller's own."""
    for n, ins in enumerate(inspections, start=1):
        event = ins.event
        if event is None:
            # The finer code (``self-payment``, ``invalid-amount`` …) where the check has one,
            # so HTTP answers with the same code as ``icn log import`` of the same line.
            code = ins.code or ins.verdict or "malformed"
            raise _refuse(status_for(code), code, n, ins.reason)
        if event.coop != coop:
            raise _refuse(
                status_for(Code.WRONG_COOP), Code.WRONG_COOP, n, f"event is for coop {event.coop!r}"
            )
        if event.author != who.did and "relay" not in who.scopes:
            raise _refuse(
                status_for(Code.NOT_AUTHOR), Code.NOT_AUTHOR, n, "only its author may post an event"
            )


INLINE_VERIFY_MAX = 4
"""Bodies of up to this many events are verified on the event loop (~0.1 ms each):
cheaper than a hop to a worker thread and back, which cost single posts more
than the verification itself. Larger batches are verified in a worker thread."""


def _inspect(
    lines: list[bytes], telemetry: Telemetry, parent: object, *, coop: str, who: Principal
) -> list[Inspection]:
    """The stateless checks of ``lines`` and the sender checks, in a span of the write's
    trace (``parent``: the request's, handed over from its task or from another process)."""
    with telemetry.span("icn.verify", {"icn.events": len(lines)}, parent=parent):
        started = time.perf_counter()
        # On every core: the worker thread takes one slice, the shared verifier's pool the rest.
        inspections = shared_verifier().inspect(lines)
        telemetry.verified(time.perf_counter() - started, len(lines))
        _check_senders(inspections, coop, who)
    return inspections


async def _append(writer: Writer, lines: list[bytes], coop: str, who: Principal) -> list[Appended]:
    telemetry = writer.telemetry
    trace = telemetry.current()
    if isinstance(writer, WriterProcess):
        # The writer process checks the lines as this process would (the same function,
        # the same refusals), so this one keeps its GIL for the requests it serves.
        check = functools.partial(_inspect, coop=coop, who=who)
        answer = writer.enqueue_unchecked(lines, check, trace)
    else:
        if len(lines) <= INLINE_VERIFY_MAX:
            inspections = _inspect(lines, telemetry, trace, coop=coop, who=who)
        else:
            inspections = await anyio.to_thread.run_sync(
                functools.partial(_inspect, coop=coop, who=who), lines, telemetry, trace
            )
        answer = writer.enqueue(inspections)
    # Committed together with its neighbours; awaited here, so no thread waits for it.
    # Shielded: a client that hangs up must not cancel its place in a group being written.
    outcomes: list[Outcome] = await asyncio.shield(asyncio.wrap_future(answer))
    placed = []
    for o in outcomes:
        assert o.id is not None and o.position is not None  # a refused request raised
        placed.append(Appended(o.id, o.position))
    return placed


class EventsController(Controller):
    """Signed events in, and what an author's next event must carry."""

    path = COOP_ROUTES
    tags = ("events",)

    @post(
        "/events",
        status_code=201,
        opt=needs("events:write"),
        responses=problem_responses(401, 403, 409, 422, 503),
    )
    async def post_events(
        self,
        request: Request[Principal, Any, Any],
        coop: CoopPath,
        principal: NamedDependency[Principal],
        writer: WriterDep,
        feed: FeedDep,
    ) -> Appended | AppendedBatch:
        """Append one signed wire event, or a batch of up to 100 (all or nothing).

        Answered only after commit. A replayed event is refused (409
        ``duplicate``): nothing is stored twice, and the client learns it was
        recorded already. Node rules (membership, freezes, credit limits …)
        refuse with their own ``code``.
        """
        try:
            lines, batch = _split(await request.body())
            placed = await _append(writer, lines, coop, principal)
        except ApiProblem as problem:
            writer.telemetry.refused(coop, problem.code)
            raise
        with writer.telemetry.span("icn.deliver"):  # the live streams of the coop hear of it
            feed.notify(coop)
        return AppendedBatch(placed) if batch else placed[0]

    @get(
        "/chains/{did:str}/head",
        sync_to_thread=True,
        opt=needs("log:read"),
        responses=problem_responses(401, 403),
    )
    def chain_head(self, store: StoreDep, coop: CoopPath, did: FromPath[str]) -> ChainHeadView:
        """The ``seq`` and ``prev`` the author's next event must carry."""
        head = store.head(coop, did)
        return ChainHeadView(next_seq=head.seq + 1 if head else 1, prev=head.id if head else None)
