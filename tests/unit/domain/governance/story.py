"""The governance events of a coop's story, judged by the rules alone."""

from __future__ import annotations

from typing import Any

import msgspec
from support.rule_coop import Coop

from icn.domain.events.envelope import Event
from icn.domain.governance import state
from icn.domain.governance.closing import recount
from icn.domain.governance.records import ProposalRecord

DAY = 86_400_000


class Gov:
    """Governance events signed in order; each is judged when the script dates it."""

    def __init__(self, coop: Coop) -> None:
        self.c = coop
        self.s = coop.s

    def event(self, who: str, kind: str, body: dict[str, Any], **kw: Any) -> Event:
        return self.s.event(who, f"governance.{kind}", body, **kw)

    def propose(
        self,
        who: str = "alice",
        action: dict[str, Any] | None = None,
        *,
        domain: str = "root",
        period: int = DAY,
        **more: Any,
    ) -> Event:
        advance = more.pop("advance", True)
        opens_at = more.get("opens_at")
        start = opens_at if isinstance(opens_at, int) else 0
        body = {
            "domain": domain,
            "title": "A proposal",
            "text": "Why it matters.",
            "action": action or {"kind": "text"},
            "closes_at": max(self.s.ts + 1, start) + period,
            **more,
        }
        return self.event(who, "ProposalSubmitted", body, advance=advance)

    def vote(self, who: str, proposal: str, choice: str = "yes", **more: Any) -> Event:
        kw = {k: more.pop(k) for k in ("ts", "advance") if k in more}
        body = {"proposal": proposal, "choice": choice, **more}
        return self.event(who, "VoteCast", body, **kw)

    def proposal(self, proposal_id: str) -> ProposalRecord:
        p = state.proposal(self.c.state, self.s.coop, proposal_id)
        assert p is not None
        return p

    def close(self, proposal_id: str, who: str = "coop", **wrong: Any) -> Event:
        """The close as the node duty computes it, at the time it is due; ``wrong``
        replaces body fields (and leaves the chain as it was, for a refusal)."""
        p = self.proposal(proposal_id)
        coop = self.c.state.coop(self.s.coop)
        assert coop is not None
        t = recount(self.c.state, coop, p)
        body = {
            "proposal": p.id,
            "outcome": t.outcome,
            "counts": msgspec.to_builtins(t.counts),
            "eligible": t.eligible,
            "counted": t.counted,
            "ballots_digest": t.ballots_digest,
            **wrong,
        }
        ts = max(self.s.ts + 1, p.tally_due())
        refusal = bool(wrong) or who != "coop"
        return self.event(who, "ProposalClosed", body, ts=ts, advance=not refusal)

    def run(self, *events: Event) -> None:
        for e in events:
            self.c.ok(e)
