"""RFC 6962 inclusion and consistency proofs against the RFC's own definitions.

The reference functions below are written from the text of RFC 6962 section 2.1
(MTH, PATH, PROOF and SUBPROOF), recursively and without shortcuts, so the code
under test (loops, and RFC 9162's iterative verifiers) is checked against the
definitions rather than against another implementation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contextfs.errors import InvalidInputError
from contextfs.model.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    consistency_proof_from_hashes,
    inclusion_path,
    inclusion_proof,
    inclusion_proof_from_hashes,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# -- the RFC 6962 definitions, as written -----------------------------------------------


def k_of(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 section 2.1."""
    if len(d) == 0:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = k_of(len(d))
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 section 2.1.1."""
    if len(d) == 1:
        return []
    k = k_of(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 6962 section 2.1.2."""
    if m == len(d):
        return [] if b else [mth(d)]
    k = k_of(len(d))
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 6962 section 2.1.2."""
    return subproof(m, d, True)


def path_shape(m: int, n: int) -> tuple[bool, ...]:
    """Which side each sibling of PATH(m, D[n]) is on (True: left), leaf up."""
    if n == 1:
        return ()
    k = k_of(n)
    if m < k:
        return (*path_shape(m, k), False)
    return (*path_shape(m - k, n - k), True)


def proof_shape(m: int, n: int, b: bool = True) -> tuple[str, ...]:
    """How each node of PROOF(m, D[n]) is used: seed, left or right sibling."""
    if m == n:
        return () if b else ("seed",)
    k = k_of(n)
    if m <= k:
        return (*proof_shape(m, k, b), "right")
    return (*proof_shape(m - k, n - k, False), "left")


def data(n: int, salt: bytes = b"") -> list[bytes]:
    """n distinct leaves (distinct, so no two subtrees share a hash)."""
    return [salt + b"leaf-" + i.to_bytes(2, "big") for i in range(n)]


def flip(value: bytes, bit: int) -> bytes:
    changed = bytearray(value)
    changed[bit // 8 % len(value)] ^= 1 << bit % 8
    return bytes(changed)


# -- known answers: every tree of 1..8 leaves -------------------------------------------


@pytest.mark.parametrize("n", range(1, 9))
def test_small_trees_match_the_rfc_definitions(n: int) -> None:
    d = data(n)
    assert root(d) == mth(d)
    for m in range(n):
        assert inclusion_proof(d, m) == path(m, d)
        assert verify_inclusion(leaf_hash(d[m]), m, n, path(m, d), mth(d))
        siblings = inclusion_path([leaf_hash(x) for x in d], m)
        assert [side for _, side in siblings] == list(path_shape(m, n))
    for m in range(1, n):
        assert consistency_proof(d, m) == proof(m, d)
        assert verify_consistency(m, n, mth(d[:m]), mth(d), proof(m, d))


def test_small_tree_proofs_written_out() -> None:
    # Trees of one to four leaves, each node hashed by hand from the definitions.
    d = [b"d0", b"d1", b"d2", b"d3"]
    a, b, c, e = (hashlib.sha256(b"\x00" + x).digest() for x in d)
    ab = hashlib.sha256(b"\x01" + a + b).digest()
    ce = hashlib.sha256(b"\x01" + c + e).digest()
    assert root(d[:1]) == a
    assert inclusion_proof(d[:1], 0) == []
    assert root(d[:2]) == ab
    assert inclusion_proof(d[:2], 1) == [a]
    assert root(d[:3]) == hashlib.sha256(b"\x01" + ab + c).digest()
    assert inclusion_proof(d[:3], 2) == [ab]
    assert inclusion_proof(d[:3], 0) == [b, c]
    assert root(d) == hashlib.sha256(b"\x01" + ab + ce).digest()
    assert inclusion_proof(d, 2) == [e, ab]
    assert consistency_proof(d[:3], 1) == [b, c]
    assert consistency_proof(d, 2) == [ce]
    assert consistency_proof(d, 3) == [c, e, ab]


# -- the RFC 6962 section 2.1.3 example tree of 7 leaves ------------------------------


class SevenLeafTree:
    """The nodes of RFC 6962's example, by the names the RFC gives them."""

    def __init__(self) -> None:
        self.d = [f"d{i}".encode() for i in range(7)]
        a, b, c, d, e, f, j = (leaf_hash(x) for x in self.d)
        g, h, i = node_hash(a, b), node_hash(c, d), node_hash(e, f)
        k, l = node_hash(g, h), node_hash(i, j)  # noqa: E741 - the RFC's name
        self.nodes = dict(zip("abcdefghijkl", (a, b, c, d, e, f, g, h, i, j, k, l), strict=True))
        self.hash = node_hash(k, l)
        self.hash0 = node_hash(g, c)  # the tree of 3 leaves
        self.hash1 = k  # the tree of 4 leaves
        self.hash2 = node_hash(k, i)  # the tree of 6 leaves

    def named(self, names: str) -> list[bytes]:
        return [self.nodes[name] for name in names]


