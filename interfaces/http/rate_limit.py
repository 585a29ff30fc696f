"""Token-bucket rate limits per client IP and per DID, answered ``429`` with ``Retry-After``.

Why buckets: a cooperative node serves a handful of members from modest
hardware, so one misbehaving client (a buggy sync loop, a scraper, a password
-style guesser against ``/v1/auth/``) must not starve the rest. A bucket allows
short bursts, which real clients make, while holding the long-run rate down.

Every HTTP request, and every WebSocket or SSE *connection* request (frames on
an open socket are not counted), costs one token:

* from its caller's bucket when it carries a bearer token that verifies, at
  the rate of the caller's trust class in the token's coop (Isolated 10/s,
  Known 50/s, Partner 100/s, Federated 200/s by default; ``ICN_RATE_<CLASS>_*``),
  or per DID (``ICN_RATE_DID_*``) for a caller without a class;
* else from its client IP's bucket: strangers share their address's rate,
  and members behind one proxy do not;
* and one more from a stricter per-IP bucket when it is an auth request
  (``/v1/auth/…``), because challenges are cheap to ask for and each one costs
  the node memory and a signature check.

An invalid token is charged to the address and not refused here: the route
refuses it with its own, more precise problem document.

The class is the caller's in the ``general`` context at the coop's last epoch
(:mod:`icn.interfaces.http.caller_classes`), Isolated for a member admitted
since. Before a coop's first epoch nobody has a class, and the coop's own DID
never has one (it is the coop, not a member): those callers get the plain
per-DID limits every caller had before classes, so a new coop is usable from
its first day and a node whose coops publish no epochs behaves as it did. The
class also caps the request body (``ICN_PAYLOAD_<CLASS>_BYTES``: a batch of
events from an Isolated member is small), answered ``413 too-large``. The cap
bounds how much a caller sends *at once*, never whether an event can be sent at
all: a body carrying one event (``POST …/events`` with one wire object, or a
batch of one) may always be as large as the event-log spec lets one event be
(64 KiB encoded, :data:`ONE_EVENT_BODY_BYTES`), whatever the class. Otherwise
an Isolated executor could never reveal a full-size task output (32 KiB, ~44
KiB as a signed event) and a member could not post a legal event at all. A
larger body is read (bounded) and let through only if it holds one event. A task
module's upload (``PUT …/modules/{hash}``) is the one exception: a module is
not a batch of events, so that route caps its own body at the module size
limit (4 MiB, ``413 module-too-large``) for every class; it still costs its
caller a token like any request.

Liveness and readiness probes and the OpenAPI schema are never limited, so an
orchestrator does not restart a node merely because someone flooded it.

The client IP is the ASGI ``client`` host. ``X-Forwarded-For`` is not trusted:
a node behind a reverse proxy sees the proxy's address, and limits per IP then
apply to the proxy as a whole (limit at the proxy in that case). IPv6 clients
are keyed by their /64, since one subscriber usually holds a whole /64.
"""

from __future__ import annotations

import ipaddress
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from icn.domain.events.envelope import MAX_EVENT_BYTES
from icn.domain.trust.classes import TrustClass
from icn.interfaces.http.asgi_problem import send_problem
from icn.interfaces.http.auth import Principal, Tokens
from icn.interfaces.http.caller_classes import CallerClasses, CoopClasses
from icn.interfaces.http.json_guard import read_body, replay_read

if TYPE_CHECKING:
    from icn.infrastructure.settings import Settings

Clock = Callable[[], float]
MAX_KEYS = 100_000
"""Buckets kept per table: about 10 MB at most, however many addresses a client sprays."""

EXEMPT_PATHS = frozenset({"/v1/health", "/v1/ready", "/metrics"})
EXEMPT_PREFIXES = ("/schema",)
AUTH_PREFIX = "/v1/auth/"
MODULE_UPLOAD = re.compile(r"^/v1/coops/[^/]+/modules/[^/]+$")
"""``PUT`` on it: a module's bytes, capped by the route at the module size limit."""
EVENTS_POST = re.compile(r"^/v1/coops/[^/]+/events$")
"""``POST`` on it: one wire event or a batch."""
ONE_EVENT_BODY_BYTES = MAX_EVENT_BYTES + 64
"""The largest body that carries one legal event: its encoded wire form (spec section 3:
at most 64 KiB), plus the brackets of a batch of one and a little whitespace."""


