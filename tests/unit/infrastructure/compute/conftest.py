"""A task sandbox per test module: engines are costly to build and safe to share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from icn.infrastructure.compute.sandbox import Sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as box:
        yield box