def test_rfc_example_roots() -> None:
    tree = SevenLeafTree()
    assert root(tree.d) == tree.hash
    assert root(tree.d[:3]) == tree.hash0
    assert root(tree.d[:4]) == tree.hash1
    assert root(tree.d[:6]) == tree.hash2


@pytest.mark.parametrize(("index", "names"), [(0, "bhl"), (3, "cgl"), (4, "fjk"), (6, "ik")])
def test_rfc_example_audit_paths(index: int, names: str) -> None:
    tree = SevenLeafTree()
    assert inclusion_proof(tree.d, index) == tree.named(names)
    assert verify_inclusion(leaf_hash(tree.d[index]), index, 7, tree.named(names), tree.hash)


@pytest.mark.parametrize(
    ("old_size", "old_root", "names"),
    [(3, "hash0", "cdgl"), (4, "hash1", "l"), (6, "hash2", "ijk")],
)
def test_rfc_example_consistency_proofs(old_size: int, old_root: str, names: str) -> None:
    tree = SevenLeafTree()
    assert consistency_proof(tree.d, old_size) == tree.named(names)
    old = getattr(tree, old_root)
    assert verify_consistency(old_size, 7, old, tree.hash, tree.named(names))
    assert not verify_consistency(old_size, 7, tree.hash, old, tree.named(names))


# -- edges of the size range ------------------------------------------------------------


def test_out_of_range_generation_raises() -> None:
    d = data(5)
    for bad in (-1, 5, 99):
        with pytest.raises(InvalidInputError, match=rf"leaf index {bad} is out of range"):
            inclusion_proof(d, bad)
    with pytest.raises(InvalidInputError, match="out of range for a tree of 0 leaves"):
        inclusion_proof([], 0)
    with pytest.raises(InvalidInputError, match="leaf index True"):
        inclusion_proof(d, True)
    for bad in (-1, 6):
        with pytest.raises(InvalidInputError, match=rf"old tree size {bad} is out of range"):
            consistency_proof(d, bad)
    with pytest.raises(InvalidInputError):
        inclusion_proof_from_hashes([leaf_hash(x) for x in d], 5)
    with pytest.raises(InvalidInputError):
        consistency_proof_from_hashes([leaf_hash(x) for x in d], 6)


