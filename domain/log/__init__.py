"""The node log: an RFC 6962 Merkle tree per coop and signed checkpoints (spec section 5)."""
