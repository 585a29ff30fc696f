"""The rule docs/ledger.md states for adding a field to an existing body (how ``proposal`` came
to ``coop.MemberAdmitted``, ``ledger.AccountFrozen``, ``trust.AttestationRevoked`` …): only an
optional field whose absence means exactly the old meaning, over ids hashed from the bytes as
signed, while any member no release defines is still refused whole."""

from __future__ import annotations

from support.coops import CoopScript
from support.rule_coop import Coop

from icn.domain.coop import bodies as cb
from icn.domain.events.envelope import compute_id, decode_stored, inspect


def test_an_absent_optional_field_keeps_the_old_bytes_id_and_meaning() -> None:
    c = Coop(CoopScript())
    c.ok(c.s.found({"alice": ["admin"], "bob": []}))
    old = c.s.event("alice", cb.MEMBER_ADMITTED, {"member": c.s.did("carol"), "roles": []})
    wire = old.wire_bytes()
    assert b"proposal" not in wire  # written as a release before the field would write it
    stored = decode_stored(wire)
    assert "proposal" not in stored.body  # the hashed body is what was signed: no default added
    assert compute_id(stored.unsigned()) == old.id == inspect(wire).event.id  # type: ignore[union-attr]
    assert inspect(wire).body.proposal is None  # the typed body reads the absence as "none"
    c.ok(old)  # and the rules judge it as before: an admin's admission
    assert c.member("carol").roles == ()

    named = c.s.event(
        "alice", cb.MEMBER_ADMITTED, {"member": c.s.did("dan"), "roles": [], "proposal": None}
    )
    assert b'"proposal":null' in named.wire_bytes()  # null is a present member: other bytes
    c.ok(named)

    unknown = c.s.event(
        "alice", cb.MEMBER_ADMITTED, {"member": c.s.did("erin"), "roles": [], "colour": "red"}
    )
    assert c.refused(unknown) == "invalid-body"  # never half-applied
