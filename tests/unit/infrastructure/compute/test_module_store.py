"""Module bytes by hash: kept once, re-hashed on every read, scoped to a coop."""

from __future__ import annotations

from pathlib import Path

import pytest

from icn.infrastructure.compute.modules import module_hash
from icn.infrastructure.compute.store import ModuleStore

BYTES = b"\x00asm\x01\x00\x00\x00"


def test_bytes_come_back_by_hash_within_their_coop_only(tmp_path: Path) -> None:
    store = ModuleStore(tmp_path)
    h = store.put("food", BYTES)
    assert h == module_hash(BYTES)
    assert store.put("food", BYTES) == h
    assert store.get("food", h) == BYTES
    assert store.get("bike", h) is None
    assert store.get("food", "00" * 32) is None


def test_a_file_changed_on_disk_is_never_served(tmp_path: Path) -> None:
    store = ModuleStore(tmp_path)
    h = store.put("food", BYTES)
    (tmp_path / "food" / f"{h}.wasm").write_bytes(BYTES + b"\x00")
    assert store.get("food", h) is None


@pytest.mark.parametrize(
    ("coop", "hash_"), [("../x", "ab" * 32), ("food", "../../etc"), ("food", "AB" * 32)]
)
def test_names_that_could_leave_the_store_are_refused(
    tmp_path: Path, coop: str, hash_: str
) -> None:
    with pytest.raises(ValueError):
        ModuleStore(tmp_path).get(coop, hash_)
