"""The snapshot tree against a plain dict model: same contents, canonical shape, cheap diffs."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contextfs.errors import CorruptObjectError
from contextfs.history.tree import (
    EMPTY_TREE_ID,
    LEAF_CAPACITY,
    TREE,
    SnapshotTrees,
    decode_node,
    item_key,
)
from contextfs.model import canonical
from contextfs.model.merkle import root as merkle_root
from contextfs.store.memory import MemoryStore


def key_of(n: int) -> bytes:
    return hashlib.sha256(str(n).encode()).digest()


def item(n: int, version: int = 0) -> bytes:
    return canonical.encode([key_of(n), 1, version])


class CountingStore(MemoryStore):
    """The real memory store, counting object reads and writes."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.written = 0
        self.bytes_written = 0

    def get_object(self, oid: bytes):  # type: ignore[no-untyped-def]
        self.reads += 1
        return super().get_object(oid)

    def put_objects(self, objects):  # type: ignore[no-untyped-def]
        objects = list(objects)
        self.written += len(objects)
        self.bytes_written += sum(len(data) for _, _, data in objects)
        super().put_objects(objects)


def fresh(store: MemoryStore | None = None) -> SnapshotTrees:
    return SnapshotTrees(store or MemoryStore(), cache_size=16)


def test_empty_tree_has_a_fixed_id_and_no_items() -> None:
    trees = fresh()
    assert trees.build([]) == EMPTY_TREE_ID
    assert list(trees.items(EMPTY_TREE_ID)) == []
    assert trees.count(EMPTY_TREE_ID) == 0


def test_build_lists_items_sorted_and_finds_each() -> None:
    trees = fresh()
    items = [item(n) for n in range(1000)]
    root = trees.build(items)
    trees.flush()
    assert list(trees.items(root)) == sorted(items, key=item_key)
    assert trees.count(root) == 1000
    assert all(trees.get(root, item_key(i)) == i for i in items[::37])
    assert trees.get(root, key_of(5000)) is None


def test_shape_depends_only_on_contents_not_edit_order() -> None:
    trees = fresh()
    direct = trees.build(item(n) for n in range(300))
    grown = trees.build([])
    for n in reversed(range(300)):
        grown = trees.update(grown, {key_of(n): item(n)})
    assert grown == direct
    shrunk = trees.update(
        trees.build(item(n) for n in range(600)), {key_of(n): None for n in range(300, 600)}
    )
    assert shrunk == direct


def test_removing_everything_gives_the_empty_tree() -> None:
    trees = fresh()
    root = trees.build(item(n) for n in range(200))
    assert trees.update(root, {key_of(n): None for n in range(200)}) == EMPTY_TREE_ID


def test_node_id_is_the_rfc6962_root_of_header_and_items() -> None:
    store = MemoryStore()
    trees = fresh(store)
    items = sorted((item(n) for n in range(10)), key=item_key)
    root = trees.build(items)
    trees.flush()
    stored = store.get_object(root)
    assert stored is not None
    assert stored.kind == TREE
    header = canonical.encode([TREE, 0, 0])
    assert merkle_root([header, *items]) == root
    assert decode_node(stored.data).items == tuple(items)


def test_small_change_on_a_large_snapshot_writes_a_few_small_nodes() -> None:
    store = CountingStore()
    trees = SnapshotTrees(store)
    root = trees.build(item(n) for n in range(20_000))
    trees.flush()
    store.written = store.bytes_written = 0
    trees.update(root, {key_of(7): item(7, version=1), key_of(99_999): item(99_999)})
    trees.flush()
    assert store.written <= 10
    assert store.bytes_written < 16_000


def test_diff_reads_only_the_changed_paths() -> None:
    store = CountingStore()
    trees = SnapshotTrees(store, cache_size=1)
    old = trees.build(item(n) for n in range(20_000))
    new = trees.update(old, {key_of(3): item(3, version=2), key_of(4): None})
    trees.flush()
    store.reads = 0
    changes = list(trees.diff(old, new))
    assert changes == sorted([(key_of(3), item(3), item(3, version=2)), (key_of(4), item(4), None)])
    assert store.reads <= 20


