"""The recount: what a proposal's close must state, computed from the log at its position.

The node that closes a proposal and every node judging the close call the
same function on the same records, so a forged or mistaken tally is refused
wherever it arrives, and ``icn governance recount`` gives the same answer.
"""

from __future__ import annotations

from icn.domain.coop.records import CoopRecord
from icn.domain.coop.state import CoopView
from icn.domain.governance import state
from icn.domain.governance.eligibility import eligible_voters
from icn.domain.governance.records import ProposalRecord
from icn.domain.governance.tally import Ballot, Tally, effective_ballots, tally, weight_for


def recount(view: CoopView, coop: CoopRecord, proposal: ProposalRecord) -> Tally:
    """The proposal's tally as the log stands: eligible voters now, ballots, delegations now.

    A ballot counts only for a voter still eligible; a sealed commitment never
    revealed counts as ``abstain``.
    """
    voters = eligible_voters(view, coop, proposal.rules)
    direct = {
        b.voter: Ballot(b.vote, b.choice or "abstain", b.credits)
        for b in state.ballots(view, coop.coop, proposal.id)
        if b.voter in voters
    }
    delegated = state.delegations(view, coop.coop, proposal.domain)
    counted = effective_ballots(
        sorted(voters),
        direct,
        delegated,
        lambda voter, ballot: weight_for(proposal.rules, voters[voter], ballot),
    )
    return tally(proposal.rules, len(voters), counted)
