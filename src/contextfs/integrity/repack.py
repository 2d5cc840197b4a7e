"""Which tree nodes ``contextfs gc`` keeps as deltas, and against what.

A commit rewrites the few nodes on the paths of its changes; each rewritten
node differs from the one it replaced by an entry or a child, so one version
stored as a delta against the other costs tens of bytes instead of a
kilobyte. As git's packs do, the newest version stays whole and older ones
are deltas against the version that replaced them: the snapshots people read
most (the tips) decode with no delta at all, and history costs little.

:func:`plan_deltas` walks the commits children first and, for each, its
snapshot against its first parent's, both tries in step (as a transfer's
offer does): at each position where the two differ, the parent's node gets
the child's node as its base, unless it already has one. Each node is
planned once, after its base, and a chain that would grow longer than
:data:`DEPTH` starts again from a whole node;
every other reachable node is planned whole. The store then makes the plan
true (:meth:`~contextfs.store.base.PackedStore.set_delta_bases`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from ..errors import MissingObjectError
from ..history.commits import COMMIT, Commit, decode_commit
from ..history.graph import walk
from ..history.links import attribution_root
from ..history.tree import EMPTY_TREE_ID, SnapshotTrees
from ..store.base import Store
from ..store.codec import MAX_CHAIN

#: Most deltas between a tree node and a whole one: reading the oldest snapshots
#: costs at most this many delta decodes per node (well inside what readers allow).
DEPTH: Final = 16
assert DEPTH <= MAX_CHAIN

Plan = list[tuple[bytes, bytes | None]]


def plan_deltas(store: Store, commits: Iterable[bytes], trees: Iterable[bytes]) -> Plan:
    """Return ``(node, base or None)`` for every node of ``trees``, bases before their deltas.

    Args:
        store: where the commits and nodes are read.
        commits: the commits whose snapshots pair old nodes with new ones.
        trees: every tree node to plan (those not paired are planned whole).

    Raises:
        MissingObjectError: a commit or a node is not stored.
    """
    cache: dict[bytes, Commit] = {}

    def load(oid: bytes) -> Commit:
        commit = cache.get(oid)
        if commit is None:
            stored = store.get_object(oid)
            if stored is None or stored.kind != COMMIT:
                raise MissingObjectError(f"commit {oid.hex()} is missing from the store")
            commit = cache[oid] = decode_commit(stored.data)
        return commit

    depth: dict[bytes, int] = {EMPTY_TREE_ID: 0}
    deltas: Plan = []
    for _, commit in walk(load, list(commits)):
        parent = load(commit.parents[0]) if commit.parents else None
        pairs = [(commit.tree, parent.tree if parent else None)]
        root = attribution_root(commit)
        if root is not None:
            old_root = attribution_root(parent) if parent else None
            pairs.append((root, old_root))
        _pair(store, pairs, depth, deltas)
    wholes = [(oid, None) for oid in dict.fromkeys(trees) if oid not in depth or depth[oid] == 0]
    return wholes + [(oid, base) for oid, base in deltas if depth[oid] > 0]


def _pair(
    store: Store, pairs: Sequence[tuple[bytes, bytes | None]], depth: dict[bytes, int], out: Plan
) -> None:
    """Walk each ``(new, old)`` pair of roots in step, planning old nodes against new ones."""
    trees = SnapshotTrees(store)
    level = [(new, old) for new, old in pairs if old is not None and new != old]
    while level:
        ids = list(dict.fromkeys(oid for pair in level for oid in pair))
        nodes = dict(zip(ids, trees.load_many(ids), strict=True))
        below: list[tuple[bytes, bytes | None]] = []
        for new, old in level:
            if old is None or new == old:
                continue
            if old not in depth:  # planned once: from the newest commit that replaced it
                chain = depth.setdefault(new, 0) + 1
                depth[old] = chain if chain <= DEPTH else 0
                out.append((old, new))
            before = {child.nibble: child.id for child in nodes[old].children}
            below.extend((child.id, before.get(child.nibble)) for child in nodes[new].children)
        level = [(new, old) for new, old in below if old is not None and new != old]


__all__ = ["Plan", "plan_deltas"]
