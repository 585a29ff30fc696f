"""Coops: founding, membership and roles, policy, and the state the node's rules need."""
