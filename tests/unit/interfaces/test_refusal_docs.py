"""The docs' refusal code tables are the vocabulary's, so no code ships undocumented."""

from __future__ import annotations

from pathlib import Path

import pytest

from icn.domain.refusals import Code
from icn.interfaces.refusal_table import DOCS, current, render

DOCS_DIR = Path(__file__).resolve().parents[3] / "docs"


@pytest.mark.parametrize("name", sorted(DOCS))
def test_the_docs_table_is_the_one_the_vocabulary_renders(name: str) -> None:
    block = current((DOCS_DIR / name).read_text())
    assert block is not None, f"docs/{name} lost its generated refusal code table"
    assert block == render(DOCS[name]), (
        f"docs/{name} is stale: run `python -m icn.interfaces.refusal_table docs`"
    )


@pytest.mark.parametrize("name", sorted(DOCS))
def test_every_code_has_a_row(name: str) -> None:
    block = current((DOCS_DIR / name).read_text()) or ""
    missing = [code.value for code in Code if f"| `{code}` |" not in block]
    assert not missing, f"docs/{name} lacks {missing}"
