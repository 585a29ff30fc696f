"""Node settings: defaults, a config file, ``ICN_*`` environment variables; validated at start.

Every setting has a default; a TOML file sets any of them by field name
(``http_port = 8090``): ``ICN_CONFIG`` names it, else ``icn.toml`` in the data
dir is read when it exists. The environment wins over the file (``ICN_HTTP_PORT``),
and a command-line flag (``--data-dir``, ``--port``) over both. A key the file
may not hold is refused with the file and key named; a value that does not
validate is refused naming where it came from (the file and key, or the
environment variable). :func:`load_settings` does all of that and records each
value's source, which ``icn config show`` prints.

Secrets (the keystore passphrase, the JWT secret, the NATS password, a database
URL's password) are :class:`~pydantic.SecretStr` or redacted by :func:`redacted`,
so a settings dump can be logged safely. The code that uses a secret still reads
it, or its ``*_FILE`` variant, from the environment where it is used;
:meth:`Settings.export_to_environ` hands it the values that came from the file.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "ICN_"
ENV_CONFIG = "ICN_CONFIG"
CONFIG_FILE_NAME = "icn.toml"
"""The config file a data dir may hold (read when ``ICN_CONFIG`` is not set)."""

DEFAULT_METRICS_ADDR = "127.0.0.1:9464"
"""Where ``GET /metrics`` is served unless ``ICN_METRICS_ADDR`` says otherwise: loopback,
on a port apart from the API's (9464: OpenTelemetry's Prometheus exporter's)."""
METRICS_ON_API = "api"
"""``ICN_METRICS_ADDR`` value serving ``/metrics`` as a route of the API, as before."""

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
    writer_process: bool = True
    """True: ``icn node run`` writes (and replicates, checkpoints, runs duties) in a child
    process, so reads do not wait on the writer for the GIL (reads p99 while batches post
    2-4x lower than in one process, at ~1.25x the CPU per single post: see
    docs/benchmarks.md). The child is forked before the store opens and builds its half
    while the server builds the app, so a node takes 1.06-1.08x the time to start
    (``ICN_WRITER_PROCESS=0``: everything in one process, e.g. to profile it)."""
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
    rejected_max: int = Field(default=10_000, ge=1, le=10_000_000)
    """Refused stream messages kept per coop for inspection (the oldest go first)."""
    dead_letter_after: int = Field(default=5, ge=1, le=1_000)
    """Deliveries of a stream message whose handling keeps failing before it is set aside
    as a dead letter (the coop then goes on, ``degraded``)."""
    # Live streams (interfaces/http/streams.py reads them per connection, from the environment).
    stream_heartbeat_s: float = Field(default=15.0, gt=0, le=3600)
    """Seconds between heartbeats on a live stream."""
    stream_send_timeout_s: float = Field(default=5.0, gt=0, le=3600)
    """How long a send to a live stream may block before the subscriber is dropped."""
    # Telemetry (infrastructure/telemetry.py reads them from the environment where used).
    telemetry: Literal["on", "off", "true", "false", "yes", "no", "1", "0"] = "on"
    """Traces and metrics (off: none, and no ``/metrics``)."""
    otlp_endpoint: str | None = None
    """Where spans are exported over OTLP/HTTP; unset: spans are not recorded."""
    metrics_addr: str = Field(
        default=DEFAULT_METRICS_ADDR, pattern=rf"^([^\s]*:[0-9]{{1,5}}|{METRICS_ON_API})$"
    )
    """``host:port`` serving ``/metrics`` on a listener of its own (loopback by default, so
    coop names and counts stay off the public API); ``api``: a route of the API instead."""
    trace_sample: float | None = Field(default=None, ge=0, le=1)
    """The share of writes traced (a ratio; unset: 0.05, unless OTEL_TRACES_SAMPLER)."""
    log_format: Literal["json", "text"] | None = None
    """``json`` or ``text``; unset: JSON unless stderr is a terminal."""
    # Secrets: redacted wherever settings are shown; a ``*_file`` (mode 0600) is better.
    passphrase: SecretStr | None = None
    """The keystore passphrase (the node's key and every key in ``<data-dir>/keys``)."""
    passphrase_file: Path | None = None
    jwt_secret: SecretStr | None = None
    """Signs the API's tokens: at least 32 bytes."""
    jwt_secret_file: Path | None = None
    nats_user: str | None = None
    """The user a node logs in to a NATS given by ``nats_url`` as."""
    nats_password: SecretStr | None = None
    nats_password_file: Path | None = None

    _sources: dict[str, str] = PrivateAttr(default_factory=dict)
    _config_file: Path | None = PrivateAttr(default=None)

    @field_validator("telemetry", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        return (value.strip().lower() or "on") if isinstance(value, str) else value

    @field_validator("log_format", "trace_sample", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return (value.strip().lower() or None) if isinstance(value, str) else value

    @field_validator("metrics_addr", mode="before")
    @classmethod
    def _blank_is_default(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            return (
                METRICS_ON_API if value.lower() == METRICS_ON_API else value or DEFAULT_METRICS_ADDR
            )
        return value

    @field_validator("serve", mode="before")
    @classmethod
    def _split_serve(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part for part in value.replace(",", " ").split() if part]
        return value

    def __repr_args__(self) -> Any:
        """As pydantic's, but a URL's password redacted (SecretStr hides the secrets)."""
        for name, value in super().__repr_args__():
            yield name, (redacted(name, value) if name in URL_FIELDS else value)

    @property
    def sources(self) -> dict[str, str]:
        """Where each value came from: ``default``, ``file``, ``env`` or ``flag``
        (filled by :func:`load_settings`; empty for settings built directly)."""
        return self._sources

    @property
    def config_file(self) -> Path | None:
        """The config file read, if any."""
        return self._config_file

    def rows(self) -> list[dict[str, Any]]:
        """Every setting as ``icn config show`` prints it, secrets redacted."""
        return _setting_rows(self)

    def export_to_environ(self) -> None:
        """Hand the file's values of settings read from the environment where they are
        used (secrets, stream timings) to that code: set only variables not already set."""
        _export(self)


SECRET_FIELDS = frozenset({"passphrase", "jwt_secret", "nats_password"})
URL_FIELDS = frozenset({"database_url", "nats_url", "otlp_endpoint"})
"""URLs that may carry a password (``scheme://user:password@host``), redacted when shown."""
READ_FROM_ENVIRON = frozenset(
    {
        "stream_heartbeat_s",
        "stream_send_timeout_s",
        "telemetry",
        "otlp_endpoint",
        "metrics_addr",
        "trace_sample",
        "log_format",
        "passphrase",
        "passphrase_file",
        "jwt_secret",
        "jwt_secret_file",
        "nats_user",
        "nats_password",
        "nats_password_file",
    }
)
"""Settings the code reads from the environment where it uses them (secrets are never kept
longer than needed): a value from the file reaches it through :meth:`Settings.export_to_environ`."""
REDACTED = "***"
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s,]*):[^@/\s,]*@")


class ConfigError(ValueError):
    """The config file or an ``ICN_*`` variable is wrong: the message names which and why."""

    code = "bad-config"


def env_name(field: str) -> str:
    """The environment variable of a setting: ``http_port`` -> ``ICN_HTTP_PORT``."""
    return ENV_PREFIX + field.upper()


def redact_url(value: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://user:***@host`` (each URL of a list)."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}:{REDACTED}@", value)


def redacted(field: str, value: Any) -> Any:
    """A setting's value as it may be shown or logged."""
    if value is None:
        return None
    if field in SECRET_FIELDS or isinstance(value, SecretStr):
        return REDACTED
    if field in URL_FIELDS and isinstance(value, str):
        return redact_url(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return list(value)
    return value


def config_file_path(
    data_dir: Path | None = None, env: Mapping[str, str] | None = None
) -> tuple[Path | None, bool]:
    """The config file to read (or None) and whether ``ICN_CONFIG`` named it.

    ``ICN_CONFIG`` names a file that must exist; otherwise ``icn.toml`` in the data dir
    (``data_dir``, else ``ICN_DATA_DIR``, else the default) is read when it exists."""
    env = os.environ if env is None else env
    named = env.get(ENV_CONFIG, "")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(f"{ENV_CONFIG} names {path}, which is not a file")
        return path, True
    folder = data_dir or (Path(env["ICN_DATA_DIR"]) if env.get("ICN_DATA_DIR") else None)
    path = (folder or default_data_dir()) / CONFIG_FILE_NAME
    return (path, False) if path.is_file() else (None, False)


def read_config_file(path: Path, *, named: bool = True) -> dict[str, Any]:
    """The settings a TOML file holds, each key checked against the settings there are.

    Relative paths are taken from the file's folder. ``named=False`` (the data dir's own
    ``icn.toml``) refuses ``data_dir``: the file is found through it."""
    try:
        with path.open("rb") as f:
            values = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    fields = Settings.model_fields
    for key, value in values.items():
        if key not in fields or isinstance(value, dict):
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{path}: unknown key {key!r}{hint}")
        if key == "data_dir" and not named:
            raise ConfigError(
                f"{path}: key 'data_dir' cannot be set in the data dir's own {CONFIG_FILE_NAME}"
                f" (name a file elsewhere with {ENV_CONFIG})"
            )
        annotation = str(fields[key].annotation)
        if "Path" in annotation and isinstance(value, str) and value:
            candidate = Path(value).expanduser()
            values[key] = str(candidate if candidate.is_absolute() else path.parent / candidate)
    return values


def load_settings(data_dir: Path | None = None) -> Settings:
    """The effective settings: ``data_dir`` (a flag) over ``ICN_*`` over the file over defaults.

    Raises :class:`ConfigError` naming the file and key, or the variable, of a bad value."""
    env = os.environ
    path, named = config_file_path(data_dir, env)
    from_file = read_config_file(path, named=named) if path is not None else {}
    present = {name.upper() for name in env}  # pydantic-settings matches names case-blind
    from_env = {f for f in Settings.model_fields if env_name(f) in present}
    init = {k: v for k, v in from_file.items() if k not in from_env}
    flag_data_dir = data_dir is not None and str(data_dir) != env.get("ICN_DATA_DIR")
    if data_dir is not None:
        init["data_dir"] = data_dir
    try:
        settings = Settings(**init)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, path, from_env, set(from_file))) from None
    sources = {}
    for field in Settings.model_fields:
        if field == "data_dir" and flag_data_dir:
            sources[field] = "flag"
        elif field in from_env:
            sources[field] = "env"
        elif field in from_file:
            sources[field] = "file"
        else:
            sources[field] = "default"
    settings._sources = sources
    settings._config_file = path
    return settings


def _explain(
    exc: ValidationError, path: Path | None, from_env: set[str], from_file: set[str]
) -> str:
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        field = str(error["loc"][0]) if error["loc"] else "?"
        if field in from_env:
            where = f"{env_name(field)} (environment)"
        elif field in from_file:
            where = f"{path}: key {field!r}"
        else:
            where = field
        lines.append(f"{where}: {error['msg']}")
    return "; ".join(lines)


def _as_environ(value: Any) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _setting_rows(settings: Settings) -> list[dict[str, Any]]:
    """One row per setting: its file key, variable, value as it may be shown, source."""
    return [
        {
            "key": field,
            "env": env_name(field),
            "value": redacted(field, getattr(settings, field)),
            "source": settings.sources.get(field, "default"),
        }
        for field in Settings.model_fields
    ]


def _export(settings: Settings) -> None:
    """Fill the variables of :data:`READ_FROM_ENVIRON` the environment lacks from the file."""
    for field in READ_FROM_ENVIRON:
        value = getattr(settings, field)
        if settings.sources.get(field) == "file" and value is not None:
            os.environ.setdefault(env_name(field), _as_environ(value))
