"""No query string's values in any log line the node writes.

A query string can carry a secret (a token a careless client put there, an
old client's ``?token=``), and uvicorn prints the full path of every
WebSocket handshake even with the access log off. Rather than hunt for each
logger and handler (uvicorn's, Litestar's, ours, and any added later), the
node installs a log record factory: every record, whoever creates it, has the
values of the query strings in its message and arguments replaced before
any handler sees it. Parameter names stay, so a line still says what was asked.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

REDACTED = "…"
_QUERY = re.compile(r"\?([^\s\"'<>#]+)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")


def _names_only(match: re.Match[str]) -> str:
    parts = []
    for pair in match.group(1).split("&"):
        name, eq, _ = pair.partition("=")
        parts.append(f"{name}={REDACTED}" if eq and _NAME.fullmatch(name) else REDACTED)
    return "?" + "&".join(parts)


def redact(text: str) -> str:
    """``text`` with every query string's values (and odd-looking names) replaced."""
    return _QUERY.sub(_names_only, text) if "?" in text else text


def _redact_value(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


def _redacting(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        # Arguments are redacted one by one, keeping their shape: uvicorn's access
        # formatter unpacks the tuple (client, method, path, version, status).
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_value(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redact_value(v) for k, v in record.args.items()}
        return record

    factory.redacts_queries = True  # type: ignore[attr-defined]
    return factory


def install() -> None:
    """Redact every later log record of this process (once; later calls do nothing)."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "redacts_queries", False):
        logging.setLogRecordFactory(_redacting(current))
