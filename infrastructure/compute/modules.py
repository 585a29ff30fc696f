"""Module intake: uploaded bytes (binary, or WAT for convenience) to a stored module or a refusal.

A module is hashed as the binary it is (WAT is converted first, so a text upload
and its binary are one module), validated by the task engine, and then judged
against the ABI by :func:`icn.domain.compute.modules.judge`. A module that only
a permissive engine validates uses a feature tasks may not (SIMD, threads …):
that is ``module-feature-forbidden``, so an author learns what to switch off
rather than that the bytes are broken.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import wasmtime
from blake3 import blake3

from icn.domain.compute.abi import MAX_MODULE_BYTES, Signature
from icn.domain.compute.bodies import ModuleStored
from icn.domain.compute.modules import Declared, Extern, import_names, judge
from icn.domain.compute.sections import MAGIC, layout
from icn.domain.refusals import Code, Refusal
from icn.infrastructure.compute.engine import permissive_config
from icn.infrastructure.compute.sandbox import Compiled, Sandbox

MAX_TEXT_BYTES = 4 * MAX_MODULE_BYTES
"""A WAT upload's size before conversion: text is a few times larger than its binary."""


@dataclass(frozen=True)
class StoredModule:
    """A module that passed intake: its binary, hash and size, and the compiled form."""

    binary: bytes
    hash: str
    imports: list[str]
    compiled: Compiled

    @property
    def size(self) -> int:
        """The binary's size in bytes."""
        return len(self.binary)

    def body(self) -> ModuleStored:
        """The ``compute.ModuleStored`` body that records it."""
        return ModuleStored(hash=self.hash, size=self.size, imports=self.imports)  # type: ignore[arg-type]


def module_hash(binary: bytes) -> str:
    """A module's id: BLAKE3 of its binary form, lower-case hex."""
    return blake3(binary).hexdigest()


@cache
def _permissive_engine() -> wasmtime.Engine:
    return wasmtime.Engine(permissive_config())


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def to_binary(data: bytes) -> bytes | Refusal:
    """``data`` as a binary module: itself, or the WAT text it holds converted."""
    if data[:4] == MAGIC:
        return data
    if len(data) > MAX_TEXT_BYTES:
        return Refusal(Code.MODULE_TOO_LARGE, f"a WAT upload is over {MAX_TEXT_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return Refusal(Code.MODULE_INVALID, "neither a WebAssembly binary nor UTF-8 WAT text")
    try:
        return bytes(wasmtime.wat2wasm(text))
    except wasmtime.WasmtimeError as exc:
        return Refusal(Code.MODULE_INVALID, f"the WAT text does not parse: {_first_line(exc)}")


def _signature(ty: wasmtime.FuncType) -> Signature:
    return tuple(str(p) for p in ty.params), tuple(str(r) for r in ty.results)


def _extern(module: str, name: str, ty: object) -> Extern:
    if isinstance(ty, wasmtime.FuncType):
        return Extern(module, name, "func", signature=_signature(ty))
    if isinstance(ty, wasmtime.MemoryType):
        return Extern(module, name, "memory", min_pages=ty.limits.min)
    if isinstance(ty, wasmtime.TableType):
        return Extern(module, name, "table")
    if isinstance(ty, wasmtime.GlobalType):
        return Extern(module, name, "global")
    return Extern(module, name, "tag")


def declared(binary: bytes, compiled: wasmtime.Module) -> Declared:
    """What a compiled module declares that the ABI constrains."""
    return Declared(
        imports=tuple(_extern(i.module, i.name or "", i.type) for i in compiled.imports),
        exports=tuple(_extern("", e.name, e.type) for e in compiled.exports),
        layout=layout(binary),
    )


def intake(
    data: bytes, sandbox: Sandbox, expected_hash: str | None = None
) -> StoredModule | Refusal:
    """Judge uploaded ``data`` for the ``sandbox``'s engine: the module to store, or why not.

    ``expected_hash``: the hash the uploader named the bytes by, if any.
    """
    binary = to_binary(data)
    if isinstance(binary, Refusal):
        return binary
    if len(binary) > MAX_MODULE_BYTES:
        return Refusal(Code.MODULE_TOO_LARGE, f"the binary is over {MAX_MODULE_BYTES} bytes")
    digest = module_hash(binary)
    if expected_hash is not None and expected_hash != digest:
        return Refusal(Code.MODULE_HASH_MISMATCH, f"the bytes hash to {digest}, not the hash given")
    try:
        wasmtime.Module.validate(sandbox.engine, binary)
    except wasmtime.WasmtimeError as exc:
        try:
            wasmtime.Module.validate(_permissive_engine(), binary)
        except wasmtime.WasmtimeError:
            return Refusal(Code.MODULE_INVALID, f"does not validate: {_first_line(exc)}")
        return Refusal(Code.MODULE_FEATURE_FORBIDDEN, _first_line(exc))
    compiled = sandbox.compile(binary)
    facts = declared(binary, compiled.module)
    refusal = judge(facts)
    if refusal is not None:
        return refusal
    return StoredModule(binary=binary, hash=digest, imports=import_names(facts), compiled=compiled)
