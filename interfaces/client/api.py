"""``IcnClient``: the node's HTTP API from Python (sync httpx), as the CLI uses it.

Every refusal becomes an :class:`ApiError` carrying the problem document's
``code``, so callers branch on codes, never on message text. Posting is safe
to retry (a replayed event answers with the position it already has), which
is why chunks are retried on a busy store or a dropped connection.
"""

from __future__ import annotations

import random
import time
from collections.abc import Generator, Sequence

import httpx
import msgspec
from nacl.signing import SigningKey

from icn.domain.identity.did import did_from_public_key
from icn.interfaces.client.errors import ApiError, InputError
from icn.interfaces.client.models import (
    ChainHead,
    EventPage,
    LogEntry,
    Placed,
    Problem,
    Session,
    StreamEvent,
    _Batch,
    _Challenge,
    _Token,
)
from icn.interfaces.client.sse import SseComment, parse

AUTH_CONTEXT = b"icn-auth-v1:"
MAX_BATCH = 100
HEARTBEAT_S = 15.0
STREAM_READ_TIMEOUT_S = 3 * HEARTBEAT_S
"""Three missed heartbeats: the connection is dead even if TCP has not noticed."""


class _IdOnly(msgspec.Struct):
    id: str


class _CoopSize(msgspec.Struct):
    size: int


class _Readiness(msgspec.Struct):
    coops: dict[str, _CoopSize]


def _problem(response: httpx.Response) -> ApiError:
    """The error a non-2xx response stands for (the node always sends a problem document)."""
    try:
        doc = msgspec.json.decode(response.read(), type=Problem)
    except msgspec.DecodeError:
        doc = Problem(detail=f"HTTP {response.status_code} {response.reason_phrase}")
    return ApiError(response.status_code, doc.code, doc.detail or doc.title, doc.line)


def _unreachable(exc: httpx.TransportError, url: str) -> ApiError:
    return ApiError(
        0, "unreachable", f"cannot reach the node at {url}: {exc or type(exc).__name__}"
    )


