"""``icn contract``: put a contract to the vote, invoke a rule of a deployed one, show one.

A contract is deployed only by an accepted proposal: ``deploy`` reads a deploy
document (``name``, ``version``, ``capabilities``, ``fuel_limit``, ``code``, as
in ``examples/contracts/``), checks it here as the node will (so a typo never
reaches a vote), and signs the ``governance.ProposalSubmitted`` whose
``deploy-contract`` action carries it. ``invoke`` signs a ``contract.Invoked``;
the node runs the rule where the event lands and refuses it with the
contract's code (``requirement-failed``, ``out-of-fuel`` …) or accepts it, and
the coop's DID then carries its effects out. ``show`` reads what
``GET …/contracts/{name}`` answers, from the local store: the latest
invocations, each with its fate and the proposals its ``propose`` opened.
"""

from __future__ import annotations

import json as jsonlib
import re
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer

from icn.domain.contract import bodies as cb
from icn.domain.contract.compile import deploy_check
from icn.domain.contract.runtime import ContractError
from icn.domain.governance import bodies as gb
from icn.infrastructure.store.contract_reads import SqlContractReads
from icn.infrastructure.store.read_models import ReadSide
from icn.interfaces.bootstrap import catch_up_reads, clock_ms, open_node
from icn.interfaces.cli.common import DataDir, Json, out, print_json, settings_for
from icn.interfaces.cli.governance import MARGIN_MS, Domain, span_ms
from icn.interfaces.cli.writes import Coop, Key, Refused, Url, check_coop_id, report, writer
from icn.projections import contract_views as views

app = typer.Typer(
    name="contract", no_args_is_help=True, help="Deploy contracts by vote and invoke their rules."
)

DEPLOY_FIELDS = ("name", "version", "capabilities", "fuel_limit", "code")
_INT = re.compile(r"-?\d{1,19}")


def _deploy_document(path: Path) -> dict[str, Any]:
    """The deploy document at ``path``, checked as the node checks a deploy."""
    try:
        doc = jsonlib.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"{path}: {exc}", param_hint="'FILE'") from None
    if not isinstance(doc, dict) or sorted(doc) != sorted(DEPLOY_FIELDS):
        raise typer.BadParameter(
            f"a JSON object with exactly {', '.join(DEPLOY_FIELDS)}", param_hint="'FILE'"
        )
    caps = doc["capabilities"]
    if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
        raise typer.BadParameter("capabilities: a list of names", param_hint="'FILE'")
    try:
        deploy_check(doc["code"], caps)
    except ContractError as exc:
        raise Refused(exc.code, exc.reason) from None
    return doc


@app.command("deploy")
def deploy(
    file: Annotated[Path, typer.Argument(help="The deploy document (JSON).")],
    coop: Coop,
    key: Key,
    title: Annotated[str | None, typer.Option("--title", help="One line (200 characters).")] = None,
    text: Annotated[str, typer.Option("--text", help="Why: the proposal's text.")] = "",
    domain: Domain = "root",
    closes_in: Annotated[
        str, typer.Option("--closes-in", help="Voting period from now: 7d, 36h, 90m.")
    ] = "7d",
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Open the proposal that deploys a contract: a governance.ProposalSubmitted whose
    deploy-contract action carries FILE's name, version, capabilities, fuel limit and code."""
    doc = _deploy_document(file)
    period = span_ms(closes_in)
    action = {"kind": "deploy-contract", **{k: doc[k] for k in DEPLOY_FIELDS}}
    with writer(data_dir, url, coop, key) as w:
        body = {
            "domain": domain,
            "title": title or f"Deploy contract {doc['name']} version {doc['version']}",
            "text": text,
            "action": action,
            "closes_at": clock_ms() + period + MARGIN_MS,
        }
        written = w.submit([(gb.PROPOSAL_SUBMITTED, body)])[0]
    report(
        json,
        {**written.doc(), "proposal": written.event.id, "closes_at": body["closes_at"]},
        [f"proposal {written.event.id}: {body['title']} (closes at {body['closes_at']})"],
    )


def _arg_value(text: str) -> int | bool | str:
    """``12`` → int, ``true``/``false`` → bool, anything else (a DID, a currency) → str."""
    if _INT.fullmatch(text):
        return int(text)
    if text in ("true", "false"):
        return text == "true"
    return text


def parse_args(pairs: list[str]) -> dict[str, int | bool | str]:
    """``k=v`` pairs as the invocation's arguments; a name twice is wrong usage."""
    args: dict[str, int | bool | str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="'--arg'")
        if name in args:
            raise typer.BadParameter(f"{name} given twice", param_hint="'--arg'")
        args[name] = _arg_value(value)
    return args


@app.command("invoke")
def invoke(
    name: Annotated[str, typer.Argument(help="The contract's name.")],
    rule: Annotated[str, typer.Argument(help="The rule to run.")],
    coop: Coop,
    key: Key,
    arg: Annotated[
        list[str] | None,
        typer.Option("--arg", help="NAME=VALUE (repeatable): 3 an int, true a bool, else text."),
    ] = None,
    url: Url = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Run a rule of a deployed contract: sign contract.Invoked. Refused with the contract's
    code, or accepted (the coop's DID then signs its effects and contract.Executed)."""
    body = {"contract": name, "rule": rule, "args": parse_args(arg or [])}
    with writer(data_dir, url, coop, key) as w:
        written = w.submit([(cb.INVOKED, body)])[0]
    report(
        json,
        {**written.doc(), "invocation": written.event.id, **body},
        [f"invocation {written.event.id}: {name}.{rule} accepted"],
    )


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="The contract's name.")],
    coop: Coop,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """A deployed contract from the local store: its current version and its latest
    invocations (newest first), each with its state, fuel and the proposals it opened."""
    check_coop_id(coop)
    node = open_node(settings_for(data_dir))
    side = ReadSide(node.store)
    try:
        catch_up_reads(node, side, coop)
        detail = views.contract(SqlContractReads(node.store.engine), coop, name)
    finally:
        side.close()
        node.close()
    if json:
        print_json(msgspec.to_builtins(detail))
        return
    v = detail.current
    out.print(
        f"{detail.name} version {v.version}: {', '.join(v.capabilities)}; fuel limit"
        f" {v.fuel_limit}; rules {', '.join(v.rules)}; {detail.invocations} invocations",
        markup=False,
    )
    for i in detail.recent:
        code = f" ({i.code})" if i.code else ""
        fuel = f", fuel {i.fuel}" if i.fuel is not None else ""
        out.print(f"{i.id}  {i.rule}  {i.state}{code}{fuel}  by {i.caller}", markup=False)
        for p in i.proposals:
            done = f", {p.execution}" if p.execution else ""
            out.print(
                f"  opened proposal {p.id}  {p.state}{done}  closes at {p.closes_at}  {p.title}",
                markup=False,
            )