class TokenBucket:
    """``capacity`` tokens, refilled continuously at ``refill_per_s``; one request costs one.

    The bucket keeps only its level and the time it was last looked at, and
    refills lazily when asked, so idle buckets cost no timers and no work.
    """

    __slots__ = ("_clock", "_last", "_tokens", "capacity", "refill_per_s")

    def __init__(self, capacity: float, refill_per_s: float, clock: Clock = time.monotonic) -> None:
        if capacity < 1 or refill_per_s <= 0:
            raise ValueError("a bucket needs capacity >= 1 and refill_per_s > 0")
        self.capacity = float(capacity)
        self.refill_per_s = float(refill_per_s)
        self._clock = clock
        self._tokens = self.capacity
        self._last = clock()

    def _refill(self) -> float:
        now = self._clock()
        elapsed = max(0.0, now - self._last)  # a clock never runs back, but be safe
        self._tokens = min(self.capacity, self._tokens + elapsed * self.refill_per_s)
        self._last = now
        return self._tokens

    @property
    def tokens(self) -> float:
        """The level now, refilled up to this moment."""
        return self._refill()

    @property
    def full(self) -> bool:
        """Whether the bucket is back at capacity: then it is no different from a new one."""
        return self._refill() >= self.capacity

    def take(self) -> float:
        """Take one token: ``0.0`` if granted, else the seconds until one will be there.

        A refused request takes nothing, so a client that keeps hammering is
        not punished beyond its rate, and one that waits the answer is served.
        """
        tokens = self._refill()
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return 0.0
        return (1.0 - tokens) / self.refill_per_s


def retry_after(wait_s: float) -> int:
    """``Retry-After`` in whole seconds, rounded up, at least 1 (0 would invite a busy loop)."""
    return max(1, math.ceil(wait_s))


