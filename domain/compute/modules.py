"""What an uploaded module must be to be stored: the judgement, apart from the compiler.

The infrastructure compiles the bytes with the sandbox's engine and hands over
what it declares (:class:`Declared`); this decides, with a refusal code a
client can act on, whether it is a task under the ABI (docs/spec/compute-abi-v1.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from icn.domain.compute.abi import (
    EXPORTS,
    IMPORTS,
    MAX_MEMORY_PAGES,
    MEMORY,
    NAMESPACE,
    RUN,
    RUN_SIGNATURE,
    Signature,
)
from icn.domain.compute.sections import Layout
from icn.domain.refusals import Code, Refusal


@dataclass(frozen=True)
class Extern:
    """An import or export: its names, its kind (``func``, ``memory``, ``table``, ``global``,
    ``tag``), a function's signature, a memory's initial pages."""

    module: str
    name: str
    kind: str
    signature: Signature | None = None
    min_pages: int = 0


@dataclass(frozen=True)
class Declared:
    """Everything a module declares that the ABI constrains."""

    imports: tuple[Extern, ...]
    exports: tuple[Extern, ...]
    layout: Layout


def judge(declared: Declared) -> Refusal | None:
    """``None`` when the module is a task under ABI v1, else why not."""
    if declared.layout.start:
        return Refusal(Code.MODULE_START_FUNCTION, "a task module may not have a start function")
    for imp in declared.imports:
        wanted = IMPORTS.get(imp.name) if imp.module == NAMESPACE else None
        if imp.kind != "func" or wanted is None:
            return Refusal(
                Code.MODULE_IMPORT_FORBIDDEN,
                f"imports {imp.module}.{imp.name} ({imp.kind}): only the icn functions "
                f"{', '.join(sorted(IMPORTS))} may be imported",
            )
        if imp.signature != wanted:
            return Refusal(
                Code.MODULE_IMPORT_FORBIDDEN,
                f"imports {imp.module}.{imp.name} with the signature {imp.signature}, "
                f"the ABI's is {wanted}",
            )
    if declared.layout.tables > 1:
        return Refusal(Code.MODULE_FEATURE_FORBIDDEN, "a task module has at most one table")
    names = {exp.name: exp for exp in declared.exports}
    memory, run = names.get(MEMORY), names.get(RUN)
    if (
        set(names) != EXPORTS
        or len(declared.exports) != len(EXPORTS)
        or memory is None
        or memory.kind != "memory"
        or run is None
        or run.kind != "func"
        or run.signature != RUN_SIGNATURE
    ):
        found = ", ".join(f"{e.name} ({e.kind})" for e in declared.exports) or "nothing"
        return Refusal(
            Code.MODULE_EXPORTS,
            f"a task module exports exactly memory and run() -> i32; this one exports {found}",
        )
    if memory.min_pages > MAX_MEMORY_PAGES:
        return Refusal(
            Code.MODULE_MEMORY_TOO_LARGE,
            f"memory starts at {memory.min_pages} pages of 64 KiB, "
            f"over {MAX_MEMORY_PAGES} (64 MiB)",
        )
    return None


def import_names(declared: Declared) -> list[str]:
    """The ``compute.ModuleStored`` body's ``imports``: ``icn.<name>``, sorted, once each."""
    return sorted({f"{imp.module}.{imp.name}" for imp in declared.imports})
