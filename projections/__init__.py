"""Read models built from the log, each with its own tracking position.

Empty until the ledger's balances and history arrive (issue 4); the layer
exists now so the import contracts and packaging already cover it.
"""
