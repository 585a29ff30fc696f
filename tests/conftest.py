"""Fixtures every test layer shares: where the repository and the spec's test vectors are.

The spec (and its vectors) live in the shared folder beside the repository,
``<repo>/../shared``; tests read them in place so the vectors are never copied
and can never drift from the spec.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nacl.signing import SigningKey

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The repository root (the folder holding ``pyproject.toml``)."""

SHARED_DIR = (REPO_ROOT / ".." / "shared").resolve()
VECTORS_DIR = SHARED_DIR / "spec" / "vectors"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root, for tests that build or install the package."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """The spec's test vectors (keys.json, ok.jsonl, faults.jsonl, expected.json, merkle.json)."""
    if not (VECTORS_DIR / "keys.json").is_file():
        pytest.fail(f"spec test vectors not found at {VECTORS_DIR}")
    return VECTORS_DIR


@pytest.fixture(scope="session")
def vector_keys(vectors_dir: Path) -> dict[str, SigningKey]:
    """The vectors' signing keys by name (alice, bob, ..., coop, node1)."""
    keys = json.loads((vectors_dir / "keys.json").read_text())
    return {name: SigningKey(bytes.fromhex(entry["seed"])) for name, entry in keys.items()}