def test_trivial_consistency() -> None:
    d = data(5)
    assert consistency_proof(d, 5) == []
    assert consistency_proof(d, 0) == []
    assert verify_consistency(5, 5, root(d), root(d), [])
    assert not verify_consistency(5, 5, root(d), root(d[:4]), [])
    assert not verify_consistency(5, 5, root(d), root(d), [root(d)])
    assert verify_consistency(0, 5, EMPTY_ROOT, root(d), [])
    assert not verify_consistency(0, 5, root(d[:1]), root(d), [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, root(d), [root(d)])
    # Sizes in the wrong order, and an empty proof where the RFC requires one.
    assert not verify_consistency(5, 4, root(d), root(d[:4]), consistency_proof(d, 4))
    assert not verify_consistency(4, 5, root(d[:4]), root(d), [])


def test_a_leaf_hash_posing_as_a_node_fails() -> None:
    # Second preimage: present the two children of a node as one leaf's data.
    d = data(4)
    left, right = root(d[:2]), root(d[2:])
    assert not verify_inclusion(leaf_hash(left + right), 0, 1, [], root(d))
    assert root([left + right]) != root(d)
    # The forged "leaf" cannot stand in for the left subtree of a 2-leaf view either.
    assert not verify_inclusion(leaf_hash(left), 0, 2, [right], root(d))


# -- properties: random sizes 1..200 ----------------------------------------------------

_sizes = st.integers(min_value=1, max_value=200)


@st.composite
def tree_and_index(draw: st.DrawFn) -> tuple[list[bytes], int]:
    n = draw(_sizes)
    return data(n, draw(st.binary(max_size=4))), draw(st.integers(0, n - 1))


@st.composite
def tree_and_old_size(draw: st.DrawFn) -> tuple[list[bytes], int]:
    n = draw(st.integers(min_value=2, max_value=200))
    return data(n, draw(st.binary(max_size=4))), draw(st.integers(1, n - 1))


@settings(max_examples=150, deadline=None)
@given(tree_and_index())
def test_inclusion_proofs_match_path_and_verify(case: tuple[list[bytes], int]) -> None:
    d, m = case
    got = inclusion_proof(d, m)
    assert got == path(m, d)
    assert verify_inclusion(leaf_hash(d[m]), m, len(d), got, root(d))
    assert verify_inclusion(leaf_hash(d[m]), m, len(d), tuple(got), root(d))


@settings(max_examples=150, deadline=None)
@given(tree_and_old_size())
def test_consistency_proofs_match_proof_and_verify(case: tuple[list[bytes], int]) -> None:
    d, m = case
    got = consistency_proof(d, m)
    assert got == proof(m, d)
    assert verify_consistency(m, len(d), root(d[:m]), root(d), got)


@settings(max_examples=200, deadline=None)
@given(tree_and_index(), st.sampled_from(["leaf", "proof", "index", "size", "root"]), st.data())
def test_any_single_bit_tamper_breaks_inclusion(
    case: tuple[list[bytes], int], target: str, draw: st.DataObject
) -> None:
    d, m = case
    n, leaf, good, top = len(d), leaf_hash(d[m]), inclusion_proof(d, m), root(d)
    bit = draw.draw(st.integers(0, 255))
    if target == "leaf":
        assert not verify_inclusion(flip(leaf, bit), m, n, good, top)
    elif target == "root":
        assert not verify_inclusion(leaf, m, n, good, flip(top, bit))
    elif target == "proof":
        if not good:
            return
        at = draw.draw(st.integers(0, len(good) - 1))
        bad = [flip(h, bit) if i == at else h for i, h in enumerate(good)]
        assert not verify_inclusion(leaf, m, n, bad, top)
    elif target == "index":
        assert not verify_inclusion(leaf, m ^ (1 << bit % 9), n, good, top)
    else:
        # RFC 6962 proofs bind the size only through the path's shape: a size
        # whose audit path for m has the same shape verifies alike (the trusted
        # (size, root) pair binds it). Any other size fails.
        other = n ^ (1 << bit % 9)
        same_shape = m < other and path_shape(m, other) == path_shape(m, n)
        assert verify_inclusion(leaf, m, other, good, top) == same_shape


@settings(max_examples=200, deadline=None)
@given(
    tree_and_old_size(),
    st.sampled_from(["old_root", "new_root", "proof", "old_size", "new_size"]),
    st.data(),
)
def test_any_single_bit_tamper_breaks_consistency(
    case: tuple[list[bytes], int], target: str, draw: st.DataObject
) -> None:
    d, m = case
    n, good, old, new = len(d), consistency_proof(d, m), root(d[:m]), root(d)
    bit = draw.draw(st.integers(0, 255))
    if target == "old_root":
        assert not verify_consistency(m, n, flip(old, bit), new, good)
    elif target == "new_root":
        assert not verify_consistency(m, n, old, flip(new, bit), good)
    elif target == "proof":
        at = draw.draw(st.integers(0, len(good) - 1))
        bad = [flip(h, bit) if i == at else h for i, h in enumerate(good)]
        assert not verify_consistency(m, n, old, new, bad)
    else:
        # As with inclusion, sizes are bound only through the proof's shape.
        m2, n2 = (m ^ (1 << bit % 9), n) if target == "old_size" else (m, n ^ (1 << bit % 9))
        same_shape = 0 < m2 < n2 and proof_shape(m2, n2) == proof_shape(m, n)
        assert verify_consistency(m2, n2, old, new, good) == same_shape


@settings(max_examples=100, deadline=None)
@given(tree_and_index(), st.integers(1, 3), st.binary(min_size=32, max_size=32))
def test_truncated_or_extended_inclusion_proofs_fail(
    case: tuple[list[bytes], int], cut: int, extra: bytes
) -> None:
    d, m = case
    good = inclusion_proof(d, m)
    args = (leaf_hash(d[m]), m, len(d))
    if good:
        assert not verify_inclusion(*args, good[:-cut], root(d))
        assert not verify_inclusion(*args, good[cut:], root(d))
    assert not verify_inclusion(*args, [*good, extra], root(d))
    assert not verify_inclusion(*args, [extra, *good], root(d))
    assert not verify_inclusion(*args, [*good, *good], root(d)) or not good


@settings(max_examples=100, deadline=None)
@given(tree_and_old_size(), st.integers(1, 3), st.binary(min_size=32, max_size=32))
def test_truncated_or_extended_consistency_proofs_fail(
    case: tuple[list[bytes], int], cut: int, extra: bytes
) -> None:
    d, m = case
    good = consistency_proof(d, m)
    args = (m, len(d), root(d[:m]), root(d))
    assert not verify_consistency(*args, good[:-cut])
    assert not verify_consistency(*args, good[cut:])
    assert not verify_consistency(*args, [*good, extra])
    assert not verify_consistency(*args, [extra, *good])


_garbage = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.binary(max_size=40),
    st.text(max_size=40),
    st.lists(st.one_of(st.binary(max_size=33), st.integers(), st.none()), max_size=5),
    st.builds(bytearray, st.binary(min_size=32, max_size=32)),
)


