"""Paid compute (issue 18, tier 2): the task ABI, what a module must be, task bodies and fees.

Pure: the sandbox that runs modules lives in :mod:`icn.infrastructure.compute`.
"""
