"""Read models built from the log, each with its own tracking position.

The ledger's balances, history and coop totals (``ledger.py``), the runner
that applies new log entries to them exactly once (``runner.py``), the
documents the HTTP API and CLI show (``ledger_views.py``), and replay, which
rebuilds everything in a scratch database and compares (``replay.py``).
"""
