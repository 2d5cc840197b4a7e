"""RFC 6962 Merkle Tree Hash: domain separation, no padding, the RFC's own split."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from contextfs.model.merkle import EMPTY_ROOT, leaf_hash, node_hash, root


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, written as the RFC states it."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(
        b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])
    ).digest()


@given(st.lists(st.binary(max_size=8), max_size=70))
def test_root_matches_the_rfc_definition(leaves: list[bytes]) -> None:
    assert root(leaves) == reference_root(leaves)


def test_known_vector_and_empty_tree() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    # RFC 6962 test data: the root of the single empty leaf.
    assert root([b""]).hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"


def test_no_padding_collision_and_domain_separation() -> None:
    a = b"a"
    assert root([a]) != root([a, b""])
    assert root([a, a]) != root([a])
    # A leaf whose data is an interior node's preimage does not collide with that node.
    forged = leaf_hash(a) + leaf_hash(b"b")
    assert root([forged]) != root([a, b"b"])
    assert node_hash(leaf_hash(a), leaf_hash(b"b")) == root([a, b"b"])
