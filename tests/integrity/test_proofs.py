"""Membership and non-membership proofs on real snapshots, tied to a commit.

Proof sizes, measured on this file's 5,000-atom snapshot: a membership proof
has 3 steps (root, interior, leaf; 4 for the 67 atoms in crowded subtrees) and
its JSON is 1,969 bytes on average (1,279 to 2,286; 1,942 for the first atom);
a non-membership proof lists one node in full and averages 4,050 bytes (1,823
to 5,709 over 500 absent keys). Verifying one membership proof takes about
50 microseconds. ``test_proof_sizes_at_5000_atoms`` keeps the sizes bounded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contextfs.errors import CorruptObjectError, InvalidInputError
from contextfs.history.tree import LEAF_CAPACITY
from contextfs.integrity.proofs import (
    MembershipProof,
    NonMembershipProof,
    ProofStep,
    proof_from_json,
    prove,
    verify,
    verify_membership,
    verify_non_membership,
)
from contextfs.model import canonical
from contextfs.model.merkle import leaf_hash, verify_inclusion
from contextfs.model.objects import MemoryAtom, MemoryMolecule
from contextfs.model.types import T_STRING
from contextfs.repo import Repository

FORMAT = Path(__file__).parents[2] / "docs" / "FORMAT.md"
WHEN = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Snapshot:
    repo: Repository
    atoms: list[MemoryAtom]
    commit_id: str
    commit: bytes

    @property
    def tree(self) -> bytes:
        return self.repo.load_commit(bytes.fromhex(self.commit_id)).tree

    def prove(self, key: bytes) -> MembershipProof | NonMembershipProof:
        return prove(self.repo.trees, self.commit, key)

    def member(self, index: int) -> MembershipProof:
        proof = self.prove(self.atoms[index].digest)
        assert isinstance(proof, MembershipProof)
        return proof

    def absent(self, seed: int) -> NonMembershipProof:
        proof = self.prove(absent_key(seed))
        assert isinstance(proof, NonMembershipProof)
        return proof


def make_atoms(n: int, prefix: str = "memory") -> list[MemoryAtom]:
    return [
        MemoryAtom(f"{prefix} {i}", T_STRING, WHEN, f"source {i % 7}", (i % 10) / 10)
        for i in range(n)
    ]


def commit_bytes(repo: Repository, commit_id: str) -> bytes:
    stored = repo.store.get_object(bytes.fromhex(commit_id))
    assert stored is not None
    return stored.data


def build(n: int) -> Snapshot:
    repo = Repository.memory()
    atoms = make_atoms(n)
    if atoms:
        repo.add_atoms(atoms)
    commit_id = repo.commit(f"{n} memories", allow_empty=True)
    return Snapshot(repo, atoms, commit_id, commit_bytes(repo, commit_id))


def absent_key(seed: int) -> bytes:
    return hashlib.sha256(f"never added {seed}".encode()).digest()


@pytest.fixture(scope="module", params=[1, 40, 5000])
def snap(request: pytest.FixtureRequest) -> Snapshot:
    n: int = request.param
    return build(n)


def flip(data: bytes, at: int, bit: int = 0) -> bytes:
    changed = bytearray(data)
    changed[at] ^= 1 << bit
    return bytes(changed)


def replace_step(proof: MembershipProof, at: int, **changes: Any) -> MembershipProof:
    path = list(proof.path)
    path[at] = dataclasses.replace(path[at], **changes)
    return dataclasses.replace(proof, path=tuple(path))


# -- proofs on real snapshots -------------------------------------------------------


def test_every_atom_proves_membership(snap: Snapshot) -> None:
    depths = set()
    for atom in snap.atoms:
        proof = snap.prove(atom.digest)
        assert isinstance(proof, MembershipProof)
        assert proof.key == atom.digest
        assert proof.item == snap.repo.trees.get(snap.tree, atom.digest)
        assert proof.item == atom.entry.encode()
        assert proof.path[0].child is None  # the leaf step proves the item itself
        depths.add(len(proof.path))
        assert verify_membership(proof, snap.commit_id)
        assert verify_membership(proof, bytes.fromhex(snap.commit_id))
        assert verify(proof, snap.commit_id)
        assert not verify_non_membership(proof, snap.commit_id)  # type: ignore[arg-type]
    # One step per level: the root alone at 1 atom; leaves at depth 2 or 3 at 5,000.
    assert depths == {1: {1}, 40: {2}, 5000: {3, 4}}[len(snap.atoms)]


def test_absent_keys_prove_non_membership(snap: Snapshot) -> None:
    strangers = [absent_key(i) for i in range(100)]
    strangers += [a.digest for a in make_atoms(20, prefix="other")]
    for key in strangers:
        proof = snap.prove(key)
        assert isinstance(proof, NonMembershipProof)
        assert verify_non_membership(proof, snap.commit_id)
        assert proof.verify(snap.commit_id)
        assert not verify_membership(proof, snap.commit_id)  # type: ignore[arg-type]
        assert snap.repo.trees.get(snap.tree, key) is None


def test_each_step_is_a_plain_rfc_6962_inclusion_proof(snap: Snapshot) -> None:
    # What a third-party RFC 6962 verifier would check, level by level, with the
    # node ids read from the store rather than from the proof.
    atom = snap.atoms[-1]
    proof = snap.member(len(snap.atoms) - 1)
    node_id = snap.tree
    for depth, step in enumerate(reversed(proof.path)):
        node = snap.repo.trees.load(node_id)
        assert step.size == 1 + (len(node.children) if node.children else len(node.items))
        assert step.header == canonical.encode(["tree", 0 if node.is_leaf else 1, depth])
        entry = proof.item if node.is_leaf else step.child
        assert entry is not None
        assert verify_inclusion(leaf_hash(entry), step.index, step.size, step.hashes, node_id)
        if not node.is_leaf:
            nibble, child_id, *_ = canonical.decode(entry)
            assert nibble == atom.digest[depth // 2] >> (4 if depth % 2 == 0 else 0) & 0xF
            node_id = child_id
    assert snap.repo.trees.load(node_id).is_leaf


def test_a_node_without_the_nibble_proves_absence() -> None:
    snap = build(40)  # an interior root: 16 slots for 40 keys leave some empty
    root_node = snap.repo.trees.load(snap.tree)
    assert not root_node.is_leaf
    used = {child.nibble for child in root_node.children}
    missing = min(set(range(16)) - used)
    key = bytes([missing << 4]) + bytes(31)
    proof = snap.prove(key)
    assert isinstance(proof, NonMembershipProof)
    assert proof.path == ()
    assert proof.leaves[0] == canonical.encode(["tree", 1, 0])
    assert len(proof.leaves) == 1 + len(used)
    assert verify_non_membership(proof, snap.commit_id)


def test_the_empty_snapshot_proves_absence_of_everything() -> None:
    snap = build(0)
    proof = snap.absent(0)
    assert proof.path == ()
    assert proof.leaves == (canonical.encode(["tree", 0, 0]),)
    assert verify_non_membership(proof, snap.commit_id)


def test_a_molecule_proves_membership() -> None:
    repo = Repository.memory()
    atoms = make_atoms(50)
    repo.add_atoms(atoms)
    molecule = MemoryMolecule(tuple(atoms[:2]), {"supports": ((0, 1),)})
    repo.add_molecule(molecule)
    commit_id = repo.commit("with a molecule")
    proof = prove(repo.trees, commit_bytes(repo, commit_id), molecule.digest)
    assert isinstance(proof, MembershipProof)
    assert canonical.decode(proof.item) == [molecule.digest, 1]
    assert verify(proof, commit_id)


# -- tampering -----------------------------------------------------------------------


def test_tampered_membership_proofs_fail(snap: Snapshot) -> None:
    proof = snap.member(len(snap.atoms) // 2)
    cid = snap.commit_id
    assert verify(proof, cid)
    for at in range(len(proof.item)):
        assert not verify(dataclasses.replace(proof, item=flip(proof.item, at)), cid)
    for at in range(len(proof.commit)):
        assert not verify(dataclasses.replace(proof, commit=flip(proof.commit, at, 3)), cid)
    for level, step in enumerate(proof.path):
        for i, h in enumerate(step.hashes):
            for bit in (0, 7):
                hashes = (*step.hashes[:i], flip(h, i % 32, bit), *step.hashes[i + 1 :])
                assert not verify(replace_step(proof, level, hashes=hashes), cid)
        assert not verify(replace_step(proof, level, hashes=step.hashes[:-1]), cid)
        assert not verify(replace_step(proof, level, hashes=(*step.hashes, bytes(32))), cid)
        for at in range(len(step.header)):
            assert not verify(replace_step(proof, level, header=flip(step.header, at)), cid)
        for index in (step.index - 1, step.index + 1, 0):
            assert not verify(replace_step(proof, level, index=index), cid)
        if step.child is None:
            assert not verify(replace_step(proof, level, child=proof.item), cid)
        else:
            for at in range(len(step.child)):
                assert not verify(replace_step(proof, level, child=flip(step.child, at)), cid)
            assert not verify(replace_step(proof, level, child=None), cid)
    # A proof claiming another key, with or without that key's entry.
    other = snap.atoms[0] if len(snap.atoms) > 1 and snap.atoms[0].digest != proof.key else None
    if other is not None:
        assert not verify(dataclasses.replace(proof, key=other.digest), cid)
        moved = dataclasses.replace(proof, key=other.digest, item=other.entry.encode())
        assert not verify(moved, cid)


def test_reordered_or_resized_paths_fail(snap: Snapshot) -> None:
    proof = snap.member(0)
    cid = snap.commit_id
    path = proof.path
    assert not verify(dataclasses.replace(proof, path=()), cid)
    assert not verify(dataclasses.replace(proof, path=(*path, path[-1])), cid)
    assert not verify(dataclasses.replace(proof, path=(path[0], *path)), cid)
    if len(path) > 1:
        assert not verify(dataclasses.replace(proof, path=path[::-1]), cid)
        assert not verify(dataclasses.replace(proof, path=(path[1], path[0], *path[2:])), cid)
        assert not verify(dataclasses.replace(proof, path=path[1:]), cid)
        assert not verify(dataclasses.replace(proof, path=path[:-1]), cid)


def test_a_proof_is_bound_to_its_commit(snap: Snapshot) -> None:
    proof = snap.member(0)
    # The same memory, committed again after one more change: still a member, new commit.
    repo = snap.repo
    repo.add("one more memory, so the snapshot changes", relevance=0.5)
    later = repo.commit("later")
    later_proof = prove(repo.trees, commit_bytes(repo, later), proof.key)
    assert verify(later_proof, later)
    assert not verify(proof, later)
    assert not verify(later_proof, snap.commit_id)
    # Another commit's bytes in front of this commit's path.
    assert not verify(dataclasses.replace(proof, commit=commit_bytes(repo, later)), later)
    assert not verify(dataclasses.replace(later_proof, commit=snap.commit), snap.commit_id)
    for bad_id in ("", "00" * 31, snap.commit_id.upper(), snap.commit_id[:12], b"", None, 7):
        assert not verify(proof, bad_id)  # type: ignore[arg-type]


def test_tampered_non_membership_proofs_fail(snap: Snapshot) -> None:
    proof = snap.absent(1)
    cid = snap.commit_id
    assert verify(proof, cid)
    leaves = proof.leaves
    for i, leaf in enumerate(leaves):
        for at in range(0, len(leaf), 3):
            changed = (*leaves[:i], flip(leaf, at), *leaves[i + 1 :])
            assert not verify(dataclasses.replace(proof, leaves=changed), cid)
        if i:
            dropped = leaves[:i] + leaves[i + 1 :]
            assert not verify(dataclasses.replace(proof, leaves=dropped), cid)
    if len(leaves) > 2:
        swapped = (leaves[0], leaves[2], leaves[1], *leaves[3:])
        assert not verify(dataclasses.replace(proof, leaves=swapped), cid)
    assert not verify(dataclasses.replace(proof, leaves=leaves[1:]), cid)
    assert not verify(dataclasses.replace(proof, leaves=()), cid)
    for level, step in enumerate(proof.path):
        hashes = (flip(step.hashes[0], 0), *step.hashes[1:])
        path = list(proof.path)
        path[level] = dataclasses.replace(step, hashes=hashes)
        assert not verify(dataclasses.replace(proof, path=tuple(path)), cid)
    if proof.path:
        assert not verify(dataclasses.replace(proof, path=proof.path[1:]), cid)


def test_absence_cannot_be_claimed_for_a_present_key(snap: Snapshot) -> None:
    # Take a real non-membership proof whose deepest node is a leaf holding
    # entries, and claim one of those entries' keys is absent.
    for seed in range(200):
        proof = snap.absent(seed)
        if len(proof.leaves) > 1 and proof.leaves[0] == canonical.encode(
            ["tree", 0, len(proof.path)]
        ):
            break
    else:
        pytest.skip("no leaf-level absence proof with entries")
    present = canonical.decode(proof.leaves[1])[0]
    assert not verify(dataclasses.replace(proof, key=present), snap.commit_id)
    # Nor by leaving the key's entry out of the leaf list.
    without = (proof.leaves[0], *proof.leaves[2:])
    assert not verify(dataclasses.replace(proof, key=present, leaves=without), snap.commit_id)


def test_absence_cannot_be_claimed_for_a_present_nibble() -> None:
    snap = build(40)
    root_node = snap.repo.trees.load(snap.tree)
    used = {child.nibble for child in root_node.children}
    missing = min(set(range(16)) - used)
    proof = snap.prove(bytes([missing << 4]) + bytes(31))
    assert isinstance(proof, NonMembershipProof)
    member = snap.atoms[0].digest
    assert not verify(dataclasses.replace(proof, key=member), snap.commit_id)


# -- JSON ----------------------------------------------------------------------------


def test_json_round_trip(snap: Snapshot) -> None:
    for proof in (snap.member(0), snap.absent(2)):
        text = proof.to_json()
        assert proof_from_json(text) == proof
        assert proof_from_json(proof.to_json(indent=2)) == proof
        assert proof_from_json(text.encode()) == proof
        document = json.loads(text)
        assert document["commit_id"] == snap.commit_id
        assert document["kind"] == proof.kind
        assert verify(proof_from_json(text), snap.commit_id)


def test_proof_sizes_at_5000_atoms() -> None:
    snap = build(5000)
    member = snap.member(0)
    assert len(member.path) == 3
    assert len(member.to_json()) < 2_500  # 1,942 bytes when measured
    assert len(snap.absent(0).to_json()) < 6_500  # 4,050 bytes on average


def test_the_documented_example_verifies() -> None:
    section = FORMAT.read_text().split("## Proofs", 1)[1]
    example = re.search(r"```json\n(.*?)```", section, re.DOTALL)
    assert example is not None
    proof = proof_from_json(example.group(1))
    assert isinstance(proof, MembershipProof)
    assert verify(proof, "a2aba0a24a31c89154b265697a67aa1a30456367db0f04abe1d6a1a485d1c3de")


def _document() -> dict[str, Any]:
    snap = build(40)
    document: dict[str, Any] = json.loads(snap.member(3).to_json())
    return document


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("item"), r"missing \['item'\]"),
        (lambda d: d.update(extra=1), r"unknown \['extra'\]"),
        (lambda d: d.update(kind="maybe"), "proof kind must be"),
        (lambda d: d.update(version=2), "version 2"),
        (lambda d: d.update(format="other"), "format 'other'"),
        (lambda d: d.update(key=d["key"].upper()), "key must be lowercase hex"),
        (lambda d: d.update(key=d["key"][:-2]), "key must be 32 bytes, got 31"),
        (lambda d: d.update(item=d["item"] + "0"), "item must be lowercase hex"),
        (lambda d: d.update(item=7), "item must be lowercase hex, got 7"),
        (lambda d: d.update(commit_id="00" * 32), "proof names commit '0000"),
        (lambda d: d.update(commit=d["commit"][:-2]), "proof names commit"),
        (lambda d: d.update(path={}), r"path must be a list"),
        (lambda d: d.update(path=[d["path"][0]] * 66), "path has 66 elements; at most 65"),
        (lambda d: d["path"][0].update(index=True), r"path\[0\]\.index must be a non-negative"),
        (lambda d: d["path"][0].update(size=-1), r"path\[0\]\.size must be a non-negative"),
        (lambda d: d["path"][0].pop("child"), r"path\[0\] fields do not match"),
        (lambda d: d["path"][0].update(hashes=["00"]), r"hashes\[0\] must be 32 bytes"),
        (lambda d: d["path"][0].update(hashes=["00" * 32] * 65), "at most 64"),
        (lambda d: d.update(path=["step"]), r"path\[0\] must be an object"),
    ],
)
def test_malformed_json_is_refused(change: Any, message: str) -> None:
    document = _document()
    change(document)
    with pytest.raises(InvalidInputError, match=message):
        proof_from_json(json.dumps(document))


@pytest.mark.parametrize("text", ["", "{", "[]", "null", '"proof"', "[1, 2]", "\xff"])
def test_non_proof_json_is_refused(text: str) -> None:
    with pytest.raises(InvalidInputError):
        proof_from_json(text)


def test_non_membership_json_is_checked_too() -> None:
    snap = build(40)
    document = json.loads(snap.absent(3).to_json())
    document["leaves"] = ["zz"]
    with pytest.raises(InvalidInputError, match=r"leaves\[0\] must be lowercase hex"):
        proof_from_json(json.dumps(document))
    document["leaves"] = "00"
    with pytest.raises(InvalidInputError, match="leaves must be a list"):
        proof_from_json(json.dumps(document))


# -- building errors, and verifiers that never raise ----------------------------------


def test_prove_refuses_bad_input() -> None:
    snap = build(3)
    for key in (b"short", snap.atoms[0].content_hash, None):
        with pytest.raises(InvalidInputError, match="a proof key must be a 32-byte id"):
            prove(snap.repo.trees, snap.commit, key)  # type: ignore[arg-type]
    with pytest.raises(CorruptObjectError):
        prove(snap.repo.trees, b"\x93\x01\x02\x03", snap.atoms[0].digest)


_bytes = st.binary(max_size=80)
_any = st.one_of(
    st.none(), st.integers(), st.text(max_size=10), _bytes, st.lists(_bytes, max_size=3)
)
_steps = st.builds(
    ProofStep,
    header=st.one_of(_bytes, st.just(canonical.encode(["tree", 0, 0]))),
    index=st.one_of(st.integers(-2, 40), _any),
    size=st.one_of(st.integers(-2, 40), _any),
    hashes=st.one_of(st.lists(st.binary(min_size=32, max_size=32), max_size=6).map(tuple), _any),
    child=st.one_of(st.none(), _bytes, _any),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    commit=st.one_of(_bytes, _any),
    key=st.one_of(st.binary(min_size=32, max_size=32), _any),
    item=st.one_of(_bytes, _any),
    path=st.one_of(st.lists(_steps, max_size=3).map(tuple), _any),
    commit_id=st.one_of(st.binary(min_size=32, max_size=32), _any),
)
def test_verifiers_never_raise_on_garbage(
    commit: Any, key: Any, item: Any, path: Any, commit_id: Any
) -> None:
    member = MembershipProof(commit=commit, key=key, item=item, path=path)
    absent = NonMembershipProof(commit=commit, key=key, path=path, leaves=item)
    assert verify_membership(member, commit_id) is False
    assert verify_non_membership(absent, commit_id) is False
    assert verify("not a proof", commit_id) is False  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_garbage_in_a_real_proof_never_raises(data: st.DataObject) -> None:
    snap = _small()
    proof = snap.member(data.draw(st.integers(0, len(snap.atoms) - 1)))
    level = data.draw(st.integers(0, len(proof.path) - 1))
    field = data.draw(st.sampled_from(["header", "index", "size", "hashes", "child"]))
    value = data.draw(_any)
    tampered = replace_step(proof, level, **{field: value})
    assert verify(tampered, snap.commit_id) in (False, True)
    garbage_item = dataclasses.replace(proof, item=data.draw(_bytes))
    assert verify(garbage_item, snap.commit_id) is False


_SMALL: list[Snapshot] = []


def _small() -> Snapshot:
    if not _SMALL:
        _SMALL.append(build(LEAF_CAPACITY * 3))
    return _SMALL[0]
