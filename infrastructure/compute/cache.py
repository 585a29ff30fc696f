"""Compiled modules kept on this node's disk, and never loaded without proof they are ours.

``Module.deserialize`` runs whatever machine code the bytes hold, so a cache
entry is loaded only if it carries this node's MAC: BLAKE3 keyed with a
secret made here (``cache.key``, 0600, in the cache directory), over the
entry's key and the artifact. An entry that fails the check (tampered, torn,
or written with another secret) is refused, removed and recompiled from the
module's binary; bytes received from anywhere else are never deserialized.
Entries are keyed by (module hash, wasmtime version, engine settings digest),
so an upgrade or a settings change simply misses the old entries.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

import wasmtime
from blake3 import blake3

from icn.infrastructure.compute.engine import WASMTIME_VERSION
from icn.infrastructure.compute.modules import module_hash
from icn.infrastructure.compute.sandbox import Compiled, Sandbox

log = logging.getLogger(__name__)

KEY_FILE = "cache.key"
SUFFIX = ".cwasm"
MAC_BYTES = 32


class CompiledModuleCache:
    """Compiled modules for one sandbox's engine, under ``directory`` (0700, files 0600)."""

    def __init__(self, directory: Path, sandbox: Sandbox) -> None:
        self.directory = Path(directory)
        self.sandbox = sandbox
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        self._secret = self._load_secret()
        self._settings_digest = sandbox.settings.digest()
        self.refused = 0
        """Entries refused by the integrity check since this cache was opened."""
        self.hits = 0
        """Modules loaded from an entry that proved ours."""
        self.compiled = 0
        """Modules compiled because no good entry was there."""

    def _load_secret(self) -> bytes:
        """This node's cache key, made on first use. It is written whole to a temporary
        file and linked into place, so a second process opening the cache at the same
        moment reads the winner's key, never a half-written one."""
        path = self.directory / KEY_FILE
        for _ in range(3):
            try:
                secret = path.read_bytes()
            except FileNotFoundError:
                pass
            else:
                if len(secret) == 32:
                    return secret
                log.warning("compiled-module cache key is damaged; making a new one")
                path.unlink(missing_ok=True)
            tmp = self._private_file(path, secret := secrets.token_bytes(32))
            try:
                os.link(tmp, path)
            except FileExistsError:
                continue  # another process made it first: read theirs
            finally:
                tmp.unlink()
            return secret
        raise RuntimeError(f"cannot settle the compiled-module cache key in {self.directory}")

    @staticmethod
    def _private_file(beside: Path, content: bytes) -> Path:
        """A new 0600 file next to ``beside`` holding ``content``."""
        tmp = beside.with_name(f".{beside.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        return tmp

    def key(self, hash_: str) -> str:
        """The entry name for a module: its hash, the wasmtime version and the settings."""
        return blake3(f"{hash_}\0{WASMTIME_VERSION}\0{self._settings_digest}".encode()).hexdigest()

    def path(self, hash_: str) -> Path:
        """Where the compiled form of module ``hash_`` is kept."""
        return self.directory / f"{self.key(hash_)}{SUFFIX}"

    def _mac(self, key: str, artifact: bytes) -> bytes:
        return blake3(key.encode() + b"\0" + artifact, key=self._secret).digest()

    def load(self, hash_: str, binary: bytes) -> Compiled:
        """Module ``hash_`` compiled: from the cache when its entry proves ours, else from
        ``binary`` (which must hash to ``hash_``), then kept for next time."""
        key = self.key(hash_)
        path = self.directory / f"{key}{SUFFIX}"
        cached = self._read(key, path)
        if cached is not None:
            self.hits += 1
            return cached
        if module_hash(binary) != hash_:
            raise ValueError("the module's bytes do not hash to its hash")
        compiled = self.sandbox.compile(binary)
        self.compiled += 1
        self._write(key, path, bytes(compiled.module.serialize()))
        return compiled

    def _read(self, key: str, path: Path) -> Compiled | None:
        try:
            entry = path.read_bytes()
        except FileNotFoundError:
            return None
        mac, artifact = entry[:MAC_BYTES], entry[MAC_BYTES:]
        if len(entry) > MAC_BYTES and hmac.compare_digest(mac, self._mac(key, artifact)):
            try:
                return self.sandbox.deserialize(artifact)
            except wasmtime.WasmtimeError:
                pass  # ours but not for this engine (cannot happen unless the key misses a setting)
        self.refused += 1
        log.warning("compiled-module cache entry %s failed its check; recompiling", path.name)
        path.unlink(missing_ok=True)
        return None

    def _write(self, key: str, path: Path, artifact: bytes) -> None:
        tmp = self._private_file(path, self._mac(key, artifact) + artifact)
        os.replace(tmp, path)
