"""Members' display names: every ``coop.ProfileUpdated``, the last one per member current.

A name is a member's statement about themselves (the rules accepted only those
signed by the member it names, with a name that hides nothing:
:mod:`icn.domain.coop.names`). A projection is pure and reads no rows, so the
table only grows, one row per event; the current name of a member is their row
with the highest leaf. ``icn replay`` rebuilds and compares it like every read
model. Names are not unique and prove nothing: every document that carries one
also carries the DID, and pages show the name beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import msgspec

from icn.domain.coop.bodies import PROFILE_UPDATED
from icn.projections.ledger_views import MemberPage, MemberView
from icn.projections.ports import AppendTable, Changes, Fact, Projection

NAMES = AppendTable("member_names", key=("coop", "did", "leaf"), values=("name", "ts"))


class MemberNames:
    """One row per accepted ``coop.ProfileUpdated``: (coop, author, leaf) -> name."""

    name = "coop.names"
    tables = (NAMES,)

    def apply(self, leaf: int, event: Fact, changes: Changes) -> None:
        if event.type == PROFILE_UPDATED:
            changes.insert(
                NAMES, (event.coop, event.author, leaf, event.body["display_name"], event.ts)
            )


NAME_PROJECTIONS: tuple[Projection, ...] = (MemberNames(),)


class NameReads(Protocol):
    """Current names, as the members' documents need them."""

    def names(self, coop: str, dids: list[str]) -> dict[str, str]:
        """DID -> the name of the member's last ``coop.ProfileUpdated``, for those with one."""
        ...


def named(view: MemberView, names: Mapping[str, str]) -> MemberView:
    """``view`` with the member's current name (null when they never gave one)."""
    return msgspec.structs.replace(view, name=names.get(view.did))


def named_member(reads: NameReads, coop: str, view: MemberView) -> MemberView:
    """One member's document with their name."""
    return named(view, reads.names(coop, [view.did]))


def named_page(reads: NameReads, coop: str, page: MemberPage) -> MemberPage:
    """A page of members, each with their name (one query for the page)."""
    names = reads.names(coop, [m.did for m in page.members])
    return MemberPage([named(m, names) for m in page.members], page.next)
