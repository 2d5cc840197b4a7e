"""The snapshot tree: a canonical, content-addressed radix tree over entry keys.

A snapshot is the set of entries (atoms and molecules) one version holds. It is
stored as a 16-way radix tree on the entries' 32-byte keys, which are SHA-256
ids and so uniformly spread:

* a node holding at most :data:`LEAF_CAPACITY` (32) entries is a leaf, listing them
  sorted by key; a larger node is interior, with one child per next key nibble;
* the shape depends only on the set of entries, never on the order of edits
  (history independence), so equal snapshots have equal root ids and a diff
  skips every equal subtree;
* a change rewrites only the nodes on its paths: on a 1,000,000-entry snapshot
  about five nodes of about a kilobyte each (small enough to sit
  inside one SQLite page);
* each node's id is the RFC 6962 Merkle Tree Hash of a header leaf
  (``["tree", is_interior, depth]``) followed by its items, so a membership or
  non-membership proof is a chain of RFC 6962 inclusion proofs, one per level.

Nothing here recurses on history depth; recursion on tree depth is bounded by
the 64 nibbles of a key.
"""

from __future__ import annotations

import heapq
import itertools
import math
import operator
import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from ..errors import CorruptObjectError, InvalidInputError, MissingObjectError
from ..model import canonical
from ..model.merkle import root as merkle_root
from ..model.objects import NO_RANK, entry_rank, is_molecule_item
from ..store.base import ObjectStore

TREE = "tree"
FANOUT = 16
#: Most entries a leaf holds before it splits; keeps a small commit's writes small.
LEAF_CAPACITY = 32
MAX_DEPTH = 64
_KEY_START = 3  # item = array header (1 byte) + bin8 header (2 bytes) + key
_KEY_END = _KEY_START + 32
# Items were checked on decode, so their keys sit at a fixed offset (a C-level getter).
_KEY_OF = operator.itemgetter(slice(_KEY_START, _KEY_END))
# What every item has before its key: a bin8 header of 32 bytes.
_HEADER = b"\xc4\x20"
_HEADER_OF = operator.itemgetter(slice(1, _KEY_START))


def item_key(item: bytes) -> bytes:
    """Return the 32-byte key at the start of an encoded entry, without decoding it."""
    if len(item) < _KEY_END or item[1:3] != _HEADER:
        raise CorruptObjectError("snapshot item does not start with a 32-byte key")
    return item[_KEY_START:_KEY_END]


def _nibble(key: bytes, depth: int) -> int:
    byte = key[depth >> 1]
    return byte >> 4 if depth % 2 == 0 else byte & 0x0F


class Summary(NamedTuple):
    """What a parent records about a subtree: its size and its best rank.

    ``max_relevance`` and ``max_timestamp`` bound every atom entry below, so a
    best-first walk can stream a snapshot in rank order reading only the nodes
    that can still hold the next entry (molecules count, but rank below atoms).
    """

    size: int
    max_relevance: float
    max_timestamp: int
    molecules: int


class Child(NamedTuple):
    """An interior node's link to one child."""

    nibble: int
    id: bytes
    size: int
    max_relevance: float
    max_timestamp: int
    molecules: int


EMPTY_SUMMARY = Summary(0, *NO_RANK, 0)

#: Ranks an atom entry from its relevance and timestamp (never decreasing in either).
Scorer = Callable[[float, int], float]


def recency_scorer(half_life_seconds: float, now: int) -> Scorer:
    """Rank by relevance times ``0.5 ** (age / half_life)``, age measured from ``now`` (µs).

    Entries from the future count as age zero, so the score never exceeds the
    relevance and never decreases as the timestamp grows, as :meth:`SnapshotTrees.ranked`
    requires.
    """
    if not (half_life_seconds > 0 and math.isfinite(half_life_seconds)):
        raise InvalidInputError(
            f"half-life must be a positive number of seconds, got {half_life_seconds!r}"
        )
    half_life = half_life_seconds * 1_000_000

    def score(relevance: float, timestamp: int) -> float:
        age = max(0, now - timestamp)
        return relevance * math.exp2(-age / half_life)

    return score


# A best-first work item: (-bound, -timestamp, key, kind, tie-break, node id, data, position).
# A node's data is the lowest key it can hold; a leaf cursor's is its entries' rank order.
_Pending = tuple[float, int, bytes, int, int, bytes, bytes, int]
_CURSOR, _NODE = 0, 1  # on exact ties an entry comes out before a node that might match it


