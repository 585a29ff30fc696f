"""Module bytes kept by hash in the node's data directory, one folder per coop.

The log holds only ``compute.ModuleStored`` (hash, size, imports); the bytes a
task runs live here, written once under their BLAKE3 and checked against it
whenever they are read, so a file changed on disk is never served or run.
Writes go to a temporary file renamed into place: a reader sees the whole
module or none.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from icn.infrastructure.compute.modules import module_hash

HASH = re.compile(r"^[0-9a-f]{64}$")
COOP = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


class ModuleStore:
    """Binary modules by (coop, hash) under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, coop: str, hash_: str) -> Path:
        if not COOP.match(coop) or not HASH.match(hash_):
            raise ValueError("a coop id and a lower-case hex BLAKE3 name a module")
        return self.root / coop / f"{hash_}.wasm"

    def get(self, coop: str, hash_: str) -> bytes | None:
        """The module's binary, or ``None`` when not held here or no longer matching its hash."""
        try:
            data = self._path(coop, hash_).read_bytes()
        except FileNotFoundError:
            return None
        return data if module_hash(data) == hash_ else None

    def coops(self) -> list[str]:
        """The coops this node keeps modules of."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and COOP.match(p.name))

    def hashes(self, coop: str) -> list[str]:
        """The hashes of the modules kept for ``coop`` (by file name; :meth:`get` checks)."""
        self._path(coop, "0" * 64)  # a valid coop id, or ValueError
        folder = self.root / coop
        if not folder.is_dir():
            return []
        names = (p.name.removesuffix(".wasm") for p in folder.glob("*.wasm"))
        return sorted(h for h in names if HASH.match(h))

    def put(self, coop: str, binary: bytes) -> str:
        """Keep ``binary`` under its hash (once: a second put of the same bytes changes nothing)."""
        hash_ = module_hash(binary)
        path = self._path(coop, hash_)
        if self.get(coop, hash_) is not None:
            return hash_
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(binary)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return hash_


def module_store(data_dir: Path) -> ModuleStore:
    """The node's module store in ``data_dir``."""
    return ModuleStore(data_dir / "modules")
