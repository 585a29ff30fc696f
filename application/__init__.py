"""Use cases: verify, decide, sign when the node authors, append; audit and replay."""
