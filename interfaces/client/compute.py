"""The compute routes from a client: module bytes up and down, tasks read.

Thin calls over :class:`icn.interfaces.client.api.IcnClient`'s connection and
token; problems arrive as :class:`icn.interfaces.client.errors.ApiError` with
the node's code, as for every other call.
"""

from __future__ import annotations

import msgspec

from icn.application.compute_reads import TaskList, TaskView
from icn.interfaces.client.api import IcnClient


class _Kept(msgspec.Struct):
    shared: bool = False


def put_module(client: IcnClient, coop: str, module: str, data: bytes) -> bool:
    """Upload a stored module's bytes (binary or WAT) to the node; True when the node also
    shared them with the coop's other nodes."""
    # the client's one request path (token, transport errors, problems)
    raw = client._request("PUT", f"/v1/coops/{coop}/modules/{module}", content=data)
    return msgspec.json.decode(raw, type=_Kept).shared


def get_module(client: IcnClient, coop: str, module: str) -> bytes:
    """A stored module's binary from the node."""
    return client._request("GET", f"/v1/coops/{coop}/modules/{module}")


def get_task(client: IcnClient, coop: str, task: str) -> TaskView:
    """One task as the node has it now."""
    raw = client._request("GET", f"/v1/coops/{coop}/tasks/{task}")
    return msgspec.json.decode(raw, type=TaskView)


def list_tasks(
    client: IcnClient, coop: str, *, state: str | None = None, executor: str | None = None
) -> TaskList:
    """The coop's tasks in ``state`` placed on ``executor`` (each when given)."""
    params = {k: v for k, v in (("state", state), ("executor", executor)) if v is not None}
    raw = client._request("GET", f"/v1/coops/{coop}/tasks", params=params)
    return msgspec.json.decode(raw, type=TaskList)
