"""The governance read models: proposals, how they ended, votes, delegations, the charter,
every version of every domain's rules.

Every table but one only grows, one row written by the event that made it,
so replay compares them row by row and a batch costs one insert per
governance event. A proposal's *state* is a question asked of them (no end
row: still open; else the end row's state), never a row rewritten: it ends
once (closed, withdrawn or vetoed) and is executed at most once, so each has
its own append-only table keyed by the proposal. The one counter table,
``governance_vote_counts``, adds up vote events per proposal (the framework's
summed rows, like the ledger's balances) so a list of proposals shows their
activity without counting the votes table.

Who may say what was judged by the rules before an event reached the log;
nothing here checks it again. What counts in a tally (eligibility,
delegations followed, the latest ballot of each voter) is the rules' and the
tally's business (:mod:`icn.domain.governance.tally`), read live by
:mod:`icn.projections.governance_book`.
"""

from __future__ import annotations

from typing import Any

from icn.domain.events.canonical import canonical_bytes
from icn.domain.governance import bodies as b
from icn.projections.ports import AppendTable, Changes, Fact, Projection, SumTable

PROPOSALS = AppendTable(
    "governance_proposals",
    key=("coop", "proposal"),
    values=(
        "leaf", "domain", "author", "title", "text", "action_kind", "opens_at", "closes_at",
        "appeal", "ts",
    ),
)  # fmt: skip
ENDS = AppendTable(
    "governance_proposal_ends",
    key=("coop", "proposal"),
    values=(
        "leaf", "event_id", "state", "reason", "ts", "yes", "no", "abstain", "block",
        "yes_weight", "no_weight", "abstain_weight", "block_weight", "eligible", "counted",
        "ballots_digest",
    ),
)  # fmt: skip
EXECUTIONS = AppendTable(
    "governance_executions",
    key=("coop", "proposal"),
    values=("leaf", "event_id", "effects", "failed", "ts"),
)
VOTES = AppendTable(
    "governance_votes",
    key=("coop", "leaf"),
    values=(
        "proposal", "event_id", "voter", "kind", "choice", "credits", "commitment", "reason",
        "ts",
    ),
)  # fmt: skip
VOTE_COUNTS = SumTable(
    "governance_vote_counts",
    key=("coop", "proposal"),
    values=("casts", "commitments", "reveals"),
)
DELEGATIONS = AppendTable(
    "governance_delegations",
    key=("coop", "leaf"),
    values=("event_id", "domain", "member", "delegate", "ts"),
)
CHARTER = AppendTable(
    "governance_charter",
    key=("coop", "section", "leaf"),
    values=("event_id", "proposal", "text", "rationale", "ts"),
)
DOMAINS = AppendTable(
    "governance_domains",
    key=("coop", "domain", "leaf"),
    values=("event_id", "kind", "proposal", "rules", "ts"),
)

COUNT_FIELDS = (
    "yes", "no", "abstain", "block", "yes_weight", "no_weight", "abstain_weight", "block_weight",
)  # fmt: skip
VOTE_KINDS = {b.VOTE_CAST: "cast", b.VOTE_COMMITTED: "committed", b.VOTE_REVEALED: "revealed"}
"""A vote event's kind, as the votes table names it."""


class Proposals:
    """One row per ``governance.ProposalSubmitted``, under its id."""

    name = "governance.proposals"
    tables = (PROPOSALS,)

    def apply(self, leaf: int, event: Fact, changes: Changes) -> None:
        if event.type != b.PROPOSAL_SUBMITTED:
            return
        body = event.body
        action: dict[str, Any] = body["action"]
        changes.insert(
            PROPOSALS,
            (
                event.coop, event.id, leaf, body["domain"], event.author, body["title"],
                body["text"], action.get("kind", ""), body.get("opens_at"), body["closes_at"],
                body.get("appeal"), event.ts,
            ),
        )  # fmt: skip


