"""``icn coop found`` and ``icn member …``: a coop and its membership, as signed events.

Founding is local: the node creates the coop's own key in its keystore
(``coop-<id>``) and signs ``coop.Founded`` with it, so the coop's DID (its
treasury account) is held by the node that serves it. Every membership event
is signed by the key named with ``--key`` and appended locally or posted to a
node (see :mod:`icn.interfaces.cli.writes`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from nacl.signing import SigningKey

from icn.application.queries import coop_of
from icn.domain.coop import bodies as cb
from icn.domain.coop.records import CreditPolicy, CurrencySpec, Policy
from icn.domain.coop.rules import policy_problem
from icn.domain.ledger import bodies as lb
from icn.infrastructure.keystore import Keystore
from icn.infrastructure.passphrase import resolve_passphrase
from icn.interfaces.bootstrap import coop_key_name, keystore_for
from icn.interfaces.cli.common import DataDir, Json, settings_for
from icn.interfaces.cli.members import did_of
from icn.interfaces.cli.writes import (
    Coop,
    Key,
    Refused,
    Url,
    Written,
    check_coop_id,
    local_node,
    ms_of,
    report,
    units_of,
    writer,
)

app = typer.Typer(help="Found a coop (the node keeps the coop's own key).", no_args_is_help=True)
member_app = typer.Typer(
    help="Membership and freezes: apply, admit, roles, suspend, reinstate, exit, freeze.",
    no_args_is_help=True,
)

Member = Annotated[str, typer.Argument(help="The member: a DID, or a key name of this keystore.")]
Roles = Annotated[
    list[str] | None, typer.Option("--role", help="A role (repeat for several), e.g. admin.")
]


# -- found -------------------------------------------------------------------


def _currency(text: str) -> CurrencySpec:
    parts = text.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        raise typer.BadParameter(f"{text!r}: write CODE:UNIT:DECIMALS", param_hint="'--currency'")
    try:
        return msgspec.convert(
            {"code": parts[0], "unit": parts[1], "decimals": int(parts[2])}, CurrencySpec
        )
    except msgspec.ValidationError as exc:
        raise typer.BadParameter(f"{text!r}: {exc}", param_hint="'--currency'") from None


def _founder(keystore: Keystore, text: str) -> cb.FoundingMember:
    who, _, roles = text.partition(":") if not text.startswith("did:") else _split_did(text)
    did = did_of(keystore, who, "'--member'")
    names = [r for r in roles.split(",") if r] if roles else []
    try:
        return msgspec.convert({"did": did, "roles": names}, cb.FoundingMember)
    except msgspec.ValidationError as exc:
        raise typer.BadParameter(f"{text!r}: {exc}", param_hint="'--member'") from None


def _split_did(text: str) -> tuple[str, str, str]:
    """``did:key:z…:admin,mediator`` → the DID and the roles (a DID has exactly two colons)."""
    parts = text.split(":", 3)
    return ":".join(parts[:3]), ":", parts[3] if len(parts) > 3 else ""


def _policy(
    currencies: list[CurrencySpec],
    policy_file: Path | None,
    typed: dict[str, str],
    numbers: dict[str, int],
) -> Policy:
    if policy_file is not None:
        try:
            return msgspec.json.decode(policy_file.read_bytes(), type=Policy)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise typer.BadParameter(
                f"{policy_file}: {exc}", param_hint="'--policy-file'"
            ) from None
    credit = {}
    for spec in currencies:
        amounts = {name: units_of(value, spec, allow_zero=True) for name, value in typed.items()}
        try:
            credit[spec.code] = msgspec.convert({**amounts, **numbers}, CreditPolicy)
        except msgspec.ValidationError as exc:
            raise typer.BadParameter(f"credit policy: {exc}") from None
    return Policy(credit=credit)


@app.command("found")
def found(
    coop: Coop,
    name: Annotated[str, typer.Option("--name", help="The coop's name.", show_default=False)],
    currency: Annotated[
        list[str],
        typer.Option(
            "--currency",
            help="CODE:UNIT:DECIMALS, e.g. hours:hour:2 (repeat for several).",
            show_default=False,
        ),
    ],
    member: Annotated[
        list[str],
        typer.Option(
            "--member",
            help="Founding member: KEYNAME or DID, optionally :role,role (repeat).",
            show_default=False,
        ),
    ],
    baseline: Annotated[
        str, typer.Option("--baseline", help="Credit everyone gets, in the currency's unit.")
    ] = "100",
    max_limit: Annotated[
        str, typer.Option("--max-limit", help="Cap on any credit limit, in the currency's unit.")
    ] = "500",
    initial_limit: Annotated[
        str, typer.Option("--initial-limit", help="A new member's limit on the day of joining.")
    ] = "0",
    ramp_days: Annotated[
        int, typer.Option("--ramp-days", min=0, max=3650, help="Days to reach the full limit.")
    ] = 0,
    history_rate_ppm: Annotated[
        int, typer.Option("--history-rate-ppm", min=0, help="Credit per unit received, in ppm.")
    ] = 0,
    trust_multiplier_ppm: Annotated[
        int, typer.Option("--trust-multiplier-ppm", min=0, help="Trust bonus factor, in ppm.")
    ] = 0,
    policy_file: Annotated[
        Path | None,
        typer.Option(
            "--policy-file",
            exists=True,
            dir_okay=False,
            help="A whole policy as JSON (smallest units), instead of the options above.",
        ),
    ] = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Create the coop's key in the node's keystore and sign coop.Founded with it."""
    check_coop_id(coop)
    key_name = coop_key_name(coop)
    if len(key_name) > 64:
        raise typer.BadParameter("a coop id of at most 59 characters", param_hint="'--coop'")
    currencies = [_currency(c) for c in currency]
    keystore = keystore_for(settings_for(data_dir))
    founders = [_founder(keystore, m) for m in member]
    policy = _policy(
        currencies,
        policy_file,
        {"baseline": baseline, "max_limit": max_limit, "initial_limit": initial_limit},
        {
            "ramp_days": ramp_days,
            "history_rate_ppm": history_rate_ppm,
            "trust_multiplier_ppm": trust_multiplier_ppm,
        },
    )
    try:
        body = msgspec.convert(
            {
                "name": name,
                "currencies": msgspec.to_builtins(currencies),
                "policy": msgspec.to_builtins(policy),
                "members": msgspec.to_builtins(founders),
            },
            cb.Founded,
        )
    except msgspec.ValidationError as exc:
        raise Refused("invalid-body", f"bad coop.Founded: {exc}") from None
    problem = policy_problem(body.policy, {c.code: c for c in body.currencies})
    if problem is not None:
        raise Refused(problem.code, problem.reason)
    with local_node(data_dir) as node:
        if coop_of(node.store, coop) is not None:
            raise Refused("coop-already-founded", f"coop {coop} is already founded here")
        if node.keystore.exists(key_name):
            raise Refused(
                "coop-key-exists",
                f"the keystore already holds a key {key_name!r}; a coop's key is made once",
            )
        key = SigningKey.generate()
        info = node.keystore.create(key_name, resolve_passphrase(confirm=True), seed=bytes(key))
        try:
            events, outcomes = node.author.submit(
                key, coop, [(cb.FOUNDED, msgspec.to_builtins(body))]
            )
        except BaseException:
            Path(info.path).unlink(missing_ok=True)  # signed nothing that was kept
            raise
    written = Written(events[0], outcomes[0].position or 0)
    report(
        json,
        {
            **written.doc(),
            "did": info.did,
            "name": name,
            "currencies": msgspec.to_builtins(currencies),
            "members": msgspec.to_builtins(founders),
        },
        [
            f"founded {coop} ({name}): the coop's DID is {info.did}",
            f"  key {key_name} in the node's keystore; event {written.event.id}",
            f"  {len(founders)} founding member(s), currencies: "
            + ", ".join(f"{c.code} ({c.decimals} decimals)" for c in currencies),
        ],
    )