def _cursor(
    rank: Scorer, item: bytes, tie: int, node_id: bytes, order: bytes, position: int
) -> _Pending:
    relevance, timestamp = entry_rank(item)
    return (
        -rank(relevance, timestamp),
        -timestamp,
        item_key(item),
        _CURSOR,
        tie,
        node_id,
        order,
        position,
    )


def by_relevance(relevance: float, timestamp: int) -> float:
    """The default rank: stored relevance alone."""
    return relevance


@dataclass(frozen=True, slots=True)
class Node:
    """A decoded tree node."""

    depth: int
    items: tuple[bytes, ...]  # a leaf's encoded entries, sorted by key
    children: tuple[Child, ...]  # an interior node's children, by nibble

    @property
    def is_leaf(self) -> bool:
        """True for a leaf (it lists entries), False for an interior node."""
        return not self.children

    @property
    def count(self) -> int:
        """How many entries the subtree holds."""
        if self.children:
            return sum(child.size for child in self.children)
        return len(self.items)

    @property
    def summary(self) -> Summary:
        """The subtree's size and best rank."""
        if self.children:
            return _combine(
                Summary(c.size, c.max_relevance, c.max_timestamp, c.molecules)
                for c in self.children
            )
        return _summarise(self.items)


def _summarise(items: Iterable[bytes]) -> Summary:
    count, best_relevance, best_timestamp, molecules = 0, NO_RANK[0], NO_RANK[1], 0
    for item in items:
        count += 1
        if is_molecule_item(item):
            molecules += 1
            continue
        relevance, timestamp = entry_rank(item)
        best_relevance = max(best_relevance, relevance)
        best_timestamp = max(best_timestamp, timestamp)
    return Summary(count, best_relevance, best_timestamp, molecules)


def _combine(summaries: Iterable[Summary]) -> Summary:
    count, best_relevance, best_timestamp, molecules = 0, NO_RANK[0], NO_RANK[1], 0
    for summary in summaries:
        count += summary.size
        best_relevance = max(best_relevance, summary.max_relevance)
        best_timestamp = max(best_timestamp, summary.max_timestamp)
        molecules += summary.molecules
    return Summary(count, best_relevance, best_timestamp, molecules)


def node_header(interior: bool, depth: int) -> bytes:
    """The first Merkle leaf of every node: ``encode(["tree", is_interior, depth])``."""
    return canonical.encode([TREE, 1 if interior else 0, depth])


def node_leaves(node: Node) -> list[bytes]:
    """Return the node's Merkle leaf list: its header, then its items or child entries.

    A node's id is the RFC 6962 root of exactly this list; proofs are inclusion
    proofs into it.
    """
    if node.is_leaf:
        return [node_header(False, node.depth), *node.items]
    entries = [canonical.encode(list(child)) for child in node.children]
    return [node_header(True, node.depth), *entries]


def encode_node(node: Node) -> tuple[bytes, bytes]:
    """Return ``(id, data)`` for a node: its Merkle id and stored bytes."""
    if node.is_leaf:
        data = canonical.encode([0, node.depth, list(node.items)])
    else:
        data = canonical.encode([1, node.depth, [list(child) for child in node.children]])
    return merkle_root(node_leaves(node)), data


def decode_node(data: bytes) -> Node:
    """Decode a stored tree node, checking its shape."""
    value = canonical.decode(data, kind=TREE)
    try:
        interior, depth, entries = value
        if interior == 0:
            items = tuple(entries)
            if items:  # checked a whole leaf at a time, in C: transfers decode every leaf
                if set(map(type, items)) != {bytes}:
                    raise ValueError("leaf items must be bytes")
                if min(map(len, items)) < _KEY_END or set(map(_HEADER_OF, items)) != {_HEADER}:
                    raise CorruptObjectError("snapshot item does not start with a 32-byte key")
                keys = list(map(_KEY_OF, items))
                if keys != sorted(set(keys)):
                    raise ValueError("leaf items are not sorted by unique key")
            return Node(depth, items, ())
        children = tuple(
            Child(int(n), bytes(c), int(k), float(r), int(t), int(m))
            for n, c, k, r, t, m in entries
        )
        nibbles = [child.nibble for child in children]
        if not children or nibbles != sorted(set(nibbles)) or not 0 <= nibbles[-1] < FANOUT:
            raise ValueError("interior children are not distinct sorted nibbles")
        return Node(depth, (), children)
    except (TypeError, ValueError) as exc:
        raise CorruptObjectError(f"tree node is malformed: {exc}") from None


