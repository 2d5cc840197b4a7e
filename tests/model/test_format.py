"""docs/FORMAT.md's test vectors, and the canonical-encoding rules they rest on."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contextfs.errors import CorruptObjectError, InvalidInputError
from contextfs.history.commits import Commit, decode_commit
from contextfs.history.tree import EMPTY_TREE_DATA, EMPTY_TREE_ID, SnapshotTrees
from contextfs.model import canonical
from contextfs.model.ids import object_digest
from contextfs.model.objects import AtomEntry, MemoryAtom, atom_body, decode_atom, decode_entry
from contextfs.model.timeutil import to_micros
from contextfs.model.types import T_INT, T_LIST, T_STRING, Kind, TypeSignature
from contextfs.store.memory import MemoryStore

FORMAT = Path(__file__).parents[2] / "docs" / "FORMAT.md"
JAN_1 = to_micros(datetime(2026, 1, 1, tzinfo=UTC))


def vectors() -> list[dict[str, str]]:
    block = FORMAT.read_text().split("```vectors\n", 1)[1].split("```", 1)[0]
    result: list[dict[str, str]] = []
    for line in block.splitlines():
        match = re.fullmatch(r"\s+(body|id)\s+([0-9a-f]+)", line)
        if match:
            result[-1][match.group(1)] = match.group(2)
        else:
            result.append({"title": line})
    return result


def test_documented_vectors_match_the_code() -> None:
    atom1, atom2, atom3, entry, empty, tree, commit = vectors()
    dict_type = TypeSignature("Dict", Kind.STAR, (T_STRING, T_LIST(T_INT)), ("Hashable",))
    plain_dict = TypeSignature("Dict", Kind.STAR, (T_STRING, T_LIST(T_INT)))
    body = atom_body(T_STRING, "User prefers concise answers")
    assert body.hex() == atom1["body"]
    assert object_digest("atom", body).hex() == atom1["id"]
    assert atom_body(dict_type, "é").hex() == atom2["body"]
    assert object_digest("atom", atom_body(dict_type, "é")).hex() == atom2["id"]
    assert object_digest("atom", atom_body(plain_dict, "é")).hex() == atom3["id"]
    the_entry = AtomEntry(
        atom_id=bytes.fromhex(atom1["id"]),
        relevance=0.9,
        timestamp=JAN_1,
        source="src1",
        tags=("preference",),
    )
    assert the_entry.encode().hex() == entry["body"]
    assert decode_entry(bytes.fromhex(entry["body"])) == the_entry
    assert (EMPTY_TREE_DATA.hex(), EMPTY_TREE_ID.hex()) == (empty["body"], empty["id"])
    store = MemoryStore()
    trees = SnapshotTrees(store)
    root = trees.build([the_entry.encode()])
    trees.flush()
    stored = store.get_object(root)
    assert stored is not None
    assert (stored.data.hex(), root.hex()) == (tree["body"], tree["id"])
    the_commit = Commit(
        tree=root,
        parents=(),
        generation=1,
        author="agent-1",
        message="remember",
        timestamp=JAN_1,
        metadata=canonical.normalise_metadata({"b": 1, "a": [True, None]}),
    )
    assert the_commit.encode().hex() == commit["body"]
    assert the_commit.id == commit["id"]
    assert decode_commit(bytes.fromhex(commit["body"])) == the_commit


def test_identity_covers_kind_and_constraints() -> None:
    base = TypeSignature("Note")
    variants = [
        base,
        TypeSignature("Note", Kind.CONTEXT),
        TypeSignature("Note", Kind.STAR, (), ("Sensitive",)),
    ]
    ids = {MemoryAtom("same text", t).content_hash for t in variants}
    assert len(ids) == 3
    assert all(len(i) == 64 for i in ids)


def test_identity_is_type_and_content_only() -> None:
    a = MemoryAtom("fact", T_STRING, datetime(2020, 1, 1, tzinfo=UTC), "s1", 0.1)
    b = MemoryAtom("fact", T_STRING, datetime(2024, 1, 1, tzinfo=UTC), "s2", 0.9, tags=("x",))
    assert a.content_hash == b.content_hash
    assert a.entry != b.entry


def test_text_is_kept_exactly_as_given() -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert (
        MemoryAtom(composed, T_STRING).content_hash != MemoryAtom(decomposed, T_STRING).content_hash
    )
    assert decode_atom(atom_body(T_STRING, decomposed)) == (T_STRING, decomposed)


def test_floats_and_maps_have_one_spelling() -> None:
    assert canonical.normalise_metadata({"z": -0.0, "a": 1}) == {"a": 1, "z": 0.0}
    assert (
        canonical.encode(canonical.normalise_metadata({"z": 1, "a": 2})).hex() == "82a16102a17a01"
    )
    with pytest.raises(InvalidInputError, match="finite"):
        canonical.normalise_metadata({"x": float("inf")})
    with pytest.raises(InvalidInputError, match="keys must be strings"):
        canonical.normalise_metadata({1: "x"})
    deep: list[object] = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(InvalidInputError, match="nested deeper"):
        canonical.normalise_metadata({"x": deep})


def test_non_canonical_bytes_are_refused() -> None:
    unsorted_map = bytes.fromhex("82a17a01a16102")  # {"z": 1, "a": 2}
    with pytest.raises(CorruptObjectError, match="canonical"):
        canonical.decode(unsorted_map)
    long_int = bytes.fromhex("cd0001")  # 1 written as uint16
    with pytest.raises(CorruptObjectError, match="canonical"):
        canonical.decode(long_int)
    with pytest.raises(CorruptObjectError, match="does not decode"):
        canonical.decode(b"\xc1")


def test_naive_times_are_local_and_stored_utc() -> None:
    naive = datetime(2026, 6, 1, 12, 0, 0)
    atom = MemoryAtom("x", T_STRING, naive)
    assert atom.timestamp.tzinfo is UTC
    assert atom.timestamp == naive.astimezone(UTC)