class Ends:
    """One row per proposal that ended: closed (with its tally), withdrawn or vetoed."""

    name = "governance.ends"
    tables = (ENDS,)

    def apply(self, leaf: int, event: Fact, changes: Changes) -> None:
        body = event.body
        if event.type == b.PROPOSAL_CLOSED:
            counts = body["counts"]
            tally = [counts.get(f, 0) for f in COUNT_FIELDS]
            row = (body["outcome"], None, event.ts, *tally, body["eligible"], body["counted"])
            changes.insert(
                ENDS, (event.coop, body["proposal"], leaf, event.id, *row, body["ballots_digest"])
            )
        elif event.type in (b.PROPOSAL_WITHDRAWN, b.PROPOSAL_VETOED):
            state = "withdrawn" if event.type == b.PROPOSAL_WITHDRAWN else "vetoed"
            nothing = (None,) * (len(COUNT_FIELDS) + 3)
            changes.insert(
                ENDS,
                (event.coop, body["proposal"], leaf, event.id, state, body.get("reason"),
                 event.ts, *nothing),
            )  # fmt: skip


class Executions:
    """One row per ``governance.ProposalExecuted``: its effects (ids, space-separated) or
    the refusal an effect met."""

    name = "governance.executions"
    tables = (EXECUTIONS,)

    def apply(self, leaf: int, event: Fact, changes: Changes) -> None:
        if event.type != b.PROPOSAL_EXECUTED:
            return
        body = event.body
        effects = " ".join(body.get("effects") or [])
        changes.insert(
            EXECUTIONS,
            (event.coop, body["proposal"], leaf, event.id, effects, body.get("failed"), event.ts),
        )


class Votes:
    """One row per vote event (cast, committed, revealed) at its leaf, and the counts per
    proposal. A commitment's row has no choice: the reveal's row has it."""

    name = "governance.votes"
    tables = (VOTES, VOTE_COUNTS)

    def apply(self, leaf: int, event: Fact, changes: Changes) -> None:
        kind = VOTE_KINDS.get(event.type)
        if kind is None:
            return
        body = event.body
        changes.insert(
            VOTES,
            (
                event.coop, leaf, body["proposal"], event.id, event.author, kind,
                body.get("choice"), body.get("credits"), body.get("commitment"),
                body.get("reason"), event.ts,
            ),
        )  # fmt: skip
        counts = (int(kind == "cast"), int(kind == "committed"), int(kind == "revealed"))
        changes.add(VOTE_COUNTS, (event.coop, body["proposal"]), counts)


class Delegations:
    """One row per ``governance.VoteDelegated`` (``delegate`` null: revoked): the history;
    the live delegation of a member in a domain is their latest row."""

    name = "governance.delegations"
    tables = (DELEGATIONS,)

    def apply(self, leaf: int, event: Fact, changes: Changes) -> None:
        if event.type != b.VOTE_DELEGATED:
            return
        body = event.body
        changes.insert(
            DELEGATIONS,
            (event.coop, leaf, event.id, body["domain"], event.author, body.get("to"), event.ts),
        )


class Charter:
    """One row per ``governance.CharterAmended``: every version of every section, in order
    (a section's n-th row by leaf is its version n, as the rules number them)."""

    name = "governance.charter"
    tables = (CHARTER,)

    def apply(self, leaf: int, event: Fact, changes: Changes) -> None:
        if event.type != b.CHARTER_AMENDED:
            return
        body = event.body
        changes.insert(
            CHARTER,
            (event.coop, body["section"], leaf, event.id, body["proposal"], body["text"],
             body["rationale"], event.ts),
        )  # fmt: skip


class Domains:
    """One row per ``governance.DomainDefined`` or ``DomainChanged``: every version of every
    domain's rules, in order (a domain's n-th row by leaf is its version n, as the rules
    number them; ``root``'s version 0 is the founding defaults, which no event states).
    ``rules`` is the canonical JSON of the rules as signed (fields left out take their
    defaults)."""

    name = "governance.domains"
    tables = (DOMAINS,)

    def apply(self, leaf: int, event: Fact, changes: Changes) -> None:
        if event.type not in (b.DOMAIN_DEFINED, b.DOMAIN_CHANGED):
            return
        body = event.body
        kind = "defined" if event.type == b.DOMAIN_DEFINED else "changed"
        rules = canonical_bytes(body["rules"]).decode()
        changes.insert(
            DOMAINS,
            (event.coop, body["domain"], leaf, event.id, kind, body.get("proposal"), rules,
             event.ts),
        )  # fmt: skip


GOVERNANCE_PROJECTIONS: tuple[Projection, ...] = (
    Proposals(),
    Ends(),
    Executions(),
    Votes(),
    Delegations(),
    Charter(),
    Domains(),
)
"""Every projection of the governance capability, in the order a runner applies them."""
