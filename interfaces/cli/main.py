"""Entry point of ``icn``: the command tree and the one place errors become exit codes.

Exit codes: 0 success, 1 a failed check or a refused request (with a
one-line reason), 2 wrong usage (an unknown key name included), or the data
dir is in use by another process (a running node). A user error never
prints a traceback.

Each command's module is imported only when that command runs (see
:mod:`icn.interfaces.cli.lazy`): ``icn id show`` must not pay for
SQLAlchemy, NATS and Litestar. So this module imports nothing heavy, and
the error types below are imported when an error is being reported.
"""

from __future__ import annotations

import os
import sys

import typer

from icn.interfaces.cli.lazy import lazy_group

_CLI = "icn.interfaces.cli"

COMMANDS: dict[str, str] = {
    "node": f"{_CLI}.node:app",
    "nats": f"{_CLI}.nats:app",
    "config": f"{_CLI}.config:app",
    "id": f"{_CLI}.identity:app",
    "log": f"{_CLI}.log:app",
    "audit": f"{_CLI}.audit:app",
    "events": f"{_CLI}.remote:events_app",
    "login": f"{_CLI}.remote:login",
    "balance": f"{_CLI}.ledger_reads:balance",
    "history": f"{_CLI}.ledger_reads:history",
    "replay": f"{_CLI}.replay:replay",
    "coop": f"{_CLI}.coop:app",
    "member": f"{_CLI}.coop:member_app",
    "profile": f"{_CLI}.profile:app",
    "pay": f"{_CLI}.ledger:pay",
    "dispute": f"{_CLI}.ledger:dispute_app",
    "ledger": f"{_CLI}.ledger:app",
    "demo": f"{_CLI}.demo:app",
    "trust": f"{_CLI}.trust:app",
    "propose": f"{_CLI}.governance:propose",
    "vote": f"{_CLI}.governance:vote",
    "delegate": f"{_CLI}.governance:delegate",
    "proposals": f"{_CLI}.governance:proposals",
    "tally": f"{_CLI}.governance:tally",
    "charter": f"{_CLI}.governance:charter",
    "withdraw": f"{_CLI}.governance_acts:withdraw",
    "veto": f"{_CLI}.governance_acts:veto",
    "reveal": f"{_CLI}.governance_acts:reveal",
    "appeal": f"{_CLI}.governance_acts:appeal",
    "governance": f"{_CLI}.governance:app",
    "backup": f"{_CLI}.backup:backup",
    "restore": f"{_CLI}.backup:restore",
    "dev": f"{_CLI}.dev:app",
    "contract": f"{_CLI}.contract:app",
    "compute": f"{_CLI}.compute:app",
}
"""Every top-level command: its name and where it lives (imported on use)."""

app = typer.Typer(
    name="icn",
    cls=lazy_group(COMMANDS),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def icn() -> None:
    """ICN node: signed, hash-linked logs for cooperatives."""


def _user_errors() -> tuple[type[BaseException], ...]:
    """What a user can cause (exit 1 with one line), imported only when reporting."""
    from icn.application.errors import ApplicationError
    from icn.application.ports import StoreError
    from icn.infrastructure.keystore import KeystoreError
    from icn.interfaces.client.errors import ClientError

    return (ApplicationError, ClientError, KeystoreError, StoreError, OSError, ValueError)


def _report(exc: BaseException, code: object, hint: str = "") -> None:
    from icn.interfaces.cli.common import err

    err.print(f"[red]error[/red] ({code}): {exc}{hint}", markup=True, highlight=False)


def run() -> None:
    """Console-script entry point."""
    # Whatever the node creates (SQLite file and its -wal/-shm, keys, nats store) is
    # for its own user only, from the first byte: 0600 files, 0700 folders.
    os.umask(0o077)
    try:
        app()
    except KeyboardInterrupt:
        from icn.interfaces.cli.common import err

        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        from icn.infrastructure.data_dir import DataDirBusy
        from icn.infrastructure.keystore import KeyNotFound

        if isinstance(exc, DataDirBusy):
            _report(exc, exc.code, " (write through it instead: --url, or stop it first)")
            sys.exit(2)
        if isinstance(exc, KeyNotFound):  # a key name that is not there: wrong usage
            _report(exc, type(exc).__name__)
            sys.exit(2)
        if isinstance(exc, _user_errors()):
            from icn.interfaces.cli.exit_codes import exit_code_for

            code = getattr(exc, "code", type(exc).__name__)
            _report(exc, code)
            sys.exit(exit_code_for(code))
        raise


if __name__ == "__main__":
    run()
