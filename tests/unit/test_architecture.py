"""The layer rules hold: checked by import-linter, as `make lint` does."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_layers_point_inward_and_the_domain_does_no_io() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is part of the dev extras"
    proc = subprocess.run([lint_imports], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "0 broken" in proc.stdout


STORE_IO = ("SqlEventStore", "StoreNode", "sqlite3", "parse_database_url", "open_node(")


def test_unit_tests_open_no_store() -> None:
    """A test that needs a database belongs in tests/integration, where it runs on SQLite and
    PostgreSQL; unit tests use the in-memory store held to the same contract."""
    offenders = [
        f"{path.relative_to(REPO)}: {needle}"
        for path in sorted((REPO / "tests" / "unit").rglob("*.py"))
        for needle in STORE_IO
        if needle in path.read_text() and path.name != Path(__file__).name
    ]
    assert not offenders, offenders
