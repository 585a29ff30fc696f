"""The governance domains projection as a pure function: one row per domain definition or
change, the rules as their canonical JSON, nothing for any other event."""

from __future__ import annotations

from support.coops import CoopScript

from icn.domain.events.canonical import canonical_bytes
from icn.domain.governance import bodies as gb
from icn.projections.catalogue import PROJECTIONS
from icn.projections.governance import DOMAINS, GOVERNANCE_PROJECTIONS, Domains
from icn.projections.ports import Changes
from icn.projections.runner import plan_batch


def test_each_domain_definition_and_change_writes_one_row_and_nothing_else_does() -> None:
    s = CoopScript("demo")
    founded = s.found({"alice": ["admin"], "bob": []})
    sealed = {"sealed": True, "veto_roles": ["admin"]}
    defined = s.event("coop", gb.DOMAIN_DEFINED, {"domain": "council", "rules": sealed})
    changed_rules = {**sealed, "quorum_ppm": 250_000}
    changed = s.event(
        "coop",
        gb.DOMAIN_CHANGED,
        {"domain": "council", "rules": changed_rules, "proposal": "ab" * 32},
    )
    root = s.event("coop", gb.DOMAIN_CHANGED, {"domain": "root", "rules": {"quorum_ppm": 1}})
    pay = s.pay("alice", "bob", 100)
    events = list(enumerate([founded, defined, changed, root, pay]))
    _, changes = plan_batch("demo", events, GOVERNANCE_PROJECTIONS, {}, {})
    assert changes.rows[DOMAINS.name] == [
        ("demo", "council", 1, defined.id, "defined", None, canonical_bytes(sealed).decode(),
         defined.ts),
        ("demo", "council", 2, changed.id, "changed", "ab" * 32,
         canonical_bytes(changed_rules).decode(), changed.ts),
        ("demo", "root", 3, root.id, "changed", None, '{"quorum_ppm":1}', root.ts),
    ]  # fmt: skip
    assert any(isinstance(p, Domains) for p in PROJECTIONS)  # icn replay rebuilds it
    assert len({p.name for p in PROJECTIONS}) == len(PROJECTIONS)
    empty = Changes()
    Domains().apply(4, pay, empty)
    Domains().apply(0, founded, empty)
    assert len(empty) == 0
