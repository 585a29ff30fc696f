"""A coop judged by the rules alone, in memory: what rule tests move forward event by event."""

from __future__ import annotations

from icn.application.coop_view import NoRecords, StateLayer
from icn.domain.coop.evolve import evolve
from icn.domain.coop.records import MemberRecord
from icn.domain.events.envelope import Event
from icn.domain.refusals import Refusal
from support.coops import CoopScript


class Coop:
    """A coop's state, moved forward only by accepted events (as the write path does)."""

    def __init__(self, script: CoopScript) -> None:
        self.s = script
        self.state = StateLayer(NoRecords())

    def apply(self, event: Event) -> Refusal | None:
        result = evolve(event, self.state, event.ts)  # judged when the script dated it
        if isinstance(result, Refusal):
            return result
        self.state.write(event, result)
        return None

    def ok(self, event: Event) -> None:
        refusal = self.apply(event)
        assert refusal is None, refusal

    def refused(self, event: Event) -> str:
        refusal = self.apply(event)
        assert refusal is not None, f"{event.type} was accepted"
        return refusal.code

    def balance(self, name: str, currency: str = "hours") -> int:
        account = self.state.account(self.s.coop, self.s.did(name), currency)
        return account.balance if account else 0

    def member(self, name: str) -> MemberRecord:
        m = self.state.member(self.s.coop, self.s.did(name))
        assert m is not None
        return m