class BucketTable:
    """One bucket per key (an IP or a DID), with memory bounded by ``max_keys``.

    Keys are kept in least-recently-used order. A bucket that has refilled to
    capacity is dropped, since a new bucket would be identical; and when the
    table is full the least recently used key is evicted, so an attacker
    spraying addresses can evict others' buckets (handing them a fresh burst)
    but cannot grow the node's memory without bound.

    Not locked: the middleware uses it from the event loop only, and a take
    never awaits.
    """

    def __init__(
        self,
        capacity: float,
        refill_per_s: float,
        *,
        max_keys: int = MAX_KEYS,
        clock: Clock = time.monotonic,
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        TokenBucket(capacity, refill_per_s, clock)  # validate once, up front
        self.capacity = capacity
        self.refill_per_s = refill_per_s
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def __contains__(self, key: object) -> bool:
        return key in self._buckets

    def take(self, key: str) -> float:
        """Take one token from ``key``'s bucket: ``0.0`` if granted, else seconds to wait."""
        bucket = self._buckets.get(key)
        if bucket is None:
            self._prune()
            bucket = TokenBucket(self.capacity, self.refill_per_s, self._clock)
            self._buckets[key] = bucket
        else:
            self._buckets.move_to_end(key)
        return bucket.take()

    def _prune(self) -> None:
        # Amortised O(1): every key is inserted once and removed at most once.
        while self._buckets:
            oldest = next(iter(self._buckets.values()))
            if len(self._buckets) < self.max_keys and not oldest.full:
                break
            self._buckets.popitem(last=False)


@dataclass(frozen=True)
class ClassLimit:
    """What one trust class may do: its bucket and its largest request body."""

    per_s: float
    burst: int
    payload_bytes: int


DEFAULT_CLASS_LIMITS: Mapping[TrustClass, ClassLimit] = {
    TrustClass.ISOLATED: ClassLimit(10.0, 20, 16 * 1024),
    TrustClass.KNOWN: ClassLimit(50.0, 100, 64 * 1024),
    TrustClass.PARTNER: ClassLimit(100.0, 200, 128 * 1024),
    TrustClass.FEDERATED: ClassLimit(200.0, 400, 256 * 1024),
}
"""Issue 14's rates; the settings' defaults are the same."""


@dataclass(frozen=True)
class RateLimits:
    """The node's bucket tables and class rules, spent by :class:`RateLimitMiddleware`.

    Litestar builds its middleware stack once per route, so the tables live
    here, shared by every route, rather than in the middleware instances
    (``DefineMiddleware(RateLimitMiddleware, limits=…, tokens=…)``).
    """

    per_ip: BucketTable
    per_did: BucketTable
    auth_per_ip: BucketTable
    per_class: Mapping[TrustClass, BucketTable]
    """Callers' buckets by DID, one table per class; ``per_did`` for those without one."""
    payload_bytes: Mapping[TrustClass, int]

    @classmethod
    def build(
        cls,
        *,
        ip_per_s: float,
        ip_burst: int,
        did_per_s: float,
        did_burst: int,
        auth_per_s: float,
        auth_burst: int,
        classes: Mapping[TrustClass, ClassLimit] = DEFAULT_CLASS_LIMITS,
        max_keys: int = MAX_KEYS,
        clock: Clock = time.monotonic,
    ) -> RateLimits:
        """The tables from plain numbers (as read from the settings)."""

        def table(capacity: float, per_s: float) -> BucketTable:
            return BucketTable(capacity, per_s, max_keys=max_keys, clock=clock)

        return cls(
            per_ip=table(ip_burst, ip_per_s),
            per_did=table(did_burst, did_per_s),
            auth_per_ip=table(auth_burst, auth_per_s),
            per_class={c: table(classes[c].burst, classes[c].per_s) for c in TrustClass},
            payload_bytes={c: classes[c].payload_bytes for c in TrustClass},
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        """The tables from ``ICN_RATE_*`` and ``ICN_PAYLOAD_*``."""
        s = settings
        return cls.build(
            ip_per_s=s.rate_ip_per_s,
            ip_burst=s.rate_ip_burst,
            did_per_s=s.rate_did_per_s,
            did_burst=s.rate_did_burst,
            auth_per_s=s.rate_auth_per_s,
            auth_burst=s.rate_auth_burst,
            classes={
                TrustClass.ISOLATED: ClassLimit(
                    s.rate_isolated_per_s, s.rate_isolated_burst, s.payload_isolated_bytes
                ),
                TrustClass.KNOWN: ClassLimit(
                    s.rate_known_per_s, s.rate_known_burst, s.payload_known_bytes
                ),
                TrustClass.PARTNER: ClassLimit(
                    s.rate_partner_per_s, s.rate_partner_burst, s.payload_partner_bytes
                ),
                TrustClass.FEDERATED: ClassLimit(
                    s.rate_federated_per_s, s.rate_federated_burst, s.payload_federated_bytes
                ),
            },
        )

    @staticmethod
    def class_of(seen: CoopClasses | None, did: str) -> TrustClass | None:
        """The class ``did`` is limited as, given what is known of its token's coop;
        ``None``: none (no epoch yet, the coop's own DID, a coop not founded here)."""
        if seen is None or seen.epoch is None or did == seen.coop_did:
            return None
        return seen.classes.get(did, TrustClass.ISOLATED)


def client_key(scope: Scope) -> str:
    """The client's address as a bucket key: the IP, or the /64 of an IPv6 address."""
    client = scope.get("client")
    host = client[0] if client else ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"  # e.g. a unix socket: all such clients share a bucket
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def bearer_token(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, if there is one."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


class PayloadTooLarge(Exception):
    """A body without ``Content-Length`` ran past its caller's cap while it was read."""


class RateLimitMiddleware:
    """Charge each request to its buckets; refuse it, without calling the app, when one is
    empty, or when its body is over its caller's class cap."""

    def __init__(
        self,
        app: ASGIApp,
        limits: RateLimits,
        tokens: Tokens,
        classes: CallerClasses | None = None,
        on_limited: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.limits = limits
        self.tokens = tokens
        self.classes = classes
        """``None``: no caller has a class (tests, tools)."""
        self.on_limited = on_limited
        """Told the bucket of each refused request (``ip``, ``did``, ``class-<class>``,
        ``auth``): the ``icn_rate_limited_total`` counter."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in (ScopeType.HTTP, ScopeType.WEBSOCKET) or self._exempt(
            scope["path"]
        ):
            await self.app(scope, receive, send)
            return
        who = self._caller(scope)
        caller_class = await self._class_of(who) if who is not None else None
        # who None: charged to the address; caller_class None: per DID, body uncapped here
        refusal = self._charge(scope, who, caller_class)
        if refusal is not None:
            if self.on_limited is not None:
                self.on_limited(bucket_label(refusal[1]))
            await self._refuse(scope, receive, send, *refusal)
            return
        if caller_class is None or scope["type"] != ScopeType.HTTP or _module_upload(scope):
            await self.app(scope, receive, send)
            return
        await self._capped(scope, receive, send, caller_class)

    @staticmethod
    def _exempt(path: str) -> bool:
        return path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIXES)

    def _caller(self, scope: Scope) -> Principal | None:
        token = bearer_token(scope)
        if token is None:
            return None
        try:
            return self.tokens.read(token)
        except Exception:  # invalid or expired: the route refuses it, with the right code
            return None

    async def _class_of(self, who: Principal) -> TrustClass | None:
        if self.classes is None:
            return None
        return self.limits.class_of(await self.classes.of(who.coop), who.did)

    def _charge(
        self, scope: Scope, who: Principal | None, caller_class: TrustClass | None
    ) -> tuple[float, str] | None:
        """``(seconds to wait, what was limited)`` if a bucket is empty, else ``None``."""
        ip = client_key(scope)
        if who is None:
            if wait := self.limits.per_ip.take(ip):
                return wait, "address"
        elif caller_class is None:
            if wait := self.limits.per_did.take(who.did):
                return wait, "DID"
        elif wait := self.limits.per_class[caller_class].take(who.did):
            return wait, f"DID (class {caller_class})"
        if scope["path"].startswith(AUTH_PREFIX) and (wait := self.limits.auth_per_ip.take(ip)):
            return wait, "address on the auth endpoints"
        return None

    async def _capped(
        self, scope: Scope, receive: Receive, send: Send, caller_class: TrustClass
    ) -> None:
        """Pass the request on unless its body is over the class's cap: by its declared
        length when it has one, else counted as it is read."""
        cap = self.limits.payload_bytes[caller_class]
        detail = f"a caller of class {caller_class} may send at most {cap} bytes in a body"
        one_event = ONE_EVENT_BODY_BYTES if _events_post(scope) else 0
        length = declared_length(scope)
        if length is not None and (length <= cap or length > max(cap, one_event)):
            if length > cap:
                await send_problem(scope, receive, send, 413, "too-large", detail)
            else:
                await self.app(scope, receive, send)
            return
        if one_event > cap:
            await self._one_event_allowed(scope, receive, send, cap, detail)
            return
        read = 0
        started = False

        async def counted() -> ReceiveMessage:
            nonlocal read
            message = await receive()
            body: Any = message.get("body", b"")
            read += len(body)
            if read > cap:
                raise PayloadTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except PayloadTooLarge:
            if started:  # too late for a status: the connection just ends
                raise
            await send_problem(scope, receive, send, 413, "too-large", detail)

    async def _one_event_allowed(
        self, scope: Scope, receive: Receive, send: Send, cap: int, detail: str
    ) -> None:
        """An events post that may be over the class's cap: read it (at most one largest
        event's worth), and pass it on if it is within the cap or holds one event."""
        messages, body, _ = await read_body(receive, ONE_EVENT_BODY_BYTES)
        size = len(body)
        if size > ONE_EVENT_BODY_BYTES or (size > cap and not carries_one_event(body)):
            detail += f" (a body of one event: up to {ONE_EVENT_BODY_BYTES})"
            await send_problem(scope, receive, send, 413, "too-large", detail)
            return
        await self.app(scope, replay_read(messages, receive), send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, wait: float, what: str) -> None:
        after = retry_after(wait)
        detail = f"too many requests from this {what}: retry in {after} s"
        await send_problem(
            scope, receive, send, 429, "rate-limited", detail, headers={"Retry-After": str(after)}
        )


def _events_post(scope: Scope) -> bool:
    return scope.get("method") == "POST" and EVENTS_POST.match(scope["path"]) is not None


def carries_one_event(body: bytes) -> bool:
    """Whether an events post's body is one event: one object, or an array of one (as the
    events route reads them); the route still judges the event itself."""
    stripped = body.strip()
    if stripped.startswith(b"{"):
        return True
    if not stripped.startswith(b"["):
        return False
    try:
        return len(msgspec.json.decode(stripped, type=list[msgspec.Raw])) == 1
    except (msgspec.DecodeError, RecursionError):
        return False


def _module_upload(scope: Scope) -> bool:
    return scope.get("method") == "PUT" and MODULE_UPLOAD.match(scope["path"]) is not None


def bucket_label(what: str) -> str:
    """The metric label of a bucket, from what :meth:`RateLimitMiddleware._charge` names."""
    if what == "address":
        return "ip"
    if what == "DID":
        return "did"
    if what.startswith("DID (class "):
        return "class-" + what.removeprefix("DID (class ").removesuffix(")")
    return "auth"


def declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length``, if it declares one that parses."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