@settings(max_examples=300, deadline=None)
@given(_garbage, _garbage, _garbage, _garbage, _garbage)
def test_garbage_never_raises(a: object, b: object, c: object, d: object, e: object) -> None:
    assert verify_inclusion(a, b, c, d, e) is False  # type: ignore[arg-type]
    assert verify_consistency(a, b, c, d, e) is False  # type: ignore[arg-type]


def test_malformed_inputs_of_a_real_proof_return_false() -> None:
    d = data(6)
    leaf, good, top = leaf_hash(d[2]), inclusion_proof(d, 2), root(d)
    assert verify_inclusion(leaf, 2, 6, good, top)
    for args in [
        (leaf, 6, 6, good, top),  # index out of range
        (leaf, -1, 6, good, top),
        (leaf, 2, 0, good, top),
        (leaf, True, 6, good, top),  # bool is not an index
        (leaf, 2.0, 6, good, top),
        (leaf, 2, 2**64 + 6, good, top),
        (leaf[:31], 2, 6, good, top),  # short hashes
        (leaf, 2, 6, good, top + b"\x00"),
        (leaf, 2, 6, [h[:31] for h in good], top),
        (leaf, 2, 6, b"".join(good), top),  # bytes is not a list of hashes
        (leaf, 2, 6, [h.hex() for h in good], top),
        (bytearray(leaf), 2, 6, good, top),
        (leaf, 2, 6, None, top),
        (leaf, 2, 6, iter(good), top),
    ]:
        assert verify_inclusion(*args) is False  # type: ignore[arg-type]
    cgood = consistency_proof(d, 3)
    assert verify_consistency(3, 6, root(d[:3]), top, cgood)
    for cargs in [
        (6, 3, root(d[:3]), top, cgood),
        (-3, 6, root(d[:3]), top, cgood),
        (3, 6, root(d[:3]).hex(), top, cgood),
        (3, 6, root(d[:3]), top, [*cgood[:-1], cgood[-1][:31]]),
        (3, 2**64, root(d[:3]), top, cgood),
        (3, 6, root(d[:3]), top, "not a proof"),
    ]:
        assert verify_consistency(*cargs) is False  # type: ignore[arg-type]


class _BrokenSequence(Sequence[bytes]):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: object) -> bytes:  # type: ignore[override]
        raise RuntimeError("a caller's sequence misbehaves")


def test_a_misbehaving_sequence_is_rejected_not_raised() -> None:
    d = data(3)
    assert verify_inclusion(leaf_hash(d[0]), 0, 3, _BrokenSequence(), root(d)) is False
    assert verify_consistency(1, 3, root(d[:1]), root(d), _BrokenSequence()) is False
