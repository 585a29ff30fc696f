"""Display names: only the member names themselves, and a name cannot hide or reorder text."""

from __future__ import annotations

import pytest
from support.coops import CoopScript
from support.rule_coop import Coop

from icn.domain.coop.names import MAX_NAME_BYTES, MAX_NAME_CHARS, name_problem, normalise

NAMED = "coop.ProfileUpdated"


@pytest.fixture
def coop() -> Coop:
    c = Coop(CoopScript())
    c.ok(c.s.found({"alice": ["admin"], "bob": []}))
    return c


def named(c: Coop, who: str, name: str) -> object:
    return c.s.event(who, NAMED, {"display_name": name}, advance=False)


def test_a_member_names_themselves_and_nobody_else_can(coop: Coop) -> None:
    coop.ok(coop.s.event("bob", NAMED, {"display_name": "Bob Ödegaard"}))
    coop.ok(coop.s.event("bob", NAMED, {"display_name": "Bob"}))  # names change
    # The body names nobody: an admin (or the coop's DID) cannot label bob.
    labels_bob = {"display_name": "x", "member": coop.s.did("bob")}
    assert coop.refused(coop.s.event("alice", NAMED, labels_bob, advance=False)) == "invalid-body"
    assert coop.refused(named(coop, "coop", "Treasury")) == "not-a-member"
    assert coop.refused(named(coop, "mallory", "Alice")) == "not-a-member"
    coop.ok(coop.s.event("mallory", "coop.MemberApplied", {}))
    assert coop.refused(named(coop, "mallory", "Alice")) == "not-a-member"  # applied, not in


def test_a_name_that_hides_or_reorders_text_is_refused(coop: Coop) -> None:
    for bad in [
        "",
        "x" * (MAX_NAME_CHARS + 1),
        "\U0001f600" * MAX_NAME_CHARS + "",  # 64 characters, 256 bytes: allowed (below)
        "Alice\u202eecilA",  # right-to-left override
        "Ali\u200bce",  # zero-width space
        "Ali\u200dce",  # zero-width joiner
        "Alice\u2066x\u2069",  # isolate
        "Ali\u00adce",  # soft hyphen
        "Ali\nce",
        "Ali\u2028ce",
        "Alice\u00a0B",  # no-break space
        " Alice",
        "Alice ",
        "Ali  ce",
        "Cafe\u0301",  # not NFC (NFC composes é)
        "\u0301Alice",
        "Za\u0300\u0301\u0302\u0303lgo",
        "\ue000",  # private use
        "\U000e0041",  # tag character
    ]:
        problem = name_problem(bad)
        if bad == "\U0001f600" * MAX_NAME_CHARS:
            assert problem is None and len(bad.encode()) == MAX_NAME_BYTES
            continue
        assert problem, repr(bad)
    assert coop.refused(named(coop, "bob", "Bob\u202e")) == "invalid-name"
    assert coop.refused(named(coop, "bob", "B" * 65)) == "invalid-body"  # the body's own limit


def test_names_in_any_script_pass_and_the_cli_normalises_before_signing() -> None:
    for good in [
        "Alice",
        "Zoë Ng",
        "Nguyễn Thị Minh Khai",
        "李小龍",
        "देवनागरी",
        "José-María O'Neil",
    ]:
        assert name_problem(good) is None, good
    assert normalise("  Cafe\u0301   au  lait ") == "Café au lait"
    assert name_problem(normalise("Cafe\u0301")) is None
