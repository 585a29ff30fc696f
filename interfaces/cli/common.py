"""What every command shares: the data-dir option, JSON output, progress bars."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import typer
from rich.console import Console

if TYPE_CHECKING:  # pydantic-settings costs ~0.15 s to import: only commands that read it pay
    from icn.infrastructure.settings import Settings

err = Console(stderr=True, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="ICN_DATA_DIR",
        help="Node data directory (default: the user data directory).",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


def settings_for(data_dir: Path | None) -> Settings:
    """The effective settings: ``--data-dir`` over ``ICN_*`` over the config file
    (``ICN_CONFIG``, else ``<data-dir>/icn.toml``) over the defaults. The file's values of
    settings read from the environment where used (secrets) are handed over there."""
    from icn.infrastructure.settings import load_settings

    settings = load_settings(data_dir)
    settings.export_to_environ()
    return settings


def data_dir_of(data_dir: Path | None) -> Path:
    """The data directory without building :class:`Settings` (for commands that need
    nothing else): ``--data-dir``/``ICN_DATA_DIR`` (typer reads both), else ``data_dir``
    in the file ``ICN_CONFIG`` names, else the default."""
    if data_dir is not None:
        return data_dir
    named = os.environ.get("ICN_CONFIG")
    if named:
        import tomllib

        try:
            with open(named, "rb") as f:
                value = tomllib.load(f).get("data_dir")
        except (OSError, tomllib.TOMLDecodeError):
            value = None  # a command that loads the settings says what is wrong
        if isinstance(value, str) and value:
            path = Path(value).expanduser()
            return path if path.is_absolute() else Path(named).parent / path
    import platformdirs  # the same default as Settings.data_dir (a unit test holds them equal)

    return Path(platformdirs.user_data_dir("icn", appauthor=False))


def read_lines(path: Path) -> Iterator[bytes]:
    """A ``jsonl`` file's lines without their newline, read as they are asked for: an import
    or audit of a million lines holds the lines in flight, not the file. As
    :func:`~icn.application.audit.split_lines`, a final newline makes no extra line."""
    with path.open("rb") as f:
        for line in f:
            yield line[:-1] if line.endswith(b"\n") else line


def count_lines(path: Path) -> int:
    """How many lines :func:`read_lines` gives, counted in 1 MiB reads (for a progress bar,
    and to choose threads or processes before the first line is verified)."""
    newlines, last = 0, b"\n"
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            newlines += block.count(b"\n")
            last = block[-1:]
    return newlines + (last != b"\n")


def print_json(value: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")
    sys.stdout.flush()


@contextmanager
def progress_bar(label: str, total: int | None, *, lines_every_s: float = 0) -> Iterator[Any]:
    """A progress bar on stderr when it is a terminal; otherwise a no-op callable, or, with
    ``lines_every_s``, a plain line at most that often and one at the end (a log file or
    a CI job then shows a long wait moving, without a bar's control codes)."""
    if not err.is_terminal:
        if lines_every_s <= 0:
            yield lambda n: None
            return
        lines = _ProgressLines(label, total, lines_every_s)
        yield lines.advance
        lines.show()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


class _ProgressLines:
    """``label: done/total (pct)`` lines on stderr, at most one per ``every_s``."""

    def __init__(self, label: str, total: int | None, every_s: float) -> None:
        self.label, self.total, self.every_s = label, total, every_s
        self.done = 0
        self._last = time.monotonic()

    def advance(self, n: int) -> None:
        self.done += n
        if time.monotonic() - self._last >= self.every_s:
            self.show()

    def show(self) -> None:
        self._last = time.monotonic()
        of = f"/{self.total:,} ({100 * self.done // max(self.total, 1)}%)" if self.total else ""
        err.print(f"{self.label}: {self.done:,}{of}", markup=False, highlight=False)
