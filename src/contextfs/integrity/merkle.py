"""RFC 6962 / RFC 9162 Merkle Tree Hash.

The hashing follows RFC 6962 section 2.1 exactly, so any independent verifier
agrees with it: a leaf is ``SHA-256(0x00 || data)``, an interior node is
``SHA-256(0x01 || left || right)`` (the prefixes are the domain separation whose
absence let the seed forge second preimages), the split point is the largest
power of two strictly below ``n`` (no padding leaves, so ``[a]`` and
``[a, pad]`` never collide), and the empty tree hashes to ``SHA-256("")``.
All hashes are 32 raw bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

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
