"""The node's rules for one event: refuse it, or say which records it writes.

Spec checks (format, signature, chain) have already passed when this runs;
these are the coop's own rules (spec section 6: "an entry can be well-formed
here and still be refused by a node's policy"). One function serves the
write path, replication and ``icn replay``, so they cannot disagree. Which
rule judges which type is the registry's business (:mod:`icn.domain.registry`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from icn.domain import registry
from icn.domain.coop import bodies as coop_bodies
from icn.domain.coop.state import CoopView, Effects, active_problem
from icn.domain.events.bodies import ENTRY_RECORDED
from icn.domain.events.envelope import Event
from icn.domain.refusals import Code, Refusal

NODE_TYPES_PREFIX = "log."
"""Node statements (checkpoints) are not coop business: any verified author may make them."""


def evolve(event: Event, view: CoopView, now: int, body: Any = None) -> Refusal | Effects:
    """Refuse ``event`` or return the records it writes; never changes ``view``.

    ``now``: trusted time at the event's position (:mod:`icn.domain.events.timing`);
    every time-based rule judges by it, never by the author's ``ts``.
    ``body``: the event's body as its Struct, when :func:`inspect` already
    decoded it (:attr:`Inspection.body`); otherwise it is decoded here.
    """
    if event.type.startswith(NODE_TYPES_PREFIX):
        return []
    if event.type != coop_bodies.FOUNDED:
        coop = view.coop(event.coop)
        if coop is None:
            return Refusal(
                Code.UNKNOWN_COOP, f"coop {event.coop} has not been founded on this node"
            )
    kind = registry.known(event.type)
    if kind is None or kind.rule is None:
        return _member_statement(event, view)
    if body is None:
        try:
            body = registry.typed_body(kind, event.body)
        except msgspec.ValidationError as exc:
            return Refusal(Code.INVALID_BODY, f"bad {event.type} body: {exc}")
    return kind.rule(body, event, view, now)


def _member_statement(event: Event, view: CoopView) -> Refusal | Effects:
    """A type without rules of its own: only the coop's DID or an active member may say it."""
    coop = view.coop(event.coop)
    assert coop is not None
    if event.author == coop.did:
        return []
    return active_problem(view, event.coop, event.author) or []


def likely_reads(event: Event) -> list[tuple[str, str]]:
    """The (kind, key) records the rules will probably read for ``event``.

    A read-ahead hint only: the store fetches them in one round trip before
    judging a batch. Rules still read whatever they need; a missed or extra
    key costs time, never correctness.
    """
    keys = [("coop", ""), ("member", event.author)]
    if event.type == ENTRY_RECORDED:
        for tx in event.body.get("transactions", ()):
            if not isinstance(tx, dict):
                continue
            frm, to, cur = tx.get("from"), tx.get("to"), tx.get("currency")
            if isinstance(frm, str) and isinstance(to, str) and isinstance(cur, str):
                keys += [("member", to), ("account", f"{frm}/{cur}"), ("account", f"{to}/{cur}")]
    return keys
