"""What a member signs about a proposal besides proposing and voting openly: withdraw it,
veto it, appeal its decision, and a sealed ballot's commitment and reveal.

Each is one event signed with ``--key`` and written like every write (to
``--data-dir``'s store, or posted to the node at ``--url``); the node's rules
judge it, so a withdrawal by someone else, a veto without a veto role or an
appeal after the window is refused with its code (and the exit code the
refusal vocabulary gives it).

``icn vote`` in a sealed domain commits instead of casting: it reads the
proposal's rules first (never posting the choice to find out), keeps the
choice and salt in the data dir (:mod:`icn.interfaces.cli.sealed_ballots`),
then signs ``governance.VoteCommitted``; ``icn reveal`` signs the
``governance.VoteRevealed`` from what was kept.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from nacl.signing import SigningKey

from icn.application.trust_epochs import CommittedState
from icn.domain.governance import bodies as gb
from icn.domain.governance import state
from icn.domain.governance.tally import commitment_of
from icn.interfaces.cli import sealed_ballots as kept
from icn.interfaces.cli.common import DataDir, Json, settings_for
from icn.interfaces.cli.writes import (
    Coop,
    Key,
    LocalWriter,
    Refused,
    RemoteWriter,
    Url,
    Writer,
    Written,
    check_event_id,
    report,
    writer,
)

Proposal = Annotated[str, typer.Argument(help="The proposal's id.")]


def _key(w: Writer) -> SigningKey:
    """The signing key a writer holds (both writers keep the one ``--key`` unlocked)."""
    key = getattr(w, "key", None)
    if not isinstance(key, SigningKey):  # pragma: no cover - every writer has one
        raise TypeError("this writer holds no signing key")
    return key


def _act(
    type_: str,
    proposal: str,
    field: str,
    text: str | None,
    said: str,
    coop: str,
    key: str,
    url: str | None,
    data_dir: Path | None,
    json: bool,
) -> None:
    """Sign one event about a proposal with one text field, write it and report it; ``said``
    is the line shown, with ``{proposal}`` and ``{id}`` filled in."""
    body = {"proposal": check_event_id(proposal, "'PROPOSAL'"), field: text}
    with writer(data_dir, url, coop, key) as w:
        written = w.submit([(type_, body)])[0]
    line = said.format(proposal=proposal, id=written.event.id)
    report(json, {**written.doc(), **body}, [line])


def withdraw(
    proposal: Proposal,
    coop: Coop,
    key: Key,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (1024 characters).")] = None,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Withdraw your own open proposal: sign governance.ProposalWithdrawn."""
    said = "withdrew {proposal} ({id})"
    _act(gb.PROPOSAL_WITHDRAWN, proposal, "reason", reason, said, coop, key, url, data_dir, json)


def veto(
    proposal: Proposal,
    coop: Coop,
    key: Key,
    reason: Annotated[str, typer.Option("--reason", help="Why (required, 1024 characters).")],
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Veto an open proposal with a veto role of its domain: sign governance.ProposalVetoed."""
    said = "vetoed {proposal} ({id})"
    _act(gb.PROPOSAL_VETOED, proposal, "reason", reason, said, coop, key, url, data_dir, json)


def appeal(
    proposal: Proposal,
    coop: Coop,
    key: Key,
    grounds: Annotated[str, typer.Option("--grounds", help="Why (required, 4096 characters).")],
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Appeal a decision within its appeal window: sign governance.AppealFiled (its id is the
    appeal's, which a root proposal resolving it names)."""
    said = "appeal {id} of {proposal}"
    _act(gb.APPEAL_FILED, proposal, "grounds", grounds, said, coop, key, url, data_dir, json)


# -- sealed ballots ------------------------------------------------------------


def is_sealed(w: Writer, proposal: str) -> bool:
    """Whether the proposal takes sealed ballots, from the rules it was submitted under
    (unknown here: false, and the cast is refused with the node's own code)."""
    if isinstance(w, LocalWriter):
        found = state.proposal(CommittedState(w.node.store), w.coop, proposal)
        return found is not None and found.rules.sealed
    if isinstance(w, RemoteWriter):
        from icn.interfaces.client.errors import ApiError

        try:
            doc = msgspec.json.decode(w._get(f"/v1/coops/{w.coop}/proposals/{proposal}"))
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return isinstance(doc, dict) and doc.get("rules", {}).get("sealed") is True
    return False  # pragma: no cover - no other writer


def commit(
    w: Writer,
    data_dir: Path | None,
    proposal: str,
    choice: str,
    credits: int | None,
    reason: str | None,
) -> tuple[Written, dict[str, Any], Path]:
    """Keep the choice and a fresh salt, then sign their commitment; the kept secret is
    removed again if the node refuses the commitment."""
    key = _key(w)
    home = settings_for(data_dir).data_dir
    salt = secrets.token_urlsafe(32)  # 43 characters, 256 bits
    commitment = commitment_of(choice, credits, salt)
    ballot = kept.KeptBallot(w.coop, proposal, w.did, choice, credits, salt, commitment, reason)
    try:
        path = kept.keep(home, ballot, key)
    except kept.BallotAlreadyKept as exc:
        raise Refused(
            "already-voted",
            f"a sealed ballot on {proposal} is kept already ({exc}): a commitment is made once;"
            " reveal it with icn reveal after the close (delete that file only if its"
            " commitment never reached the log)",
        ) from None
    body = {"proposal": proposal, "commitment": commitment}
    try:
        written = w.submit([(gb.VOTE_COMMITTED, body)])[0]
    except Refused:
        kept.forget(home, w.coop, proposal, key)
        raise
    return written, body, path


def reveal(
    proposal: Proposal,
    coop: Coop,
    key: Key,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why (1024 characters); else the one given to icn vote."),
    ] = None,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Open your sealed ballot after the close: sign governance.VoteRevealed with the choice and
    salt `icn vote` kept in this data dir."""
    proposal = check_event_id(proposal, "'PROPOSAL'")
    home = settings_for(data_dir).data_dir
    with writer(data_dir, url, coop, key) as w:
        signing = _key(w)
        try:
            ballot = kept.load(home, coop, proposal, signing)
        except kept.BallotNotKept as exc:
            raise Refused(
                "no-commitment",
                f"no sealed ballot of {key} on {proposal} is kept in this data dir ({exc}):"
                " only the data dir that committed it can reveal it",
            ) from None
        body = {
            "proposal": proposal,
            "choice": ballot.choice,
            "credits": ballot.credits,
            "salt": ballot.salt,
            "reason": reason if reason is not None else ballot.reason,
        }
        written = w.submit([(gb.VOTE_REVEALED, body)])[0]
        kept.forget(home, coop, proposal, signing)
    shown = {k: v for k, v in body.items() if k != "salt"}
    report(
        json,
        {**written.doc(), **shown},
        [f"revealed {ballot.choice} on {proposal} ({written.event.id})"],
    )
