"""What every command shares: the data-dir option, JSON output, progress bars."""

from __future__ import annotations

import sys
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
    """Settings from the environment, with ``--data-dir`` taking precedence."""
    from icn.infrastructure.settings import Settings

    settings = Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    return settings


def data_dir_of(data_dir: Path | None) -> Path:
    """The data directory without building :class:`Settings` (for commands that need
    nothing else): ``--data-dir``/``ICN_DATA_DIR`` (typer reads both), else the default."""
    if data_dir is not None:
        return data_dir
    import platformdirs  # the same default as Settings.data_dir (a unit test holds them equal)

    return Path(platformdirs.user_data_dir("icn", appauthor=False))


def print_json(value: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")
    sys.stdout.flush()


@contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[Any]:
    """A progress bar on stderr when it is a terminal; a no-op callable otherwise."""
    if not err.is_terminal:
        yield lambda n: None
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
