"""A Typer group whose subcommands are imported only when they are run.

Importing every command module up front pulled in SQLAlchemy, eventsourcing,
NATS, Litestar and uvicorn for every ``icn`` invocation: about a second
before ``icn id show`` could read one JSON file. Here the group knows each
subcommand only by where it lives (``"module:attribute"``) and imports it
when click asks for it by name, so a command costs the imports it needs
and no more. Listing the commands (``icn --help``, the generated reference)
still imports them all, which is fine for help.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import typer
from typer.core import TyperGroup
from typer.main import get_command_from_info, get_group_from_info
from typer.models import CommandInfo, TyperInfo


class LazyCommands(MutableMapping[str, Any]):
    """Subcommands by name, each built from its module on first access."""

    def __init__(self, where: Mapping[str, str], markup: Any) -> None:
        self._where = dict(where)
        self._loaded: dict[str, Any] = {}
        self._markup = markup

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            if name not in self._where:
                raise KeyError(name)
            self._loaded[name] = self._build(name, self._where[name])
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._where.setdefault(name, "")
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._where[name]
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, name: object) -> bool:
        return name in self._where

    def _build(self, name: str, where: str) -> Any:
        module, _, attribute = where.partition(":")
        target = getattr(importlib.import_module(module), attribute)
        if isinstance(target, typer.Typer):
            return get_group_from_info(
                TyperInfo(target, name=name),
                pretty_exceptions_short=False,
                suggest_commands=True,
                rich_markup_mode=self._markup,
            )
        return get_command_from_info(
            CommandInfo(name=name, callback=target),
            pretty_exceptions_short=False,
            rich_markup_mode=self._markup,
        )


def lazy_group(where: Mapping[str, str]) -> type[TyperGroup]:
    """A ``TyperGroup`` class (for ``typer.Typer(cls=...)``) whose subcommands are
    ``where``: name -> ``"package.module:attribute"``, a ``typer.Typer`` or a function."""

    class LazyGroup(TyperGroup):
        def __init__(self, **attrs: Any) -> None:
            super().__init__(**attrs)
            eager = dict(self.commands)
            self.commands = LazyCommands(where, self.rich_markup_mode)
            for name, command in eager.items():
                self.commands[name] = command

    return LazyGroup
