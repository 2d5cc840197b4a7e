"""RFC 6962 / RFC 9162 Merkle Tree Hash.

The hashing follows RFC 6962 section 2.1 exactly, so any independent verifier
agrees with it: a leaf is ``SHA-256(0x00 || data)``, an interior node is
``SHA-256(0x01 || left || right)`` (the prefixes are the domain separation whose
absence let the seed forge second preimages), the split point is the largest
power of two strictly below ``n`` (no padding leaves, so ``[a]`` and
``[a, pad]`` never collide), and the empty tree hashes to ``SHA-256("")``.
All hashes are 32 raw bytes.

Proofs are the RFC's own: inclusion proofs are ``PATH(m, D[n])`` (RFC 6962
section 2.1.1) and consistency proofs ``PROOF(m, D[n])`` (section 2.1.2), built
by loops that follow the recursive definitions; verification is the iterative
algorithm of RFC 9162 sections 2.1.3.2 and 2.1.4.2. Proof generation raises
:class:`~contextfs.errors.InvalidInputError` for an index or size outside the
tree; verification treats everything it is given as untrusted and answers
False, never raising, for anything malformed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ..errors import InvalidInputError

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """Hash one leaf's data with the RFC 6962 leaf prefix."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two child hashes with the RFC 6962 interior-node prefix."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root(leaves: Sequence[bytes]) -> bytes:
    """Return the Merkle Tree Hash of ``leaves`` (raw leaf data, in order)."""
    return root_of_hashes([leaf_hash(leaf) for leaf in leaves])


