"""Every reason a node gives for not storing an event, defined once.

A refusal has a stable code that clients, scripts and other nodes branch on,
a kind that says what sort of "no" it is, and whether a later event may
lift it. Everything else is derived from this table, never kept beside it:
the HTTP status (:mod:`icn.interfaces.http.problems`), what replication
intake parks rather than rejects (:mod:`icn.application.intake`), the CLI's
exit code, and the code tables of docs/api.md and docs/cli.md (a test fails
when they drift). A code means one thing: "the author is suspended" and "the
member is already suspended" are two codes, because a client does different
things about them.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Kind(StrEnum):
    """What sort of "no" a refusal is; the HTTP status follows from it alone."""

    INVALID = "invalid"
    """The event is wrong as written, or names something this log does not hold."""
    FORBIDDEN = "forbidden"
    """The author may not state this."""
    CONFLICT = "conflict"
    """It clashes with what the log already holds."""
    UNAVAILABLE = "unavailable"
    """The node could not decide now; the same event may be sent again."""


_I, _F, _C, _U = Kind.INVALID, Kind.FORBIDDEN, Kind.CONFLICT, Kind.UNAVAILABLE


class Code(StrEnum):
    """A refusal code, with its kind, whether it may clear later, and what it means.

    ``clears``: an event still to arrive may lift it (the admission of a payee,
    the credit that covers a payment …), so replication intake parks the
    event and tries again when the log grows; otherwise it is rejected for good.
    """

    kind: Kind
    clears: bool
    meaning: str

    def __new__(cls, value: str, kind: Kind, clears: bool, meaning: str) -> Code:
        """Members are their code string, carrying their row of the table."""
        member = str.__new__(cls, value)
        member._value_ = value
        member.kind = kind
        member.clears = clears
        member.meaning = meaning
        return member

    # -- spec verdicts (spec section 4), in the order they are decided ----------
    MALFORMED = "malformed", _I, False, "not an event: bad JSON, shape, member or body"
    BAD_ID = "bad-id", _I, False, "`id` is not the hash of the content"
    BAD_SIGNATURE = "bad-signature", _I, False, "the signature does not verify for `author`"
    FORK = "fork", _C, False, "another event holds this `seq` of the author's chain"
    GAP = "gap", _C, True, "`seq` is past the end of the author's chain"
    BROKEN_LINK = "broken-link", _C, False, "`prev` or `ts` does not follow the chain"
    DUPLICATE = "duplicate", _C, False, "this very event is already in the log"

    # -- bodies every node knows (spec section 6) -------------------------------
    SELF_PAYMENT = "self-payment", _I, False, "a transaction pays an account to itself"
    INVALID_AMOUNT = "invalid-amount", _I, False, "an amount is not 1 to 2^53-1 units, as asked"
    PAYER_NOT_SIGNER = "payer-not-signer", _F, False, "debits an account that is not the author's"

    # -- the write path ---------------------------------------------------------
    CLOCK_SKEW = "clock-skew", _I, False, "`ts` lies too far ahead of the node's trusted time"
    AUTHOR_FLAGGED = "author-flagged", _F, False, "the author forked this coop's log"
    WRONG_COOP = "wrong-coop", _I, False, "the event belongs to another coop than it was sent to"
    NOT_AUTHOR = "not-author", _F, False, "only an event's author may post it"
    STORE_BUSY = "store-busy", _U, True, "other writers kept winning the race: send it again"
    STREAM_UNAVAILABLE = (
        "stream-unavailable",
        _U,
        True,
        "the coop's stream could not take the write now: send it again",
    )

    # -- coops and membership ---------------------------------------------------
    UNKNOWN_COOP = "unknown-coop", _I, True, "the coop has not been founded on this node"
    INVALID_BODY = "invalid-body", _I, False, "the body does not fit its event type"
    COOP_ALREADY_FOUNDED = "coop-already-founded", _C, False, "the coop exists already"
    INVALID_POLICY = "invalid-policy", _I, False, "the policy or currencies contradict themselves"
    INVALID_MEMBER = "invalid-member", _I, False, "not a DID that can be a member here"
    NOT_A_MEMBER = "not-a-member", _F, True, "a DID the event needs as a member is not one"
    MEMBER_SUSPENDED = "member-suspended", _F, True, "a DID the event needs active is suspended"
    NOT_AUTHORIZED = "not-authorized", _F, True, "needs an admin, the coop's DID or the mediator"
    ALREADY_MEMBER = "already-member", _C, False, "the DID is a member already"
    ALREADY_SUSPENDED = "already-suspended", _C, True, "the member is suspended already"
    NOT_SUSPENDED = "not-suspended", _I, True, "a reinstatement of a member not suspended"
    BALANCE_NOT_SETTLED = "balance-not-settled", _C, True, "leaving with a balance other than 0"
    INVALID_NAME = (
        "invalid-name",
        _I,
        False,
        "a display name too long, not NFC, or hiding characters",
    )

    # -- money ------------------------------------------------------------------
    UNKNOWN_CURRENCY = "unknown-currency", _I, True, "the coop has no such currency (yet)"
    ACCOUNT_FROZEN = "account-frozen", _F, True, "the payer's account is frozen"
    CREDIT_LIMIT_EXCEEDED = (
        "credit-limit-exceeded",
        _C,
        True,
        "the payer's balance would go below their credit limit",
    )
    INVALID_FREEZE = "invalid-freeze", _I, False, "a freeze that ends before it starts"
    NOT_FROZEN = "not-frozen", _I, True, "an unfreeze of an account not frozen"
    UNKNOWN_ENTRY = "unknown-entry", _I, True, "no such ledger entry (or transaction) in the log"
    NOT_A_PARTY = "not-a-party", _I, False, "only the dispute's parties may do this"
    ALREADY_DISPUTED = "already-disputed", _C, False, "the transaction is disputed already"
    UNKNOWN_DISPUTE = "unknown-dispute", _I, True, "no such dispute in the log"
    DISPUTE_CLOSED = "dispute-closed", _C, False, "the dispute is closed"
    DISPUTE_NOT_RESOLVED = (
        "dispute-not-resolved",
        _C,
        True,
        "a settlement of a dispute not (yet) resolved with money to move",
    )
    ALREADY_ANSWERED = "already-answered", _C, False, "the dispute is answered already"
    NOT_ELIGIBLE = "not-eligible", _I, False, "a party cannot mediate its own dispute"
    INVALID_OUTCOME = "invalid-outcome", _I, False, "the outcome would pay the payer from itself"
    SETTLEMENT_MISMATCH = (
        "settlement-mismatch",
        _I,
        False,
        "the entry does not move what the resolution ordered",
    )
    ALREADY_CHARGED = "already-charged", _C, False, "this demurrage period is charged already"
    INVALID_PERIOD = "invalid-period", _I, False, "period_end is not a whole period, or ahead"

    # -- trust --------------------------------------------------------------------
    SELF_ATTESTATION = "self-attestation", _I, False, "a member vouches for themselves"
    INVALID_EXPIRY = "invalid-expiry", _I, False, "the attestation expires before it is recorded"
    UNKNOWN_ATTESTATION = "unknown-attestation", _I, True, "no such attestation in the log"
    NOT_TRUSTER = "not-truster", _F, False, "only the truster may revoke an attestation"
    ATTESTATION_NOT_LIVE = (
        "attestation-not-live",
        _C,
        False,
        "the attestation was replaced by a later one or revoked already",
    )
    EPOCH_OUT_OF_ORDER = "epoch-out-of-order", _C, False, "not the next epoch of its context"
    STANDING_MISMATCH = (
        "standing-mismatch",
        _I,
        False,
        "the epoch's position, count or digest is not what the log gives",
    )

    # -- governance ---------------------------------------------------------------
    UNKNOWN_DOMAIN = "unknown-domain", _I, True, "the coop has no such governance domain (yet)"
    DOMAIN_EXISTS = "domain-exists", _C, False, "the domain is defined already"
    INVALID_DOMAIN = "invalid-domain", _I, False, "the domain's rules contradict themselves"
    NOT_A_PROPOSER = (
        "not-a-proposer",
        _F,
        True,
        "the author lacks the domain's role or class to propose",
    )
    NOT_A_VOTER = "not-a-voter", _F, True, "the author lacks the domain's role or class to vote"
    INVALID_VOTING_PERIOD = (
        "invalid-voting-period",
        _I,
        False,
        "opens_at or closes_at lies outside the domain's period bounds",
    )
    INVALID_ACTION = "invalid-action", _I, False, "the proposal's action cannot be carried out"
    UNKNOWN_PROPOSAL = "unknown-proposal", _I, True, "no such proposal in the log"
    PROPOSAL_NOT_OPEN = "proposal-not-open", _C, True, "voting on the proposal has not opened yet"
    PROPOSAL_CLOSED = "proposal-closed", _C, False, "the proposal's voting has ended"
    PROPOSAL_WITHDRAWN = "proposal-withdrawn", _C, False, "the proposal was withdrawn"
    SEALED_BALLOT = (
        "sealed-ballot",
        _I,
        False,
        "a plain vote in a sealed domain, or a commitment in an open one",
    )
    ALREADY_VOTED = "already-voted", _C, False, "the voter has committed a sealed ballot already"
    INVALID_VOTE = (
        "invalid-vote",
        _I,
        False,
        "a block outside consent, or credits the method refuses",
    )
    REVEAL_WINDOW = "reveal-window", _C, False, "a reveal before closes_at or after its window"
    NO_COMMITMENT = "no-commitment", _I, False, "no unrevealed commitment of the voter to open"
    REVEAL_MISMATCH = "reveal-mismatch", _I, False, "the reveal does not hash to the commitment"
    DELEGATION_CYCLE = "delegation-cycle", _C, False, "the delegation would lead back to its author"
    NOT_PROPOSAL_AUTHOR = "not-proposal-author", _F, False, "only the proposal's author may do this"
    NO_VETO_RIGHT = "no-veto-right", _F, True, "the author holds none of the domain's veto roles"
    TALLY_NOT_DUE = "tally-not-due", _C, True, "the proposal may not be closed before its time"
    ALREADY_CLOSED = (
        "already-closed",
        _C,
        False,
        "the proposal is closed, withdrawn or vetoed already",
    )
    TALLY_MISMATCH = (
        "tally-mismatch",
        _I,
        False,
        "the close's outcome, counts or digest is not what the recount gives",
    )
    NOT_ACCEPTED = "not-accepted", _C, True, "the proposal has not been accepted"
    ALREADY_EXECUTED = "already-executed", _C, False, "the proposal was executed already"
    INVALID_EXECUTION = (
        "invalid-execution",
        _I,
        False,
        "effects and failed both or neither set, an unknown code, or an effect not in the log",
    )
    PROPOSAL_MISMATCH = (
        "proposal-mismatch",
        _I,
        False,
        "the event's proposal does not order this effect",
    )
    PROPOSAL_REQUIRED = (
        "proposal-required",
        _F,
        False,
        "since the coop's first proposal, only an accepted proposal orders this",
    )
    LINK_BY_COOP_ONLY = (
        "link-by-coop-only",
        _F,
        False,
        "only the coop's DID carries a proposal out: an effect by anyone else names none",
    )
    NOT_APPEALABLE = "not-appealable", _C, True, "only a proposal closed by a tally may be appealed"
    APPEAL_WINDOW_CLOSED = "appeal-window-closed", _C, False, "the appeal window has passed"
    UNKNOWN_APPEAL = "unknown-appeal", _I, True, "no such appeal in the log"
    APPEAL_RESOLVED = "appeal-resolved", _C, False, "a proposal resolves the appeal already"
    ALREADY_OVERTURNED = (
        "already-overturned",
        _C,
        False,
        "another appeal's proposal, open or accepted, overturns the decision already",
    )
    APPEAL_ACTION_MISMATCH = (
        "appeal-action-mismatch",
        _I,
        False,
        "an appeal's resolution carries the reverse of what was decided, or text only",
    )

    # -- compute (issue 18): what an uploaded task module must be ---------------
    MODULE_INVALID = (
        "module-invalid",
        _I,
        False,
        "not a WebAssembly module (binary, or text for upload) that validates",
    )
    MODULE_TOO_LARGE = "module-too-large", _I, False, "a module's binary is over 4 MiB"
    MODULE_IMPORT_FORBIDDEN = (
        "module-import-forbidden",
        _I,
        False,
        "a module imports something besides the task ABI's icn functions (WASI included)",
    )
    MODULE_EXPORTS = (
        "module-exports",
        _I,
        False,
        "a module does not export exactly `memory` and `run() -> i32`",
    )
    MODULE_START_FUNCTION = "module-start-function", _I, False, "a module has a start function"
    MODULE_FEATURE_FORBIDDEN = (
        "module-feature-forbidden",
        _I,
        False,
        "a module uses SIMD, threads or another feature the sandbox leaves off",
    )
    MODULE_MEMORY_TOO_LARGE = (
        "module-memory-too-large",
        _I,
        False,
        "a module's memory starts above 64 MiB",
    )
    MODULE_HASH_MISMATCH = (
        "module-hash-mismatch",
        _I,
        False,
        "a module's bytes do not hash to the hash given for them",
    )
    MODULE_EXISTS = "module-exists", _C, False, "the coop has stored this module already"
    INVALID_EXECUTOR = "invalid-executor", _I, False, "an executor's node is not a DID"

    # -- compute tasks (issue 18): submitted, run by executors, settled -------------
    UNKNOWN_MODULE = "unknown-module", _I, True, "no module with this hash is stored (yet)"
    MODULE_UNAVAILABLE = (
        "module-unavailable",
        _U,
        True,
        "no node of the coop could hand over the module's bytes (yet): try again",
    )
    INPUT_TOO_LARGE = "input-too-large", _I, False, "a task's input is over 32 KiB"
    NO_EXECUTORS = (
        "no-executors",
        _C,
        True,
        "fewer registered executors (active members) than the task's replicas",
    )
    UNKNOWN_TASK = "unknown-task", _I, True, "no such compute task in the log (yet)"
    NOT_ASSIGNED = "not-assigned", _F, False, "the node is not an executor placed on the task"
    ALREADY_COMMITTED = (
        "already-committed",
        _C,
        False,
        "the executor committed to a result for this task already",
    )
    COMMITMENTS_PENDING = (
        "commitments-pending",
        _C,
        True,
        "a result is revealed before every placed executor has committed",
    )
    ALREADY_REVEALED = "already-revealed", _C, False, "the executor revealed its result already"
    TASK_NOT_RUNNING = "task-not-running", _C, False, "the task's results are all in already"
    TASK_NOT_SETTLEABLE = (
        "task-not-settleable",
        _C,
        False,
        "the task's answers are not all in, or it is settled already",
    )
    TASK_NOT_DUE = (
        "task-not-due",
        _C,
        True,
        "a task's deadline has not passed yet, or the task was re-placed since",
    )
    TASK_PAYMENT_MISMATCH = (
        "task-payment-mismatch",
        _I,
        False,
        "a task's settlement does not pay what its agreed answer and fee come to",
    )

    # -- contracts ----------------------------------------------------------------
    INVALID_CONTRACT = (
        "invalid-contract",
        _I,
        False,
        "the contract's code does not decode, type-check or stay within its bounds",
    )
    CAPABILITY_DENIED = (
        "capability-denied",
        _F,
        False,
        "the contract uses a capability it was not granted",
    )
    CONTRACT_EXISTS = "contract-exists", _C, False, "this contract version is deployed already"
    UNKNOWN_CONTRACT = "unknown-contract", _I, True, "no such contract deployed (yet)"
    UNKNOWN_RULE = "unknown-rule", _I, False, "the contract has no such rule"
    INVALID_ARGS = "invalid-args", _I, False, "the arguments do not fit the rule's parameters"
    REQUIREMENT_FAILED = "requirement-failed", _C, False, "a rule's requirement does not hold"
    OUT_OF_FUEL = "out-of-fuel", _C, False, "the invocation ran out of fuel"
    CONTRACT_OVERFLOW = (
        "contract-overflow",
        _I,
        False,
        "a value left the signed 64-bit range",
    )
    DIVISION_BY_ZERO = "division-by-zero", _I, False, "a rule divided by zero"
    TOO_MANY_EFFECTS = (
        "too-many-effects",
        _I,
        False,
        "an invocation buffered more than 1024 transfers or 4 proposals",
    )
    UNKNOWN_INVOCATION = "unknown-invocation", _I, True, "no such contract invocation in the log"
    EXECUTION_MISMATCH = (
        "execution-mismatch",
        _I,
        False,
        "the execution's effects are not what the invocation computed",
    )


def lookup(code: str) -> Code | None:
    """The code named ``code``, or ``None`` for a string that is no refusal code."""
    return Code._value2member_map_.get(code)  # type: ignore[return-value]


def may_clear(code: str) -> bool:
    """True when a later event may lift a refusal with this code (intake parks it)."""
    found = lookup(code)
    return found is not None and found.clears


class Refusal(msgspec.Struct, frozen=True):
    """A node rule says no: a stable ``code`` and a reason a person can act on."""

    code: Code
    reason: str
