"""Where a coop's routes live, and what a coop name in a path may be."""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter

COOP_ROUTES = "/v1/coops/{coop:str}"
"""The path every coop route starts with; its controllers are mounted here."""

CoopPath = Annotated[str, PathParameter(pattern="^[a-z0-9][a-z0-9-]{0,63}$", max_length=64)]
"""The ``coop`` path parameter, as the OpenAPI document states it."""