def root_of_hashes(hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle Tree Hash given the leaf hashes rather than the data.

    Folding level by level, pairing left to right and carrying an odd last
    hash upwards, yields exactly RFC 6962's recursive split at the largest
    power of two below n, without recursion.
    """
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


# -- a growing log: the frontier (compact range) of an append-only tree -----------


def extend_frontier(frontier: Sequence[bytes], size: int, hashes: Sequence[bytes]) -> list[bytes]:
    """Return the frontier of a log of ``size`` leaves after appending leaf ``hashes``.

    The frontier of a tree of ``n`` leaves is the roots of its perfect
    subtrees, one per set bit of ``n``, largest first: at most 64 hashes that
    let an append-only log keep its RFC 6962 root current without rereading
    any leaf (a transparency log's "compact range").

    Raises:
        InvalidInputError: ``frontier`` does not have one hash per set bit of ``size``.
    """
    if not _is_count(size) or len(frontier) != size.bit_count():
        raise InvalidInputError(
            f"a frontier for {size!r} leaves needs {int(size).bit_count()} hashes,"
            f" got {len(frontier)}"
        )
    stack = list(frontier)
    for leaf in hashes:
        stack.append(leaf)
        size += 1
        merges = size
        while merges & 1 == 0:  # one merge per trailing zero bit of the new size
            right = stack.pop()
            stack.append(node_hash(stack.pop(), right))
            merges >>= 1
    return stack


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """Return the RFC 6962 root of the log whose frontier is ``frontier``."""
    if not frontier:
        return EMPTY_ROOT
    result = frontier[-1]
    for subtree in reversed(frontier[:-1]):
        result = node_hash(subtree, result)
    return result


# -- proofs (RFC 6962 section 2.1.1 and 2.1.2; verification per RFC 9162) ------------

#: Sizes and indexes are uint64 in RFC 6962; anything larger is refused.
_MAX_SIZE = 1 << 64
HASH_SIZE = 32


def _split(n: int) -> int:
    """Return the largest power of two strictly less than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _MAX_SIZE


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _hash_list(proof: object) -> list[bytes] | None:
    """Return ``proof`` as a list of 32-byte hashes, or None if it is anything else."""
    if isinstance(proof, bytes | bytearray | memoryview | str) or not isinstance(proof, Sequence):
        return None
    try:
        # A caller's own Sequence type may misbehave; verification must not raise.
        items = list(proof)
    except Exception:
        return None
    if not all(_is_hash(item) for item in items):
        return None
    return items


def inclusion_path(hashes: Sequence[bytes], index: int) -> list[tuple[bytes, bool]]:
    """Return the audit path of leaf ``index`` with each sibling's side.

    This is RFC 6962's ``PATH(m, D[n])`` unrolled into a loop: going down from
    the root, the subtree not holding ``m`` contributes its hash; the list is
    then reversed so it runs from the leaf up, as the RFC orders it.

    Args:
        hashes: the tree's leaf hashes (already ``leaf_hash``-ed), in order.
        index: the leaf's position, ``0 <= index < len(hashes)``.

    Returns:
        ``(sibling_hash, sibling_is_left)`` pairs from the leaf up to the root.

    Raises:
        InvalidInputError: ``index`` is not a position in the tree.
    """
    size = len(hashes)
    if not _is_count(index) or index >= size:
        raise InvalidInputError(f"leaf index {index!r} is out of range for a tree of {size} leaves")
    path: list[tuple[bytes, bool]] = []
    low, high = 0, size
    while high - low > 1:
        middle = low + _split(high - low)
        if index < middle:
            path.append((root_of_hashes(hashes[middle:high]), False))
            high = middle
        else:
            path.append((root_of_hashes(hashes[low:middle]), True))
            low = middle
    path.reverse()
    return path


def inclusion_proof_from_hashes(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Return the RFC 6962 inclusion proof of leaf ``index`` given the leaf hashes.

    Raises:
        InvalidInputError: ``index`` is not a position in the tree.
    """
    return [sibling for sibling, _ in inclusion_path(hashes, index)]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Return the RFC 6962 inclusion proof (audit path) of leaf ``index``.

    Args:
        leaves: the tree's raw leaf data, in order.
        index: the leaf's position, ``0 <= index < len(leaves)``.

    Returns:
        The sibling hashes from the leaf up to the root (``PATH(m, D[n])``).

    Raises:
        InvalidInputError: ``index`` is not a position in the tree.
    """
    return inclusion_proof_from_hashes([leaf_hash(leaf) for leaf in leaves], index)


def _inclusion_root(leaf: bytes, index: int, size: int, proof: list[bytes]) -> bytes | None:
    """Run RFC 9162 section 2.1.3.2 and return the root it computes, or None if it fails."""
    if index >= size:
        return None
    fn, sn, result = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            return None  # the proof is longer than the path
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            # A right-edge node with no right sibling: climb until it is a right child.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    return result if sn == 0 else None


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Check an RFC 6962 inclusion proof (RFC 9162 section 2.1.3.2).

    The proof does not bind ``size`` beyond the path's shape: sizes whose
    audit path for ``index`` has the same shape verify alike. Bind the size by
    trusting ``(size, root)`` together, as a signed tree head does.

    Args:
        leaf_hash: the leaf's hash (``leaf_hash(data)``), 32 bytes.
        index: the leaf's position.
        size: the tree's leaf count.
        proof: the sibling hashes from the leaf up.
        root: the trusted root, 32 bytes.

    Returns:
        True if the proof shows the leaf at ``index`` under ``root``; False for
        any other input, malformed or of the wrong type (it never raises).
    """
    hashes = _hash_list(proof)
    if (
        hashes is None
        or not (_is_hash(leaf_hash) and _is_hash(root))
        or not (_is_count(index) and _is_count(size))
    ):
        return False
    return _inclusion_root(leaf_hash, index, size, hashes) == root


def consistency_proof_from_hashes(hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Return the RFC 6962 consistency proof from ``old_size`` given the leaf hashes.

    Raises:
        InvalidInputError: ``old_size`` is not between 0 and ``len(hashes)``.
    """
    size = len(hashes)
    if not _is_count(old_size) or old_size > size:
        raise InvalidInputError(
            f"old tree size {old_size!r} is out of range for a tree of {size} leaves"
        )
    if old_size in (0, size):
        return []  # outside RFC 6962's 0 < m < n: nothing to prove
    # SUBPROOF(m, D[low:high], complete) unrolled: collect outermost first, reverse at the end.
    proof: list[bytes] = []
    low, high, m, complete = 0, size, old_size, True
    while m != high - low:
        middle = low + _split(high - low)
        if m <= middle - low:
            proof.append(root_of_hashes(hashes[middle:high]))
            high = middle
        else:
            proof.append(root_of_hashes(hashes[low:middle]))
            m -= middle - low
            low = middle
            complete = False
    if not complete:
        proof.append(root_of_hashes(hashes[low:high]))
    proof.reverse()
    return proof


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """Return the RFC 6962 consistency proof ``PROOF(old_size, D[n])``.

    For ``old_size`` 0 or ``len(leaves)`` (outside the RFC's ``0 < m < n``) the
    proof is empty.

    Args:
        leaves: the new tree's raw leaf data, in order.
        old_size: the earlier tree's leaf count, a prefix of ``leaves``.

    Returns:
        The proof's node hashes, in the RFC's order.

    Raises:
        InvalidInputError: ``old_size`` is not between 0 and ``len(leaves)``.
    """
    return consistency_proof_from_hashes([leaf_hash(leaf) for leaf in leaves], old_size)


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Check an RFC 6962 consistency proof (RFC 9162 section 2.1.4.2).

    Beyond the RFC's ``0 < old_size < new_size``: equal sizes are consistent
    when the proof is empty and the roots are equal, and the empty tree (root
    ``SHA-256("")``) is consistent with every tree, with an empty proof.

    Returns:
        True if the tree ``new_root`` of ``new_size`` leaves extends the tree
        ``old_root`` of ``old_size`` leaves; False for any other input,
        malformed or of the wrong type (it never raises).
    """
    hashes = _hash_list(proof)
    if (
        hashes is None
        or not (_is_hash(old_root) and _is_hash(new_root))
        or not (_is_count(old_size) and _is_count(new_size))
        or old_size > new_size
    ):
        return False
    if old_size == new_size:
        return not hashes and old_root == new_root
    if old_size == 0:
        return not hashes and old_root == EMPTY_ROOT
    if not hashes:
        return False
    if old_size & (old_size - 1) == 0:
        hashes.insert(0, old_root)  # the old tree is a complete subtree: its root starts the path
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    old_result = new_result = hashes[0]
    for node in hashes[1:]:
        if sn == 0:
            return False  # the proof is longer than the paths
        if fn & 1 or fn == sn:
            old_result = node_hash(node, old_result)
            new_result = node_hash(node, new_result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            new_result = node_hash(new_result, node)
        fn >>= 1
        sn >>= 1
    return sn == 0 and old_result == old_root and new_result == new_root