def _check_lines(wires: Sequence[bytes]) -> None:
    """Each line must be one JSON object: a bad line otherwise spoils its whole chunk's array."""
    for n, wire in enumerate(wires, start=1):
        if not wire.strip():
            raise InputError(n, "empty line")
        try:
            value = msgspec.json.decode(wire)
        except msgspec.DecodeError as exc:
            raise InputError(n, f"not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise InputError(n, "not a JSON object (one wire event per line)")


class IcnClient:
    """A connection to one node; ``token`` (from :meth:`login`) authorises coop calls."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        stream_retries: int = 8,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retries = retries
        self.stream_retries = stream_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def __repr__(self) -> str:
        return f"IcnClient({self.base_url!r}, token={'set' if self.token else None})"

    def __enter__(self) -> IcnClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    # -- plumbing -----------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _request(self, method: str, path: str, **kwargs: object) -> bytes:
        try:
            response = self._http.request(method, path, headers=self._headers(), **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError as exc:
            raise _unreachable(exc, self.base_url) from None
        if response.is_error:
            raise _problem(response)
        return response.content

    def _pause(self, attempt: int) -> None:
        """Exponential backoff with jitter, so restarted clients do not return in step."""
        delay = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
        time.sleep(delay * random.uniform(0.5, 1.0))

    # -- auth ---------------------------------------------------------------

    def login(self, key: SigningKey, coop: str) -> Session:
        """Sign a fresh challenge with ``key``; the client then uses the token it buys."""
        did = did_from_public_key(bytes(key.verify_key))
        raw = self._request("POST", "/v1/auth/challenge", json={"did": did})
        challenge = msgspec.json.decode(raw, type=_Challenge)
        signature = key.sign(AUTH_CONTEXT + bytes.fromhex(challenge.nonce)).signature.hex()
        body = {"did": did, "nonce": challenge.nonce, "signature": signature, "coop": coop}
        token = msgspec.json.decode(
            self._request("POST", "/v1/auth/verify", json=body), type=_Token
        )
        self.token = token.token
        return Session(token.token, token.expires_at, did, coop)

    # -- writing ------------------------------------------------------------

    def post_events(self, coop: str, wires: Sequence[bytes]) -> list[Placed]:
        """Append events in chunks of 100, in order; each chunk is stored whole or not at all.

        On a refusal the :class:`ApiError` names the line counted over all of
        ``wires`` and carries in ``placed`` what earlier chunks stored.
        """
        _check_lines(wires)
        placed: list[Placed] = []
        for start in range(0, len(wires), MAX_BATCH):
            chunk = wires[start : start + MAX_BATCH]
            try:
                placed += self._post_chunk(coop, chunk)
            except ApiError as exc:
                error = exc.shifted(start)
                error.placed = placed
                raise error from None
        return placed

    def _post_chunk(self, coop: str, chunk: Sequence[bytes]) -> list[Placed]:
        body = b"[" + b",".join(w.strip() for w in chunk) + b"]"
        headers = {**self._headers(), "Content-Type": "application/json"}
        resent = False
        for attempt in range(1, self.retries + 2):
            try:
                response = self._http.post(
                    f"/v1/coops/{coop}/events", content=body, headers=headers
                )
            except httpx.TransportError as exc:
                # The node may have committed before the answer was lost; a resend
                # is then refused as a replay, which _already_placed recognises.
                if attempt > self.retries:
                    raise _unreachable(exc, self.base_url) from None
                resent = True
                self._pause(attempt)
                continue
            if response.status_code == 503 and attempt <= self.retries:
                self._pause(attempt)
                continue
            if response.is_error:
                error = _problem(response)
                if resent and error.code == "duplicate":
                    return self._already_placed(coop, chunk, error)
                raise error
            return msgspec.json.decode(response.content, type=_Batch).events
        raise AssertionError("unreachable")  # the loop always returns or raises

    def _already_placed(self, coop: str, chunk: Sequence[bytes], error: ApiError) -> list[Placed]:
        """After a lost answer: the chunk's positions if the first send stored all of it."""
        placed = []
        for wire in chunk:
            event_id = msgspec.json.decode(wire, type=_IdOnly).id
            try:
                raw = self._request("GET", f"/v1/coops/{coop}/events/{event_id}")
            except ApiError:
                raise error from None  # not all of it is there: the refusal stands
            placed.append(Placed(event_id, msgspec.json.decode(raw, type=LogEntry).position))
        return placed

    # -- reading ------------------------------------------------------------

    def chain_head(self, coop: str, did: str) -> ChainHead:
        """The ``seq`` and ``prev`` the author's next event must carry."""
        raw = self._request("GET", f"/v1/coops/{coop}/chains/{did}/head")
        return msgspec.json.decode(raw, type=ChainHead)

    def log_size(self, coop: str) -> int:
        """How many events the node holds for ``coop`` (0: none), from ``/v1/ready``."""
        raw = self._request("GET", "/v1/ready")
        sizes = msgspec.json.decode(raw, type=_Readiness).coops
        return sizes[coop].size if coop in sizes else 0

    def events(
        self,
        coop: str,
        after: int = -1,
        limit: int = 100,
        type: str | None = None,
        author: str | None = None,
    ) -> EventPage:
        """One page of the log after position ``after``; ``type`` is a prefix."""
        params: dict[str, str | int] = {"after": after, "limit": limit}
        if type is not None:
            params["type"] = type
        if author is not None:
            params["author"] = author
        raw = self._request("GET", f"/v1/coops/{coop}/events", params=params)
        return msgspec.json.decode(raw, type=EventPage)

    def tail(
        self,
        coop: str,
        after: int = -1,
        type: str | None = None,
        author: str | None = None,
    ) -> Generator[StreamEvent, None, None]:
        """Follow the coop's live stream from position ``after``, for as long as it lasts.

        A dropped connection (or a too-slow kick) is resumed with
        ``Last-Event-ID``: up to ``stream_retries`` attempts in a row (about
        45 s with the default backoff, long enough for a node restart), and any
        sign of life from the node resets the count. Positions only
        grow: one the node sends again after a resume is skipped.
        """
        last = after
        failures = 0
        timeout = httpx.Timeout(self.timeout, read=max(self.timeout, STREAM_READ_TIMEOUT_S))
        while True:
            params: dict[str, str | int] = {"after": last}
            if type is not None:
                params["type"] = type
            if author is not None:
                params["author"] = author
            headers = {**self._headers(), "Accept": "text/event-stream"}
            if last >= 0:
                headers["Last-Event-ID"] = str(last)
            try:
                with self._http.stream(
                    "GET",
                    f"/v1/coops/{coop}/stream",
                    params=params,
                    headers=headers,
                    timeout=timeout,
                ) as response:
                    if response.status_code != 200:
                        error = _problem(response)
                        if response.status_code < 500 and response.status_code != 429:
                            raise error
                        raise _Retry(error)
                    for item in parse(response.iter_lines()):
                        failures = 0
                        if isinstance(item, SseComment):
                            continue
                        if item.event == "error":
                            raise _Retry(_stream_error(item.data))
                        if item.id is None or not item.id.lstrip("-").isdigit():
                            continue
                        position = int(item.id)
                        if position <= last:
                            continue
                        last = position
                        yield StreamEvent(position, item.event, item.data.encode())
                cause: ApiError = ApiError(0, "stream-ended", "the node closed the stream")
            except httpx.TransportError as exc:
                cause = _unreachable(exc, self.base_url)
            except _Retry as retry:
                cause = retry.error
            failures += 1
            if failures > self.stream_retries:
                raise ApiError(
                    cause.status, cause.code, f"{cause.detail} (gave up after {failures} attempts)"
                )
            self._pause(failures)


class _Retry(Exception):
    """Internal: the stream failed in a way a resume may cure."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(str(error))
        self.error = error


def _stream_error(data: str) -> ApiError:
    """An ``event: error`` message (``{"code": "too-slow"}``) as an error."""
    try:
        doc = msgspec.json.decode(data, type=Problem)
    except msgspec.DecodeError:
        doc = Problem(code="stream-error")
    detail = doc.detail or f"the node ended the stream: {doc.code}"
    return ApiError(doc.status, doc.code, detail)
