"""The package map holds outside this checkout: a built wheel and a strict editable install.

The repository keeps ``domain/``, ``application/``, ... at its top level and
``setup.py`` maps them onto ``icn.domain``, ``icn.application``, ... These
tests build and install the project into fresh virtual environments (never
with system site-packages) and look at what a user of the package would see.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

LAYERS = ("domain", "application", "projections", "infrastructure", "interfaces")
ENTRY_POINTS = [
    "icn.domain.events",
    "icn.application.append",
    "icn.infrastructure.store.event_store",
    "icn.interfaces.cli.main",
]
NOT_SOURCE = (
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    ".icn-dev",
    "tests",
)


def run(*args: str | Path, timeout: float = 180, stdin: bytes | None = None) -> str:
    """Run a command, failing the test with its output if it fails."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(
        [str(a) for a in args], input=stdin, capture_output=True, timeout=timeout, env=env
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {proc.returncode}\n"
            f"{proc.stdout.decode()[-3000:]}\n{proc.stderr.decode()[-3000:]}"
        )
    return proc.stdout.decode()


def fresh_venv(path: Path) -> Path:
    """A new virtual environment made by this interpreter; returns its python."""
    run(sys.executable, "-m", "venv", path)
    python = path / "bin" / "python"
    out = run(python, "-c", "import site, sys; print(sys.prefix, site.ENABLE_USER_SITE)")
    assert out.split()[0] == str(path)
    return python


def pip_install(python: Path, *args: str | Path) -> None:
    run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *args, timeout=300)


def probe(python: Path, code: str, stdin: bytes | None = None) -> object:
    """Run ``code`` (which prints one JSON value) in the venv, from a neutral folder."""
    return json.loads(run(python, "-I", "-c", code, stdin=stdin))


@pytest.fixture(scope="module")
def wheel(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the source tree (the checkout's build/ stays untouched)."""
    pytest.importorskip("build", reason="python -m build is in the test extras")
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    shutil.copytree(repo_root, src, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    run(sys.executable, "-m", "build", "--wheel", "--outdir", work / "dist", src, timeout=300)
    [built] = (work / "dist").glob("icn-*.whl")
    return built


def test_the_wheel_holds_every_layer_module_under_the_icn_namespace_and_nothing_else(
    wheel: Path, repo_root: Path
) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    dist_info = {n.split("/")[0] for n in names if ".dist-info/" in n}

    assert {n.split("/")[0] for n in names} == {"icn", *dist_info}
    assert len(dist_info) == 1
    for layer in LAYERS:
        folder = repo_root / layer
        expected = {
            f"icn/{layer}/{p.relative_to(folder).as_posix()}"
            for p in folder.rglob("*.py")
            if "__pycache__" not in p.parts
        }
        assert expected, layer
        assert expected <= names, sorted(expected - names)
        assert f"icn/{layer}/py.typed" in names
    assert not any(n.startswith(("icn/tests", "tests/")) for n in names)
    [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "icn = icn.interfaces.cli.main:run" in text


def test_the_installed_wheel_finds_every_layer_and_the_domain_runs_on_its_own_deps(
    wheel: Path, tmp_path: Path, vectors_dir: Path
) -> None:
    python = fresh_venv(tmp_path / "venv")
    pip_install(python, "--no-deps", wheel)
    site = probe(python, "import json, sysconfig; print(json.dumps(sysconfig.get_path('purelib')))")

    found = probe(
        python,
        (
            "import importlib.util as u, json;"
            f"print(json.dumps({{m: u.find_spec(m).origin for m in {ENTRY_POINTS!r}}}))"
        ),
    )
    assert isinstance(found, dict) and set(found) == set(ENTRY_POINTS)
    for module, origin in found.items():
        assert str(origin).startswith(str(site) + "/icn/"), (module, origin)
    bare = probe(
        python,
        (
            "import importlib.util as u, json;"
            "print(json.dumps([u.find_spec(m) is None for m in ('domain', 'application')]))"
        ),
    )
    assert bare == [True, True], "the layer folders must not be importable by their bare names"

    pip_install(python, "msgspec", "pynacl", "blake3")
    line = (vectors_dir / "ok.jsonl").read_bytes().splitlines()[0]
    verified = probe(
        python,
        (
            "import sys, json; from icn.domain.events import verify;"
            "e = verify(sys.stdin.buffer.read()); print(json.dumps([e.id, e.coop]))"
        ),
        stdin=line,
    )
    assert verified == [json.loads(line)["id"], json.loads(line)["coop"]]


def test_a_strict_editable_install_maps_icn_domain_onto_the_repository_folders(
    repo_root: Path, tmp_path: Path
) -> None:
    python = fresh_venv(tmp_path / "venv")
    pip_install(python, "--no-deps", "--config-settings", "editable_mode=strict", "-e", repo_root)

    files = probe(
        python,
        (
            "import json, os, icn.domain, icn.domain.log.merkle as m;"
            "import importlib.util as u;"
            "s = u.find_spec('icn.infrastructure.store.event_store');"
            "print(json.dumps([[f, os.path.realpath(f)] for f in"
            " (icn.domain.__file__, m.__file__, s.origin)]))"
        ),
    )

    expected = [
        repo_root / "domain" / "__init__.py",
        repo_root / "domain" / "log" / "merkle.py",
        repo_root / "infrastructure" / "store" / "event_store.py",
    ]
    assert isinstance(files, list)
    for (path, real), target in zip(files, expected, strict=True):
        assert Path(real) == target.resolve()
        # The module is found in the repository itself or in setuptools' link tree in build/.
        assert Path(path) == target or Path(path).is_relative_to(repo_root / "build"), path