def test_leaf_with_unsorted_items_is_reported_corrupt() -> None:
    ordered = sorted([item(1), item(2)], key=item_key)
    with pytest.raises(CorruptObjectError, match="not sorted"):
        decode_node(canonical.encode([0, 0, list(reversed(ordered))]))


@settings(max_examples=60, deadline=None)
@given(
    initial=st.sets(st.integers(0, 400), max_size=LEAF_CAPACITY * 4),
    edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 3) | st.none()), max_size=200),
)
def test_update_and_diff_agree_with_a_dict_model(
    initial: set[int], edits: list[tuple[int, int | None]]
) -> None:
    trees = fresh()
    model = {key_of(n): item(n) for n in initial}
    root = trees.build(model.values())
    changes: dict[bytes, bytes | None] = {}
    for n, version in edits:
        changes[key_of(n)] = item(n, version) if version is not None else None
    new_root = trees.update(root, changes)
    new_model = dict(model)
    for key, value in changes.items():
        if value is None:
            new_model.pop(key, None)
        else:
            new_model[key] = value
    assert list(trees.items(new_root)) == [new_model[k] for k in sorted(new_model)]
    assert new_root == trees.build(new_model.values())
    expected = sorted(
        (k, model.get(k), new_model.get(k))
        for k in model.keys() | new_model.keys()
        if model.get(k) != new_model.get(k)
    )
    assert list(trees.diff(root, new_root)) == expected
    probes = [key_of(n) for n in range(0, 401, 3)]
    assert trees.get_many(new_root, probes) == {k: new_model[k] for k in probes if k in new_model}


def ranked_item(n: int, relevance: float, timestamp: int) -> bytes:
    from contextfs.model.objects import AtomEntry

    return AtomEntry(atom_id=key_of(n), relevance=relevance, timestamp=timestamp).encode()


def expected_order(entries: dict[int, tuple[float, int]], score=None) -> list[bytes]:  # type: ignore[no-untyped-def]
    rank = score or (lambda r, t: r)
    ordered = sorted(entries.items(), key=lambda e: (-rank(*e[1]), -e[1][1], key_of(e[0])))
    return [ranked_item(n, r, t) for n, (r, t) in ordered]


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.integers(0, 2000),
        st.tuples(st.sampled_from([0.0, 0.25, 0.5, 1.0]) | st.floats(0, 1), st.integers(0, 5)),
        max_size=300,
    )
)
def test_ranked_yields_every_atom_in_rank_order(entries: dict[int, tuple[float, int]]) -> None:
    trees = fresh()
    root = trees.build(ranked_item(n, r, t) for n, (r, t) in entries.items())
    assert list(trees.ranked(root)) == expected_order(entries)
    decay = lambda r, t: r * 0.5 ** ((5 - t) / 2)  # noqa: E731 - newer is worth more
    assert list(trees.ranked(root, decay)) == expected_order(entries, decay)


def test_ranked_reads_few_nodes_for_the_first_entries() -> None:
    store = CountingStore()
    trees = SnapshotTrees(store, cache_size=1)
    entries = {n: ((n * 7919 % 10007) / 10007, n % 1000) for n in range(20_000)}
    root = trees.build(ranked_item(n, r, t) for n, (r, t) in entries.items())
    trees.flush()
    store.reads = 0
    first = list(itertools.islice(trees.ranked(root), 10))
    assert first == expected_order(entries)[:10]
    assert store.reads < 80  # of about 1,300 nodes


def test_ranked_skips_molecules() -> None:
    trees = fresh()
    molecule = canonical.encode([key_of(1), 1])
    root = trees.build([molecule, ranked_item(2, 0.5, 1)])
    assert list(trees.ranked(root)) == [ranked_item(2, 0.5, 1)]
