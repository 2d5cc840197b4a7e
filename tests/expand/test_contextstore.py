"""Tests for contextfs.expand.contextstore: contexts as objects, prefixes, lineage."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from contextfs.errors import (
    AmbiguousRevisionError,
    CorruptObjectError,
    InvalidInputError,
    MissingObjectError,
    UnknownRevisionError,
)
from contextfs.expand.contextstore import ContextStore, InMemoryContextStore, ObjectContextStore
from contextfs.model.context import CompressedContext
from contextfs.model.objects import MemoryAtom, MemoryMolecule, atom_body
from contextfs.store.base import Store
from contextfs.store.memory import MemoryStore

from ..conftest import RepoBackend

T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def atom(content: str, relevance: float = 0.5) -> MemoryAtom:
    from contextfs.model.types import T_STRING

    return MemoryAtom(content, T_STRING, T0, "src", relevance)


@pytest.fixture
def backend(repo_backend: RepoBackend) -> Iterator[Store]:
    store = repo_backend.store()
    yield store
    store.close()


@pytest.fixture
def contexts(backend: Store) -> ObjectContextStore:
    return ObjectContextStore(backend)


def test_put_returns_the_full_hash_and_get_finds_it(contexts: ObjectContextStore) -> None:
    root = CompressedContext(None, [atom("a"), atom("b")], [], set(), {"version": 1})
    key = contexts.put(root)
    assert key == root.context_hash
    assert len(key) == 64
    assert contexts.get(key) == root
    assert contexts.get(key[:16]) == root
    assert contexts.get(key[:4]) == root
    assert contexts.resolve(key[:7]) == key


def test_put_stores_atoms_molecules_and_the_context(contexts: ObjectContextStore) -> None:
    a, b, c = atom("a"), atom("b"), atom("c")
    molecule = MemoryMolecule((b, c), {"rel": ((0, 1),)})
    key = contexts.put(CompressedContext(None, [a, b], [molecule], set(), {}))
    store = contexts.store
    assert store.count_objects() == 5  # a, b, c, the molecule, the context
    for member in (a, b, c):
        stored = store.get_object(member.digest)
        assert stored is not None
        assert stored.kind == "atom"
        assert stored.data == atom_body(member.type_sig, member.content)
    stored_molecule = store.get_object(molecule.digest)
    assert stored_molecule is not None
    assert stored_molecule == ("molecule", molecule.encode())
    stored_context = store.get_object(bytes.fromhex(key))
    assert stored_context is not None
    assert stored_context.kind == "context"


def test_putting_twice_is_idempotent(contexts: ObjectContextStore) -> None:
    ctx = CompressedContext(None, [atom("a")])
    assert contexts.put(ctx) == contexts.put(ctx)
    assert contexts.store.count_objects() == 2


def test_unknown_base_is_refused_and_nothing_is_stored(contexts: ObjectContextStore) -> None:
    orphan = CompressedContext("ab" * 32, [atom("a")])
    with pytest.raises(UnknownRevisionError) as info:
        contexts.put(orphan)
    assert str(info.value) == (
        f"base context {'ab' * 32!r} is not in the store; "
        "put the base before the contexts built on it"
    )
    assert contexts.store.count_objects() == 0


def test_base_that_is_an_atom_is_unknown(contexts: ObjectContextStore) -> None:
    contexts.put(CompressedContext(None, [atom("a")]))
    with pytest.raises(UnknownRevisionError):
        contexts.put(CompressedContext(atom("a").content_hash))


def test_base_prefix_is_stored_as_the_full_id(contexts: ObjectContextStore) -> None:
    root_key = contexts.put(CompressedContext(None, [atom("a")]))
    child = CompressedContext(root_key[:10], [atom("b")])
    child_key = contexts.put(child)
    stored = contexts.get(child_key)
    assert stored is not None
    assert stored.base_hash == root_key
    assert child_key == CompressedContext(root_key, [atom("b")]).context_hash
    assert child_key != child.context_hash


def test_unknown_and_other_kinds_resolve_to_none(contexts: ObjectContextStore) -> None:
    contexts.put(CompressedContext(None, [atom("a")]))
    assert contexts.get("0" * 64) is None
    assert contexts.get(atom("a").content_hash) is None  # an atom, not a context
    assert contexts.get(atom("a").content_hash[:8]) is None


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("abc", "context hash must be 4-64 lowercase hex characters, got 'abc'"),
        ("ABCD", "context hash must be 4-64 lowercase hex characters, got 'ABCD'"),
        ("a" * 65, "context hash must be 4-64 lowercase hex characters, got '" + "a" * 65 + "'"),
        ("zzzz", "context hash must be 4-64 lowercase hex characters, got 'zzzz'"),
    ],
)
def test_malformed_keys_are_refused(contexts: ObjectContextStore, key: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        contexts.get(key)
    assert str(info.value) == message


def _colliding_pair() -> tuple[CompressedContext, CompressedContext]:
    """Two contexts whose ids share their first four hex characters."""
    seen: dict[str, CompressedContext] = {}
    for n in itertools.count():
        ctx = CompressedContext(None, [], [], set(), {"n": n})
        prefix = ctx.context_hash[:4]
        if prefix in seen:
            return seen[prefix], ctx
        seen[prefix] = ctx
    raise AssertionError("unreachable")


def test_ambiguous_prefix_raises(contexts: ObjectContextStore) -> None:
    first, second = _colliding_pair()
    contexts.put(first)
    contexts.put(second)
    prefix = first.context_hash[:4]
    names = sorted([first.context_hash[:12], second.context_hash[:12]])
    with pytest.raises(AmbiguousRevisionError) as info:
        contexts.get(prefix)
    assert str(info.value) == (
        f"context prefix {prefix!r} is ambiguous: it matches {names[0]}, {names[1]}"
    )
    # A longer prefix tells them apart.
    assert contexts.get(first.context_hash[:16]) == first


def test_prefix_search_widens_past_other_kinds(contexts: ObjectContextStore) -> None:
    key = contexts.put(CompressedContext(None, [atom("a")]))
    prefix = key[:4]
    # 70 atom objects sharing the prefix push the context past the first batches.
    fakes = [
        (bytes.fromhex(prefix + f"{i:060x}"), "atom", atom_body(atom("a").type_sig, f"f{i}"))
        for i in range(70)
    ]
    contexts.store.put_objects(fakes)
    assert contexts.resolve(prefix) == key


def test_lineage_runs_from_root_to_target(contexts: ObjectContextStore) -> None:
    keys = [contexts.put(CompressedContext(None, [atom("0")]))]
    for i in range(1, 5):
        keys.append(contexts.put(CompressedContext(keys[-1], [atom(str(i))])))
    assert contexts.get_lineage(keys[-1]) == keys
    assert contexts.get_lineage(keys[2][:8]) == keys[:3]
    assert contexts.get_lineage(keys[0]) == keys[:1]


def test_lineage_of_unknown_context_raises(contexts: ObjectContextStore) -> None:
    with pytest.raises(UnknownRevisionError) as info:
        contexts.get_lineage("abcd")
    assert str(info.value) == "no context matches 'abcd'"


def test_tampered_context_is_detected(contexts: ObjectContextStore) -> None:
    real = CompressedContext(None, [atom("a")])
    forged = CompressedContext(None, [atom("b")])
    contexts.store.put_objects([(real.digest, "context", forged.encode())])
    with pytest.raises(CorruptObjectError) as info:
        contexts.get(real.context_hash)
    assert str(info.value) == f"context {real.context_hash} does not hash to its id"


def test_lineage_with_a_missing_base_raises() -> None:
    store = MemoryStore()
    child = CompressedContext("cd" * 32, [atom("a")])
    store.put_objects([(child.digest, "context", child.encode())])  # bypasses put's check
    with pytest.raises(MissingObjectError) as info:
        ObjectContextStore(store).get_lineage(child.context_hash)
    assert str(info.value) == (
        f"context {child.context_hash[:12]} names base {'cd' * 32!r}, which is not in the store"
    )


def test_in_memory_store_is_a_context_store() -> None:
    store = InMemoryContextStore()
    assert isinstance(store, ContextStore)
    assert isinstance(store, ObjectContextStore)
    assert isinstance(store.store, MemoryStore)
    key = store.put(CompressedContext(None, [atom("a")]))
    assert store.get_lineage(key) == [key]