EMPTY_NODE = Node(0, (), ())
EMPTY_TREE_ID, EMPTY_TREE_DATA = encode_node(EMPTY_NODE)


class SnapshotTrees:
    """Reads and writes snapshot trees in one object store.

    New nodes are buffered until :meth:`flush` puts them, so a caller can
    write them in the same transaction as the commit that names them.
    """

    def __init__(self, store: ObjectStore, cache_size: int = 32768) -> None:
        self._store = store
        # Readers on other threads (a streaming producer) share the cache.
        self._lock = threading.Lock()
        self._cache: OrderedDict[bytes, Node] = OrderedDict()
        self._cache_size = cache_size
        self._pending: dict[bytes, bytes] = {}

    # -- reading -------------------------------------------------------------

    def load(self, node_id: bytes) -> Node:
        """Return the decoded node ``node_id`` (cached, bounded)."""
        with self._lock:
            node = self._cache.get(node_id)
            if node is not None:
                self._cache.move_to_end(node_id)
                return node
        data = self._pending.get(node_id)
        if data is None:
            if node_id == EMPTY_TREE_ID:
                data = EMPTY_TREE_DATA
            else:
                stored = self._store.get_object(node_id)
                if stored is None:
                    raise MissingObjectError(f"tree {node_id.hex()} is missing")
                if stored.kind != TREE:
                    raise CorruptObjectError(f"{node_id.hex()} is a {stored.kind}, not a tree")
                data = stored.data
        node = decode_node(data)
        self._remember(node_id, node)
        return node

    def load_many(self, node_ids: list[bytes]) -> list[Node]:
        """Return the decoded nodes, reading every uncached one in a single store call."""
        nodes: dict[bytes, Node] = {}
        with self._lock:
            for node_id in node_ids:
                node = self._cache.get(node_id)
                if node is not None:
                    self._cache.move_to_end(node_id)
                    nodes[node_id] = node
        missing = [i for i in node_ids if i not in nodes and i not in self._pending]
        stored = self._store.get_objects(missing) if missing else {}
        for node_id in node_ids:
            if node_id in nodes:
                continue
            if node_id in stored:
                if stored[node_id].kind != TREE:
                    kind = stored[node_id].kind
                    raise CorruptObjectError(f"{node_id.hex()} is a {kind}, not a tree")
                node = decode_node(stored[node_id].data)
                self._remember(node_id, node)
            else:
                node = self.load(node_id)  # pending, empty, or missing (which raises)
            nodes[node_id] = node
        return [nodes[i] for i in node_ids]

    def _remember(self, node_id: bytes, node: Node) -> None:
        with self._lock:
            self._cache[node_id] = node
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def count(self, root: bytes) -> int:
        """Return how many entries the snapshot holds."""
        return self.load(root).count

    def get(self, root: bytes, key: bytes) -> bytes | None:
        """Return the encoded entry under ``key``, or None."""
        node = self.load(root)
        while not node.is_leaf:
            nibble = _nibble(key, node.depth)
            child = next((c for c in node.children if c.nibble == nibble), None)
            if child is None:
                return None
            node = self.load(child.id)
        for item in node.items:
            if item_key(item) == key:
                return item
        return None

    def get_many(self, root: bytes, keys: Iterable[bytes]) -> dict[bytes, bytes]:
        """Return the encoded entries present for ``keys``, reading each node once.

        The keys are split by nibble on the way down, so looking up thousands
        of keys costs one visit per node on their paths and a binary search
        per key, not a descent per key.
        """
        found: dict[bytes, bytes] = {}
        level: list[tuple[bytes, list[bytes]]] = [(root, list(set(keys)))]
        while level:  # one level at a time, so each level is one read from the store
            below: list[tuple[bytes, list[bytes]]] = []
            for node, (_, group) in zip(self.load_many([i for i, _ in level]), level, strict=True):
                if node.is_leaf:
                    items = node.items
                    for key in group:
                        at = bisect_left(items, key, key=_KEY_OF)
                        if at < len(items) and items[at][_KEY_START:_KEY_END] == key:
                            found[key] = items[at]
                    continue
                index, shift = node.depth >> 1, 4 if node.depth % 2 == 0 else 0
                buckets: dict[int, list[bytes]] = {}
                for key in group:
                    buckets.setdefault((key[index] >> shift) & 0x0F, []).append(key)
                for child in node.children:
                    part = buckets.get(child.nibble)
                    if part:
                        below.append((child.id, part))
            level = below
        return found

    def items(self, root: bytes) -> Iterator[bytes]:
        """Yield every encoded entry of the snapshot, sorted by key."""
        stack = [root]
        while stack:
            node = self.load(stack.pop())
            if node.is_leaf:
                yield from node.items
            else:
                stack.extend(child.id for child in reversed(node.children))

    def diff(self, old: bytes, new: bytes) -> Iterator[tuple[bytes, bytes | None, bytes | None]]:
        """Yield ``(key, old_item, new_item)`` for every entry that differs, by key.

        Equal subtrees are skipped by id, so the cost follows the difference,
        not the snapshot size.
        """
        if old == new:
            return
        a, b = self.load(old), self.load(new)
        if a.is_leaf or b.is_leaf:
            yield from _merge_diff(self.items(old), self.items(new))
            return
        a_children = {c.nibble: c.id for c in a.children}
        b_children = {c.nibble: c.id for c in b.children}
        for nibble in sorted(a_children.keys() | b_children.keys()):
            a_child, b_child = a_children.get(nibble), b_children.get(nibble)
            if a_child is not None and b_child is not None:
                yield from self.diff(a_child, b_child)
            elif a_child is not None:
                yield from ((item_key(i), i, None) for i in self.items(a_child))
            elif b_child is not None:
                yield from ((item_key(i), None, i) for i in self.items(b_child))

    def molecule_items(self, root: bytes) -> Iterator[bytes]:
        """Yield the snapshot's molecule entries, by key, visiting only subtrees that hold one.

        Each child's summary counts its molecules, so finding the few molecules
        of a large snapshot reads a few paths, not every leaf.
        """
        stack = [root]
        while stack:
            node = self.load(stack.pop())
            if node.is_leaf:
                yield from (item for item in node.items if is_molecule_item(item))
            else:
                stack.extend(c.id for c in reversed(node.children) if c.molecules)

    def ranked(self, root: bytes, score: Scorer | None = None) -> Iterator[bytes]:
        """Yield the snapshot's atom entries best first, reading only what is needed.

        Rank order is ``score(relevance, timestamp)`` descending, then newer
        first, then key. ``score`` must never decrease when either argument
        grows (relevance alone, or relevance times a recency decay); each
        child's summary then bounds everything below it, so this best-first
        walk expands a node only once nothing already found outranks it. The
        first entries of a million-entry snapshot cost a few dozen node reads,
        and memory stays proportional to the nodes opened, not the entries
        yielded. Molecule entries have no rank and are not yielded.
        """
        rank = score or by_relevance
        heap: list[_Pending] = []
        counter = itertools.count()
        summary = self.load(root).summary
        if summary.max_relevance >= 0:
            bound = rank(summary.max_relevance, summary.max_timestamp)
            heap.append((-bound, -summary.max_timestamp, bytes(32), _NODE, 0, root, bytes(32), 0))
        while heap:
            _, _, _, kind, _, node_id, data, position = heapq.heappop(heap)
            node = self.load(node_id)
            if kind == _CURSOR:  # yield the leaf's next entry, queue the one after it
                yield node.items[data[position]]
                if position + 1 < len(data):
                    item = node.items[data[position + 1]]
                    heapq.heappush(
                        heap, _cursor(rank, item, next(counter), node_id, data, position + 1)
                    )
            elif node.is_leaf:
                ranks = sorted(
                    (-rank(*entry_rank(item)), -entry_rank(item)[1], item_key(item), index)
                    for index, item in enumerate(node.items)
                    if entry_rank(item)[0] >= 0
                )
                if ranks:
                    order = bytes(r[3] for r in ranks)
                    heapq.heappush(
                        heap, _cursor(rank, node.items[order[0]], next(counter), node_id, order, 0)
                    )
            else:
                shift = 4 * (63 - node.depth)
                base = int.from_bytes(data, "big")
                for child in node.children:
                    if child.max_relevance >= 0:
                        low = (base | (child.nibble << shift)).to_bytes(32, "big")
                        bound = rank(child.max_relevance, child.max_timestamp)
                        pending = (
                            -bound,
                            -child.max_timestamp,
                            low,
                            _NODE,
                            next(counter),
                            child.id,
                            low,
                            0,
                        )
                        heapq.heappush(heap, pending)

    # -- writing -------------------------------------------------------------

    def build(self, items: Iterable[bytes]) -> bytes:
        """Write the tree of ``items`` (any order, unique keys) and return its root id."""
        by_key = {item_key(item): item for item in items}
        return self._build([by_key[k] for k in sorted(by_key)], 0)[0]

    def update(self, root: bytes, changes: Mapping[bytes, bytes | None]) -> bytes:
        """Return the root after applying ``changes`` (key -> new item, or None to remove)."""
        if not changes:
            return root
        ordered = sorted(changes.items())
        for key, item in ordered:
            if item is not None and item_key(item) != key:
                raise ValueError("a change's item does not carry its key")
        new_root, _ = self._update(root, 0, ordered)
        return new_root if new_root is not None else self._write(EMPTY_NODE)

    def is_buffered(self, node_id: bytes) -> bool:
        """Whether node ``node_id`` is written but not flushed to the store yet."""
        return node_id in self._pending

    def flush(self) -> int:
        """Put every buffered node into the store; return how many were written."""
        pending = self._pending
        if not pending:
            return 0
        self._store.put_objects((oid, TREE, data) for oid, data in pending.items())
        self._pending = {}
        return len(pending)

    def discard(self) -> None:
        """Forget buffered nodes (after a failed transaction)."""
        with self._lock:
            for oid in self._pending:
                self._cache.pop(oid, None)
        self._pending = {}

    def _write(self, node: Node) -> bytes:
        oid, data = encode_node(node)
        self._pending[oid] = data
        self._remember(oid, node)
        return oid

    def _build(self, items: list[bytes], depth: int) -> tuple[bytes, Summary]:
        if len(items) <= LEAF_CAPACITY or depth >= MAX_DEPTH:
            return self._write(Node(depth, tuple(items), ())), _summarise(items)
        children: list[Child] = []
        start = 0
        while start < len(items):
            nibble = _nibble(item_key(items[start]), depth)
            end = start + 1
            while end < len(items) and _nibble(item_key(items[end]), depth) == nibble:
                end += 1
            child_id, summary = self._build(items[start:end], depth + 1)
            children.append(Child(nibble, child_id, *summary))
            start = end
        node = Node(depth, (), tuple(children))
        return self._write(node), node.summary

    def _update(
        self, node_id: bytes, depth: int, changes: list[tuple[bytes, bytes | None]]
    ) -> tuple[bytes | None, Summary]:
        node = self.load(node_id)
        if node.is_leaf:
            merged = {item_key(item): item for item in node.items}
            for key, item in changes:
                if item is None:
                    merged.pop(key, None)
                else:
                    merged[key] = item
            if not merged:
                return None, EMPTY_SUMMARY
            return self._build([merged[k] for k in sorted(merged)], depth)
        children = {c.nibble: c for c in node.children}
        for nibble, group in _group_by_nibble(changes, depth):
            existing = children.pop(nibble, None)
            if existing is not None:
                child_id, summary = self._update(existing.id, depth + 1, group)
            else:
                added = [item for _, item in group if item is not None]
                child_id, summary = (
                    self._build(added, depth + 1) if added else (None, EMPTY_SUMMARY)
                )
            if child_id is not None:
                children[nibble] = Child(nibble, child_id, *summary)
        total = sum(child.size for child in children.values())
        if total == 0:
            return None, EMPTY_SUMMARY
        if total <= LEAF_CAPACITY:
            collected = [item for n in sorted(children) for item in self.items(children[n].id)]
            return self._build(collected, depth)
        interior = Node(depth, (), tuple(children[n] for n in sorted(children)))
        return self._write(interior), interior.summary


def _group_by_nibble(
    changes: list[tuple[bytes, bytes | None]], depth: int
) -> Iterator[tuple[int, list[tuple[bytes, bytes | None]]]]:
    start = 0
    while start < len(changes):
        nibble = _nibble(changes[start][0], depth)
        end = start + 1
        while end < len(changes) and _nibble(changes[end][0], depth) == nibble:
            end += 1
        yield nibble, changes[start:end]
        start = end


def _merge_diff(
    old: Iterator[bytes], new: Iterator[bytes]
) -> Iterator[tuple[bytes, bytes | None, bytes | None]]:
    """Diff two key-sorted item streams."""
    a, b = next(old, None), next(new, None)
    while a is not None or b is not None:
        ka = item_key(a) if a is not None else None
        kb = item_key(b) if b is not None else None
        if kb is None or (ka is not None and ka < kb):
            assert ka is not None
            yield ka, a, None
            a = next(old, None)
        elif ka is None or kb < ka:
            yield kb, None, b
            b = next(new, None)
        else:
            if a != b:
                yield ka, a, b
            a, b = next(old, None), next(new, None)
