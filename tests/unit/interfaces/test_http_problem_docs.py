"""Every problem code the HTTP layer raises by name is in docs/api.md, so none ships unnamed.

The refusal codes of events are generated from the vocabulary (test_refusal_docs);
the HTTP layer's own codes (authentication, scope, request shape …) are written
where they are raised, and this test reads them from the source.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def raised_codes() -> set[str]:
    """The string literal ``code`` of every ``ApiProblem(status, "code", …)`` in interfaces/http."""
    codes = set()
    for path in (ROOT / "interfaces" / "http").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "ApiProblem"
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)
            ):
                codes.add(node.args[1].value)
    return codes


def test_every_code_the_http_layer_raises_is_documented() -> None:
    codes = raised_codes()
    assert {"token-coop-mismatch", "missing-scope", "unauthorized"} <= codes
    docs = (ROOT / "docs" / "api.md").read_text()
    missing = sorted(code for code in codes if f"`{code}`" not in docs)
    assert not missing, f"docs/api.md does not name {missing}"
