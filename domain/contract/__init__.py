"""Contracts: a deterministic rule language judged in the write path (issue 18, tier 1)."""
