"""Node settings from ``ICN_*`` environment variables, validated at start.

Secrets (the keystore passphrase, later the JWT secret) are read where they
are used, from the environment, and never stored in these settings, so a
settings dump can be logged safely.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MAX_BODY_BYTES = 256 * 1024
"""The node's limit on any request body (the HTTP app's); no class may be allowed more."""


def default_data_dir() -> Path:
    """Per-user data directory (e.g. ``~/.local/share/icn`` on Linux)."""
    return Path(platformdirs.user_data_dir("icn", appauthor=False))


class Settings(BaseSettings):
    """Everything an operator can set without touching code."""

    model_config = SettingsConfigDict(env_prefix="ICN_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    checkpoint_every: int = Field(default=1000, ge=1, le=10_000_000)
    checkpoint_seconds: float = Field(default=60.0, gt=0, le=86_400)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    http_access_log: bool = False
    """One log line per HTTP request (off by default: at hundreds of requests a second
    it cost the event loop more than routing them did; a fronting proxy usually logs)."""
    cors_origins: list[str] = Field(default_factory=list)
    """Origins allowed to call the API from a browser; empty: CORS closed."""
    auth_challenge_ttl_s: float = Field(default=300, ge=1, le=3600)
    """How long a login nonce may be used (the API's default is five minutes)."""
    behind_tls: bool = False
    """Set when a TLS proxy fronts the node: adds HSTS."""
    duties_interval_s: float = Field(default=5.0, gt=0, le=86_400)
    """How often a running node settles resolved disputes and charges due demurrage."""
    # HTTP rate limits (token buckets: ``*_per_s`` refill, ``*_burst`` capacity). A request
    # with a token that verifies is charged to its caller: at the rate of their trust class
    # when they have one (docs/trust.md, "Limits by class"), else per DID; any other request
    # to its address.
    rate_ip_per_s: float = Field(default=50.0, gt=0, le=1_000_000)
    """Requests per second each client IP (IPv6: each /64) may sustain without a token."""
    rate_ip_burst: int = Field(default=200, ge=1, le=10_000_000)
    """Requests a client IP may make at once before its rate applies."""
    rate_did_per_s: float = Field(default=20.0, gt=0, le=1_000_000)
    """Requests per second of a caller without a class: a member of a coop that has
    published no epoch yet, or the coop's own DID."""
    rate_did_burst: int = Field(default=100, ge=1, le=10_000_000)
    """Requests such a caller may make at once before its rate applies."""
    rate_isolated_per_s: float = Field(default=10.0, gt=0, le=1_000_000)
    """Requests per second of a caller whose class is Isolated (issue 14's default)."""
    rate_isolated_burst: int = Field(default=20, ge=1, le=10_000_000)
    rate_known_per_s: float = Field(default=50.0, gt=0, le=1_000_000)
    rate_known_burst: int = Field(default=100, ge=1, le=10_000_000)
    rate_partner_per_s: float = Field(default=100.0, gt=0, le=1_000_000)
    rate_partner_burst: int = Field(default=200, ge=1, le=10_000_000)
    rate_federated_per_s: float = Field(default=200.0, gt=0, le=1_000_000)
    rate_federated_burst: int = Field(default=400, ge=1, le=10_000_000)
    payload_isolated_bytes: int = Field(default=16 * 1024, ge=1024, le=MAX_BODY_BYTES)
    """Largest request body of an Isolated caller: about 25 signed payments (~640 bytes each)."""
    payload_known_bytes: int = Field(default=64 * 1024, ge=1024, le=MAX_BODY_BYTES)
    """A Known caller's: a batch of 100 payments fits."""
    payload_partner_bytes: int = Field(default=128 * 1024, ge=1024, le=MAX_BODY_BYTES)
    payload_federated_bytes: int = Field(default=MAX_BODY_BYTES, ge=1024, le=MAX_BODY_BYTES)
    rate_auth_per_s: float = Field(default=1.0, gt=0, le=1_000_000)
    """Login requests (``/v1/auth/…``) per second per client IP: stricter, against guessing."""
    rate_auth_burst: int = Field(default=10, ge=1, le=10_000_000)
    """Login requests a client IP may make at once."""
    max_streams_per_did: int = Field(default=8, ge=1, le=1_000_000)
    """Live streams (SSE and WebSocket) one DID may hold open at once; more: 429."""
    max_streams: int = Field(default=1000, ge=1, le=1_000_000)
    """Live streams the node holds open in all; more: 503 (each costs a socket and a task)."""
    # Replication (docs/replication.md).
    replication: bool = True
    """False (``--no-replication``): no NATS at all, for embedded use."""
    nats_url: str | None = None
    """NATS to replicate through: a URL, or several comma-separated (a cluster).
    Unset: the node runs its own ``nats-server -js`` under ``<data-dir>/nats``."""
    serve: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Coops to serve besides those the store holds (``ICN_SERVE=a,b``)."""
    max_clock_skew_s: int = Field(default=300, ge=0, le=86_400)
    """How far an event's ``ts`` may lie ahead of trusted time (``clock-skew`` beyond)."""
    clock_offset_ms: int = Field(default=0, ge=-(10**12), le=10**12)
    """Shifts this node's clock: only for testing nodes whose clocks disagree."""
    parked_max: int = Field(default=10_000, ge=1, le=10_000_000)
    """Received events kept waiting per coop (gaps, rules that may pass later)."""
    rejected_max: int = Field(default=10_000, ge=1, le=10_000_000)
    """Refused stream messages kept per coop for inspection (the oldest go first)."""
    dead_letter_after: int = Field(default=5, ge=1, le=1_000)
    """Deliveries of a stream message whose handling keeps failing before it is set aside
    as a dead letter (the coop then goes on, ``degraded``)."""

    @field_validator("serve", mode="before")
    @classmethod
    def _split_serve(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part for part in value.replace(",", " ").split() if part]
        return value
