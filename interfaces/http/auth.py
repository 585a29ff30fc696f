"""DID login: a signed nonce buys a short-lived JWT scoped to one coop.

The client asks for a challenge (32 random bytes, five minutes, single use),
signs ``icn-auth-v1:`` + nonce with its Ed25519 key, and trades the
signature for a token (HS256, one hour) naming its DID, the coop and its
scopes. Every failure of ``verify`` looks the same to the caller, and takes
the same work: an unknown nonce is still checked against a signature.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Annotated

import jwt
import msgspec
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError, CryptoError

from icn.application.queries import coop_of, member_of
from icn.domain.coop.records import ADMIN
from icn.domain.identity.did import InvalidDid, public_key_from_did
from icn.interfaces.bootstrap import Node
from icn.interfaces.http.dependencies import NodeDep
from icn.interfaces.http.problems import ApiProblem, problem_responses

AUTH_CONTEXT = b"icn-auth-v1:"
CHALLENGE_TTL_MS = 5 * 60 * 1000
TOKEN_TTL_S = 3600
MAX_OPEN_CHALLENGES = 100_000
MIN_SECRET_BYTES = 32
MEMBER_SCOPES = ("events:write", "log:read", "ledger:read", "governance:write")
_DUMMY_KEY = bytes(32)

Did = Annotated[str, msgspec.Meta(min_length=10, max_length=128)]
Coop = Annotated[str, msgspec.Meta(pattern="^[a-z0-9][a-z0-9-]{0,63}$")]
HexNonce = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
HexSig = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{128}$")]


class SecretError(ValueError):
    """The JWT secret is missing or too short: the node refuses to start."""


def jwt_secret(env: dict[str, str] | None = None) -> bytes:
    """``ICN_JWT_SECRET``, or the file named by ``ICN_JWT_SECRET_FILE``; at least 32 bytes."""
    env = dict(os.environ) if env is None else env
    value = env.get("ICN_JWT_SECRET", "").encode()
    if not value and env.get("ICN_JWT_SECRET_FILE"):
        value = Path(env["ICN_JWT_SECRET_FILE"]).read_bytes().strip()
    if len(value) < MIN_SECRET_BYTES:
        raise SecretError(
            f"ICN_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes"
            " (or ICN_JWT_SECRET_FILE must name a file holding one)"
        )
    return value


class ChallengeRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Ask for a nonce to sign."""

    did: Did


class Challenge(msgspec.Struct):
    """A nonce to sign, valid once, until ``expires_at`` (ms since the epoch)."""

    nonce: str
    expires_at: int


class VerifyRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The signed nonce, traded for a token of ``coop``."""

    did: Did
    nonce: HexNonce
    signature: HexSig
    coop: Coop


class Token(msgspec.Struct):
    """A bearer token for ``Authorization: Bearer …``."""

    token: str
    expires_at: int
    scopes: list[str]


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: from a verified token."""

    did: str
    coop: str
    scopes: tuple[str, ...]


class ChallengeBook:
    """Open challenges, in memory: single use, expiring, bounded in number."""

    def __init__(self, ttl_ms: int = CHALLENGE_TTL_MS) -> None:
        self._open: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._ttl_ms = ttl_ms

    def issue(self, did: str, now_ms: int) -> Challenge:
        nonce = secrets.token_hex(32)
        expires = now_ms + self._ttl_ms
        with self._lock:
            while self._open and (
                len(self._open) >= MAX_OPEN_CHALLENGES
                or next(iter(self._open.values()))[1] < now_ms
            ):
                self._open.popitem(last=False)
            self._open[nonce] = (did, expires)
        return Challenge(nonce=nonce, expires_at=expires)

    def take(self, did: str, nonce: str, now_ms: int) -> bool:
        with self._lock:
            entry = self._open.pop(nonce, None)
        return entry is not None and entry[0] == did and entry[1] >= now_ms


