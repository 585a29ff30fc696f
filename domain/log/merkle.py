"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and their verification.

Trees are never held whole. A store keeps the hash of every *complete*
subtree (``level``, ``index``: the 2^level leaves starting at index·2^level);
any range the algorithms need is rebuilt from O(log n) of those, so proofs
cost O(log n) reads and appending costs O(log n) hashes (:class:`Frontier`).
Section numbers refer to RFC 9162.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

NodeGetter = Callable[[int, int], bytes]
"""Returns the hash of complete subtree (level, index)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()


class VerificationError(Exception):
    """A proof that does not verify; the message says which step failed."""


def leaf_hash(event_id: bytes) -> bytes:
    """Section 2.1.1: SHA-256(0x00 || leaf), the leaf being the 32 raw id bytes."""
    return hashlib.sha256(b"\x00" + event_id).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Section 2.1.1: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_hash(get: NodeGetter, start: int, end: int) -> bytes:
    """MTH of leaves [start, end), from complete-subtree hashes only."""
    n = end - start
    if n & (n - 1) == 0 and start % n == 0:
        level = n.bit_length() - 1
        return get(level, start >> level)
    k = _split(n)
    return node_hash(subtree_hash(get, start, start + k), subtree_hash(get, start + k, end))


def root(get: NodeGetter, size: int) -> bytes:
    """The tree head at ``size``; the empty tree hashes to SHA-256 of nothing."""
    return EMPTY_ROOT if size == 0 else subtree_hash(get, 0, size)


def complete_subtrees(size: int) -> list[tuple[int, int]]:
    """The (level, index) of the maximal complete subtrees covering [0, size), left first."""
    out = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            out.append((level, start >> level))
            start += 1 << level
    return out


def inclusion_proof(get: NodeGetter, index: int, size: int) -> list[bytes]:
    """Section 2.1.3.1: the audit path of leaf ``index`` in the tree of ``size``."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(subtree_hash(get, start + k, end))
            end = start + k
        else:
            path.append(subtree_hash(get, start, start + k))
            start += k
    path.reverse()
    return path


def consistency_proof(get: NodeGetter, size1: int, size2: int) -> list[bytes]:
    """Section 2.1.4.1: proof that the tree at ``size1`` is a prefix of the one at ``size2``."""
    if not 0 <= size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to {size2}")
    if size1 in (0, size2):
        return []
    proof: list[bytes] = []
    start, end, m, whole = 0, size2, size1, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            proof.append(subtree_hash(get, start + k, end))
            end = start + k
        else:
            proof.append(subtree_hash(get, start, start + k))
            start, m, whole = start + k, m - k, False
    if not whole:
        proof.append(subtree_hash(get, start, end))
    proof.reverse()
    return proof


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes
) -> None:
    """Section 2.1.3.2; raises :class:`VerificationError` unless the path leads to the root."""
    if index >= size:
        raise VerificationError("index is outside the tree")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise VerificationError("proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("proof is shorter than the tree is deep")
    if r != expected_root:
        raise VerificationError("proof does not lead to the root")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Section 2.1.4.2; raises :class:`VerificationError` unless tree 1 is a prefix of tree 2."""
    if size1 > size2:
        raise VerificationError("the first tree is larger than the second")
    if size1 == size2:
        if proof or root1 != root2:
            raise VerificationError("equal sizes need an empty proof and equal roots")
        return
    if size1 == 0:
        if proof:
            raise VerificationError("the empty tree needs an empty proof")
        return
    if not proof:
        raise VerificationError("empty proof")
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("proof is shorter than the tree is deep")
    if fr != root1:
        raise VerificationError("proof does not lead to the first root")
    if sr != root2:
        raise VerificationError("proof does not lead to the second root")


class Frontier:
    """The right edge of a growing tree: enough to append and to compute the root.

    ``append`` returns every complete subtree the new leaf closes, which is
    what a store persists (amortised two rows per leaf).
    """

    def __init__(self, size: int = 0, edge: Sequence[bytes] = ()) -> None:
        expected = len(complete_subtrees(size))
        if len(edge) != expected:
            raise ValueError(f"a tree of size {size} has {expected} edge nodes, got {len(edge)}")
        self.size = size
        self._edge = list(zip((lvl for lvl, _ in complete_subtrees(size)), edge, strict=True))

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return the (level, index, hash) of newly complete subtrees."""
        return [(0, self.size, leaf), *self.append_subtree(0, leaf)]

    def append_subtree(self, level: int, top: bytes) -> list[tuple[int, int, bytes]]:
        """Add a complete subtree of ``2**level`` leaves (its hash ``top``) where the tree's
        size is a multiple of it; return the (level, index, hash) of the subtrees this
        closes above it. What appending its leaves one by one gives, for a caller that had
        the subtree hashed elsewhere (an audit's workers hash aligned units of the log)."""
        if self.size % (1 << level):
            raise ValueError(f"a subtree of level {level} cannot start at leaf {self.size}")
        index, h, created = self.size, top, []
        while self._edge and self._edge[-1][0] == level:
            _, left = self._edge.pop()
            h = node_hash(left, h)
            level += 1
            created.append((level, index >> level, h))
        self._edge.append((level, h))
        self.size += 1 << (level - len(created))
        return created

    def edge(self) -> list[bytes]:
        """Hashes of the maximal complete subtrees, left first: what a store persists."""
        return [h for _, h in self._edge]

    def root(self) -> bytes:
        """The root of the tree as it stands."""
        if not self._edge:
            return EMPTY_ROOT
        r = self._edge[-1][1]
        for _, h in reversed(self._edge[:-1]):
            r = node_hash(h, r)
        return r


class MemoryTree:
    """A whole tree in memory: for auditors recomputing roots from a file."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.frontier = Frontier()

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash."""
        for level, index, h in self.frontier.append(leaf):
            self.nodes[(level, index)] = h

    def get(self, level: int, index: int) -> bytes:
        """A complete subtree hash (the :data:`NodeGetter` of this tree)."""
        return self.nodes[(level, index)]

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self.frontier.size

    def root(self, size: int | None = None) -> bytes:
        """The root at ``size`` (default: now)."""
        return root(self.get, self.size if size is None else size)
