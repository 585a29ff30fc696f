"""The compute rules as pure functions: stored modules and registered executors."""

from __future__ import annotations

from typing import Any

import pytest
from support.coops import CoopScript
from support.rule_coop import Coop

from icn.domain.compute import state
from icn.domain.compute.records import ExecutorRecord, ModuleRecord
from icn.domain.events.envelope import Event

HASH = "ab" * 32


@pytest.fixture
def coop() -> Coop:
    c = Coop(CoopScript())
    c.ok(c.s.found({"alice": ["admin"], "bob": [], "carol": []}))
    return c


def stored(c: Coop, who: str = "bob", advance: bool = True, **body: Any) -> Event:
    fields = {"hash": HASH, "size": 120, "imports": ["icn.input_len", "icn.output_write"]}
    return c.s.event(who, "compute.ModuleStored", {**fields, **body}, advance=advance)


def registered(c: Coop, who: str = "alice", advance: bool = True, **body: Any) -> Event:
    fields = {"node": c.s.did("node-1"), "cpu_millis": 2000, "memory_mib": 1024, "region": "eu-1"}
    return c.s.event(who, "compute.ExecutorRegistered", {**fields, **body}, advance=advance)


def test_a_member_stores_a_module_once(coop: Coop) -> None:
    event = stored(coop)
    coop.ok(event)
    assert state.module(coop.state, coop.s.coop, HASH) == ModuleRecord(
        hash=HASH,
        size=120,
        imports=["icn.input_len", "icn.output_write"],
        stored_by=coop.s.did("bob"),
        event=event.id,
    )
    assert coop.refused(stored(coop, "carol", advance=False)) == "module-exists"
    assert state.module(coop.state, coop.s.coop, HASH) is not None


def test_only_an_active_member_stores_a_module(coop: Coop) -> None:
    assert coop.refused(stored(coop, "mallory", advance=False)) == "not-a-member"


@pytest.mark.parametrize(
    "body",
    [
        {"imports": ["icn.output_write", "icn.input_len"]},  # not sorted
        {"imports": ["icn.input_len", "icn.input_len"]},  # twice
        {"imports": ["wasi_snapshot_preview1.fd_write"]},
        {"hash": "xyz"},
        {"size": 0},
        {"size": 4 * 1024 * 1024 + 1},
    ],
)
def test_a_module_body_in_any_other_form_is_refused(coop: Coop, body: dict[str, Any]) -> None:
    assert coop.refused(stored(coop, advance=False, **body)) == "invalid-body"


def test_an_admin_registers_an_executor_and_a_later_registration_replaces_it(
    coop: Coop,
) -> None:
    coop.ok(registered(coop))
    again = registered(coop, "coop", cpu_millis=4000, region="eu-2")
    coop.ok(again)
    node = coop.s.did("node-1")
    assert state.executor(coop.state, coop.s.coop, node) == ExecutorRecord(
        node=node, cpu_millis=4000, memory_mib=1024, region="eu-2", event=again.id
    )
    coop.ok(registered(coop, node=coop.s.did("node-0")))
    assert [e.node for e in state.executors(coop.state, coop.s.coop)] == sorted(
        [node, coop.s.did("node-0")]
    )


def test_only_an_admin_or_the_coop_registers_an_executor(coop: Coop) -> None:
    assert coop.refused(registered(coop, "bob", advance=False)) == "not-authorized"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"node": "not-a-did"}, "invalid-executor"),
        ({"cpu_millis": 0}, "invalid-body"),
        ({"memory_mib": -1}, "invalid-body"),
        ({"region": "EU West"}, "invalid-body"),
        ({"extra": 1}, "invalid-body"),
    ],
)
def test_a_bad_executor_body_is_refused(coop: Coop, body: dict[str, Any], code: str) -> None:
    assert coop.refused(registered(coop, advance=False, **body)) == code
