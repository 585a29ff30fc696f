"""The pure model: identities, the signed event envelope, chains, the Merkle log.

Nothing here touches a disk, a socket or a clock; every input (time included)
is passed in, so the rules can be tested exhaustively and replayed exactly.
"""