class Tokens:
    """Issues and reads HS256 tokens.

    Reading a token (HMAC plus PyJWT's base64 and claim checks) costs more
    CPU than the rest of a small request, and the rate limiter and the route
    both need it; so verified tokens are remembered until they expire, in a
    bounded table keyed by the exact token string.
    """

    CACHE_SIZE = 10_000

    def __init__(self, secret: bytes, node_did: str) -> None:
        self._secret = secret
        self._node_did = node_did
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._lock = threading.Lock()

    def issue(self, did: str, coop: str, now_s: int, *, extra: tuple[str, ...] = ()) -> Token:
        scopes = [*MEMBER_SCOPES, *(["admin", "relay"] if did == self._node_did else []), *extra]
        exp = now_s + TOKEN_TTL_S
        claims = {
            "sub": did, "coop": coop, "scopes": scopes, "iat": now_s, "exp": exp,
            "jti": secrets.token_hex(8), "iss": self._node_did,
        }  # fmt: skip
        return Token(jwt.encode(claims, self._secret, algorithm="HS256"), exp * 1000, scopes)

    def read(self, token: str) -> Principal:
        with self._lock:
            hit = self._verified.get(token)
            if hit is not None and hit[1] > time.time():
                self._verified.move_to_end(token)
                return hit[0]
        who, exp = self._decode(token)
        with self._lock:
            self._verified[token] = (who, exp)
            while len(self._verified) > self.CACHE_SIZE:
                self._verified.popitem(last=False)
        return who

    def _decode(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=["HS256"], issuer=self._node_did,
                options={"require": ["sub", "coop", "scopes", "exp", "iss"]},
            )  # fmt: skip
        except jwt.ExpiredSignatureError:
            raise ApiProblem(401, "token-expired", "the token has expired: log in again") from None
        except jwt.PyJWTError:
            raise ApiProblem(401, "invalid-token", "the bearer token is not valid") from None
        return Principal(claims["sub"], claims["coop"], tuple(claims["scopes"])), float(
            claims["exp"]
        )


def _signature_ok(did: str, nonce: str, signature: str) -> bool:
    try:
        key = public_key_from_did(did)
    except InvalidDid:
        key = _DUMMY_KEY
    try:
        crypto_sign_open(bytes.fromhex(signature) + AUTH_CONTEXT + bytes.fromhex(nonce), key)
    except (BadSignatureError, CryptoError, ValueError):
        return False
    return key is not _DUMMY_KEY


class AuthController(Controller):
    """DID login: ``/v1/auth/challenge``, then ``/v1/auth/verify``. No token needed."""

    path = "/v1/auth"
    tags = ("auth",)

    @post("/challenge", status_code=200, sync_to_thread=False, responses=problem_responses())
    def challenge(
        self, data: JSONBody[ChallengeRequest], challenges: NamedDependency[ChallengeBook]
    ) -> Challenge:
        """A nonce for ``did`` to sign (32 random bytes, five minutes, single use)."""
        try:
            public_key_from_did(data.did)
        except InvalidDid as exc:
            raise ApiProblem(400, "invalid-did", str(exc)) from None
        return challenges.issue(data.did, int(time.time() * 1000))

    @post("/verify", status_code=200, sync_to_thread=False, responses=problem_responses(401, 403))
    def verify(
        self,
        data: JSONBody[VerifyRequest],
        challenges: NamedDependency[ChallengeBook],
        tokens: NamedDependency[Tokens],
        node: NodeDep,
    ) -> Token:
        """Trade a signature over ``icn-auth-v1:`` + nonce for a token of ``coop``."""
        now = time.time()
        fresh = challenges.take(data.did, data.nonce, int(now * 1000))
        signed = _signature_ok(data.did, data.nonce, data.signature)  # always checked: same work
        if not (fresh and signed):
            raise ApiProblem(
                401, "auth-failed", "challenge unknown, used or expired, or bad signature"
            )
        return tokens.issue(data.did, data.coop, int(now), extra=_standing(node, data))


def _standing(node: Node, data: VerifyRequest) -> tuple[str, ...]:
    """Only active members of the coop (and this node, and the coop's own DID) get a token."""
    if data.did == node.node_did:
        return ()
    coop = coop_of(node.store, data.coop)
    if coop is not None and data.did == coop.did:
        return ("coop:admin",)
    member = member_of(node.store, data.coop, data.did)
    if member is None or not member.is_active:
        raise ApiProblem(403, "not-a-member", f"{data.did} is not an active member of {data.coop}")
    return ("coop:admin",) if ADMIN in member.roles else ()