# -- membership --------------------------------------------------------------


def _write(
    data_dir: Path | None,
    url: str | None,
    coop: str,
    key: str,
    event_type: str,
    body: dict[str, Any],
    json: bool,
    says: str,
) -> None:
    with writer(data_dir, url, coop, key) as w:
        written = w.submit([(event_type, body)])[0]
    report(
        json,
        {**written.doc(), "body": body},
        [f"{says} (event {written.event.id}, position {written.position})"],
    )


def _member_did(data_dir: Path | None, text: str) -> str:
    return did_of(keystore_for(settings_for(data_dir)), text)


@member_app.command("apply")
def apply(
    coop: Coop,
    key: Key,
    note: Annotated[str | None, typer.Option("--note", help="A word to the admins.")] = None,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Apply to join the coop, signed by the applicant's own key."""
    body = {"note": note} if note else {}
    _write(data_dir, url, coop, key, cb.MEMBER_APPLIED, body, json, f"applied to {coop}")


@member_app.command("admit")
def admit(
    member: Member,
    coop: Coop,
    key: Key,
    role: Roles = None,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Admit an applicant (or invite a DID directly); signed by an admin."""
    did = _member_did(data_dir, member)
    body = {"member": did, "roles": role or []}
    _write(data_dir, url, coop, key, cb.MEMBER_ADMITTED, body, json, f"admitted {did} to {coop}")


@member_app.command("roles")
def roles(
    member: Member,
    coop: Coop,
    key: Key,
    role: Roles = None,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Set a member's whole set of roles (no --role: none); signed by an admin."""
    did = _member_did(data_dir, member)
    body = {"member": did, "roles": role or []}
    says = f"{did} now has roles: {', '.join(role or []) or '(none)'}"
    _write(data_dir, url, coop, key, cb.ROLES_ASSIGNED, body, json, says)


@member_app.command("suspend")
def suspend(
    member: Member,
    coop: Coop,
    key: Key,
    reason: Annotated[str, typer.Option("--reason", help="Why.", show_default=False)],
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Suspend a member (no paying, no receiving) until reinstated; signed by an admin."""
    did = _member_did(data_dir, member)
    body = {"member": did, "reason": reason}
    _write(data_dir, url, coop, key, cb.MEMBER_SUSPENDED, body, json, f"suspended {did}")


@member_app.command("reinstate")
def reinstate(
    member: Member,
    coop: Coop,
    key: Key,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Lift a suspension; signed by an admin."""
    did = _member_did(data_dir, member)
    _write(
        data_dir, url, coop, key, cb.MEMBER_REINSTATED, {"member": did}, json, f"reinstated {did}"
    )


@member_app.command("exit")
def exit_(
    coop: Coop,
    key: Key,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (optional).")] = None,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Leave the coop (every balance must be zero); signed by the member who leaves."""
    body = {"reason": reason} if reason else {}
    _write(data_dir, url, coop, key, cb.MEMBER_EXITED, body, json, f"left {coop}")


@member_app.command("freeze")
def freeze(
    member: Member,
    coop: Coop,
    key: Key,
    reason: Annotated[str, typer.Option("--reason", help="Why.", show_default=False)],
    until: Annotated[
        str | None,
        typer.Option("--until", help="End of the freeze: 2026-12-31[T18:00:00Z] or ms."),
    ] = None,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Freeze a member's paying side (they can still receive); signed by an admin."""
    did = _member_did(data_dir, member)
    body: dict[str, Any] = {"member": did, "reason": reason}
    if until is not None:
        body["until"] = ms_of(until, "'--until'")
    says = f"froze {did}'s account" + (f" until {until}" if until else "")
    _write(data_dir, url, coop, key, lb.ACCOUNT_FROZEN, body, json, says)


@member_app.command("unfreeze")
def unfreeze(
    member: Member,
    coop: Coop,
    key: Key,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """End a freeze; signed by an admin."""
    did = _member_did(data_dir, member)
    _write(data_dir, url, coop, key, lb.ACCOUNT_UNFROZEN, {"member": did}, json, f"unfroze {did}")
