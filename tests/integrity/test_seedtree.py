"""The seed's ContextMerkleTree, without the seed's defects (DESIGN.md section 2, defect 6)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contextfs.errors import InvalidInputError
from contextfs.integrity.seedtree import ContextMerkleTree
from contextfs.model.merkle import inclusion_proof, leaf_hash, node_hash, root
from contextfs.model.objects import MemoryAtom
from contextfs.model.types import T_INT, T_STRING

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def atom(text: str, relevance: float = 1.0) -> MemoryAtom:
    return MemoryAtom(text, T_STRING, WHEN, "src", relevance)


ATOMS = [atom(f"memory {i}") for i in range(7)]


def test_the_seed_demo_verifies() -> None:
    # The seed's demo, line for line.
    atoms = ATOMS
    tree = ContextMerkleTree(atoms)
    proof = tree.get_proof(atoms[0])
    assert tree.verify_proof(atoms[0].content_hash, proof, tree.root_hash)


def test_full_length_rfc_6962_hashes() -> None:
    tree = ContextMerkleTree(ATOMS)
    assert len(tree.root_hash) == 64
    assert tree.root == root([a.digest for a in ATOMS])
    for index, member in enumerate(ATOMS):
        proof = tree.get_proof(member)
        assert all(len(sibling) == 64 for sibling, _ in proof)
        assert [bytes.fromhex(s) for s, _ in proof] == inclusion_proof(tree.leaves, index)
        assert tree.verify_proof(member.content_hash, proof, tree.root_hash)


def test_empty_and_single_trees() -> None:
    empty = ContextMerkleTree([])
    assert empty.root_hash == hashlib.sha256(b"").hexdigest()
    assert len(empty) == 0
    with pytest.raises(InvalidInputError, match=repr(ATOMS[0].content_hash)):
        empty.get_proof(ATOMS[0])
    single = ContextMerkleTree(ATOMS[:1])
    assert single.root_hash == leaf_hash(ATOMS[0].digest).hex()
    assert single.get_proof(ATOMS[0]) == []
    assert single.verify_proof(ATOMS[0].content_hash, [], single.root_hash)


def test_duplicates_are_one_leaf_and_every_copy_proves() -> None:
    # The seed proved only the first copy of a repeated atom. Entry fields are
    # not identity: the same content and type with other relevance is one atom.
    twin = atom("memory 0", relevance=0.2)
    atoms = [ATOMS[0], ATOMS[1], twin, ATOMS[0], ATOMS[2]]
    tree = ContextMerkleTree(atoms)
    assert tree.leaves == (ATOMS[0].digest, ATOMS[1].digest, ATOMS[2].digest)
    assert tree.root_hash == ContextMerkleTree(ATOMS[:3]).root_hash
    for member in atoms:
        assert tree.verify_proof(member.content_hash, tree.get_proof(member), tree.root_hash)
    assert tree.get_proof(twin) == tree.get_proof(ATOMS[0])


def test_no_padding_collision() -> None:
    # The seed padded [a] to a power of two with "0" * 16, so [a] and [a, pad] collided.
    a, b, c, d = ATOMS[:4]
    assert ContextMerkleTree([a]).root_hash != ContextMerkleTree([a, b]).root_hash
    assert ContextMerkleTree([a, b, c]).root_hash != ContextMerkleTree([a, b, c, d]).root_hash
    # The seed's padded 3-leaf root was H(H(a, b), H(c, pad)); ours is H(H(a, b), c).
    three = ContextMerkleTree([a, b, c]).root
    assert three == node_hash(
        node_hash(*(leaf_hash(x.digest) for x in (a, b))), leaf_hash(c.digest)
    )
    padded = ContextMerkleTree([a]).root_hash
    assert padded != node_hash(leaf_hash(a.digest), leaf_hash(bytes(32))).hex()
    assert ContextMerkleTree([a, b]).root_hash != ContextMerkleTree([b, a]).root_hash


def test_a_node_posing_as_a_leaf_is_refused() -> None:
    # Second preimage: claim an interior node's hash is an atom's id, and offer
    # the rest of the path. Without leaf/node prefixes the seed accepted it.
    tree = ContextMerkleTree(ATOMS[:4])
    left = node_hash(leaf_hash(ATOMS[0].digest), leaf_hash(ATOMS[1].digest))
    right = node_hash(leaf_hash(ATOMS[2].digest), leaf_hash(ATOMS[3].digest))
    assert node_hash(left, right).hex() == tree.root_hash
    assert not tree.verify_proof(left.hex(), [(right.hex(), False)], tree.root_hash)
    # Nor can the two children, concatenated, pass as one leaf of a one-leaf tree.
    assert not tree.verify_proof(hashlib.sha256(left + right).hexdigest(), [], tree.root_hash)


def test_absent_atom_is_named() -> None:
    tree = ContextMerkleTree(ATOMS[:3])
    stranger = MemoryAtom("memory 0", T_INT, WHEN)  # same content, other type: other atom
    with pytest.raises(InvalidInputError) as raised:
        tree.get_proof(stranger)
    assert str(raised.value) == f"atom {stranger.content_hash!r} is not in this Merkle tree"


def test_constructor_refuses_non_atoms() -> None:
    with pytest.raises(InvalidInputError, match="takes MemoryAtoms"):
        ContextMerkleTree([ATOMS[0], "memory 1"])  # type: ignore[list-item]


def test_tampered_proofs_fail() -> None:
    tree = ContextMerkleTree(ATOMS)
    member = ATOMS[5]
    proof = tree.get_proof(member)
    assert tree.verify_proof(member.content_hash, proof, tree.root_hash)
    assert not tree.verify_proof(ATOMS[4].content_hash, proof, tree.root_hash)
    assert not tree.verify_proof(member.content_hash, proof[:-1], tree.root_hash)
    assert not tree.verify_proof(member.content_hash, [*proof, proof[0]], tree.root_hash)
    flipped = [(s, not left) if i == 0 else (s, left) for i, (s, left) in enumerate(proof)]
    assert not tree.verify_proof(member.content_hash, flipped, tree.root_hash)
    for i, (sibling, left) in enumerate(proof):
        changed = ("0" if sibling[0] != "0" else "1") + sibling[1:]
        bad = [*proof[:i], (changed, left), *proof[i + 1 :]]
        assert not tree.verify_proof(member.content_hash, bad, tree.root_hash)
    # The seed's 16-hex ids and roots are not accepted in place of full ones.
    assert not tree.verify_proof(member.content_hash[:16], proof, tree.root_hash)
    assert not tree.verify_proof(member.content_hash, proof, tree.root_hash[:16])


def test_proofs_survive_a_json_round_trip() -> None:
    tree = ContextMerkleTree(ATOMS)
    as_lists = [[sibling, left] for sibling, left in tree.get_proof(ATOMS[3])]
    assert tree.verify_proof(ATOMS[3].content_hash, as_lists, tree.root_hash)  # type: ignore[arg-type]


_junk = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=70),
    st.binary(max_size=40),
    st.lists(
        st.one_of(
            st.tuples(st.text(max_size=70), st.booleans()),
            st.tuples(st.integers(), st.integers()),
            st.lists(st.text(max_size=3), max_size=3),
            st.none(),
        ),
        max_size=4,
    ),
)


@settings(max_examples=200, deadline=None)
@given(_junk, _junk, _junk)
def test_verify_proof_never_raises(atom_hash: object, proof: object, root_hash: object) -> None:
    assert ContextMerkleTree.verify_proof(atom_hash, proof, root_hash) is False  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=60))
def test_every_atom_of_any_list_proves(picks: list[int]) -> None:
    atoms = [atom(f"memory {i}") for i in picks]
    tree = ContextMerkleTree(atoms)
    assert len(tree) == len(set(picks))
    for member in atoms:
        assert tree.verify_proof(member.content_hash, tree.get_proof(member), tree.root_hash)
