"""The pure side of compute: host range checks, fees, the binary's layout, the ABI judgement."""

from __future__ import annotations

import msgspec
import pytest

from icn.domain.compute.abi import HOST_CALL_FUEL, Outcome, host_call_fuel, range_fault
from icn.domain.compute.bodies import ModuleStored
from icn.domain.compute.fees import charged_fuel, fee
from icn.domain.compute.modules import Declared, Extern, judge
from icn.domain.compute.sections import Layout, layout
from icn.domain.refusals import Code

HEADER = b"\x00asm\x01\x00\x00\x00"
RUN = Extern("", "run", "func", signature=((), ("i32",)))
MEMORY = Extern("", "memory", "memory", min_pages=1)
NO_SECTIONS = Layout(start=False, tables=0, memories=1)


@pytest.mark.parametrize(
    ("ptr", "length", "fault"),
    [
        (0, 0, None),
        (0, 65536, None),
        (65536, 0, None),
        (65535, 2, "range past the end of memory"),
        (-1, 1, "negative pointer"),
        (0, -1, "negative length"),
        (2**31 - 1, 2**31 - 1, "range past the end of memory"),
    ],
)
def test_a_host_range_is_inside_memory_or_faulted(ptr: int, length: int, fault: str | None) -> None:
    assert range_fault(ptr, length, 65536) == fault


def test_host_calls_charge_a_fixed_part_and_one_per_started_8_bytes() -> None:
    assert host_call_fuel(0) == HOST_CALL_FUEL
    assert host_call_fuel(1) == host_call_fuel(8) == HOST_CALL_FUEL + 1
    assert host_call_fuel(9) == HOST_CALL_FUEL + 2


def test_the_fee_rounds_up_and_stops_at_the_maximum() -> None:
    assert fee(charged_fuel(Outcome.OK, 1_001, 10_000), 1_000, 50) == 2
    assert fee(charged_fuel(Outcome.OK, 1_000, 10_000), 1_000, 50) == 1
    assert fee(0, 1_000, 50) == 0
    assert fee(10**9, 1_000, 50) == 50


def test_a_trap_or_running_out_is_charged_the_whole_limit() -> None:
    assert charged_fuel(Outcome.TRAP, 12, 10_000) == 10_000
    assert charged_fuel(Outcome.OUT_OF_FUEL, 10_000, 10_000) == 10_000
    with pytest.raises(ValueError):
        fee(1, 0, 1)


def test_the_layout_reads_start_tables_and_memories() -> None:
    # type section (one func type), table section (2 tables), memory (1), start (func 0)
    sections = (
        b"\x01\x04\x01\x60\x00\x00"
        + b"\x04\x07\x02\x70\x00\x01\x70\x00\x01"
        + b"\x05\x03\x01\x00\x01"
        + b"\x08\x01\x00"
    )
    assert layout(HEADER + sections) == Layout(start=True, tables=2, memories=1)
    assert layout(HEADER) == Layout(start=False, tables=0, memories=0)


@pytest.mark.parametrize(
    "binary",
    [
        b"",
        b"\x00asm\x02\x00\x00\x00",
        HEADER + b"\x01\x05\x00",
        HEADER + b"\x01\xff\xff\xff\xff\xff",
    ],
)
def test_the_layout_refuses_what_is_no_module(binary: bytes) -> None:
    with pytest.raises(ValueError):
        layout(binary)


def test_judging_follows_the_abi() -> None:
    ok = Declared(imports=(), exports=(MEMORY, RUN), layout=NO_SECTIONS)
    assert judge(ok) is None
    read = Extern("icn", "input_read", "func", signature=(("i32", "i32"), ("i32",)))
    assert judge(Declared(imports=(read,), exports=(RUN, MEMORY), layout=NO_SECTIONS)) is None
    twice = Declared(imports=(), exports=(MEMORY, RUN, RUN), layout=NO_SECTIONS)
    assert (refusal := judge(twice)) is not None and refusal.code is Code.MODULE_EXPORTS
    started = Declared(imports=(), exports=(MEMORY, RUN), layout=Layout(True, 0, 1))
    assert (refusal := judge(started)) is not None and refusal.code is Code.MODULE_START_FUNCTION


def test_a_module_stored_body_names_a_hash_a_size_and_abi_imports() -> None:
    body = {"hash": "ab" * 32, "size": 120, "imports": ["icn.input_len"]}
    assert msgspec.convert(body, ModuleStored).size == 120
    for bad in (
        {**body, "hash": "AB" * 32},
        {**body, "size": 4 * 1024 * 1024 + 1},
        {**body, "imports": ["wasi_snapshot_preview1.fd_write"]},
        {**body, "extra": 1},
    ):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(bad, ModuleStored)
