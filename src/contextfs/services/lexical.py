"""A query's word matches in one revision, ranked so the cost follows the answer.

A match scores ``rank(relevance, timestamp) x match``, where ``match`` is the
share of the query's revision IDF its phrases carry
(:mod:`contextfs.expand.ranking`). Computed the straightforward way, every
matching atom is looked up in the snapshot tree: a common word in a million
memories visits nearly every leaf to return ten.

Where the snapshot has columns (:mod:`contextfs.history.columns`), they
answer instead: which matches the snapshot holds is one vectorised search, a
phrase's count there is a length, and the scores are array arithmetic done in
the same order of operations as the straightforward way, so the floats, the
ids and their order are the same. Only the best matches are sorted exactly at
first (a budget usually needs few); the rest only if the caller reads past
them.

Columns serve every query on their snapshot, and the next snapshot's are
derived from them through the diff, so an agent that commits every turn keeps
them at the cost of its change. They are built for a query with many matches:
on a store on disk or a server the first such query builds them and keeps
them there as derived data (so a fresh process, such as one command of the
CLI, reads them and derives its own instead of reading every tree node); in
memory, the second such query on a snapshot does.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Final

import numpy as np
from numpy.typing import NDArray

from ..errors import MissingObjectError, StoreError
from ..expand.ranking import revision_idf
from ..history import columns as snapshot_columns
from ..history.columns import SnapshotColumns
from ..history.tree import Scorer, SnapshotTrees
from ..store.base import DerivedStore, ServerStore

#: A query is *heavy* when ``matches ** 2 > HEAVY_FACTOR x atoms``: looking its
#: matches up in the tree then touches a large share of the leaves, and the
#: columns pay for themselves (measured at 100,000 and 1,000,000 atoms).
HEAVY_FACTOR: Final = 200
#: Snapshots whose columns are kept (about 56 bytes an entry): the one asked
#: last and the one before, the base of a derivation.
COLUMNS_KEPT: Final = 2
#: Snapshots remembered as asked a heavy query, and as tried for a derivation.
REMEMBERED: Final = 64
#: The name the store keeps built columns under (one snapshot's: the last built).
DERIVED_NAME: Final = "snapshot-columns"
#: Snapshots at least this big have their built columns kept in the store.
PERSIST_FROM: Final = 20_000
#: Matches sorted exactly before the first is yielded, when there are more.
FIRST_SORTED: Final = 1024


def is_heavy(matches: int, atoms: int) -> bool:
    """Whether a query with this many matches in this many atoms is better served by columns."""
    return matches * matches > HEAVY_FACTOR * atoms


class ColumnsCache:
    """The columns of the snapshots last queried, one cache per repository.

    On a store that keeps derived data on disk or a server
    (:class:`~contextfs.store.base.DerivedStore`), columns built here are kept
    there too, and a fresh process derives its snapshot's from them. Thread-safe;
    a build or derivation runs outside the lock (two threads may both build
    one snapshot's columns; either result is the same).
    """

    def __init__(self, store: object = None, kept: int = COLUMNS_KEPT) -> None:
        self._kept = kept
        self._store = store if isinstance(store, DerivedStore | None) else None
        self._persists = isinstance(store, DerivedStore) and isinstance(store, ServerStore)
        self._lock = threading.Lock()
        self._columns: OrderedDict[bytes, SnapshotColumns | None] = OrderedDict()
        self._heavy: OrderedDict[bytes, None] = OrderedDict()  # asked a heavy query
        self._tried: OrderedDict[bytes, None] = OrderedDict()  # a derivation was tried
        self._loaded = False  # the store's columns were read

    def for_query(self, trees: SnapshotTrees, tree: bytes, heavy: bool) -> SnapshotColumns | None:
        """Columns for a query on snapshot ``tree``, when kept, derivable or due.

        Kept ones serve every query. Otherwise they are derived from the
        snapshot kept last, or from the store's (read once), when the two
        differ in at most a sixteenth of its entries (tried once per
        snapshot); or built for a ``heavy`` query: the first one where the
        store keeps what is built (on disk or a server, from
        :data:`PERSIST_FROM` entries), else the second on ``tree``. None means
        the caller looks the matches up in the tree.
        """
        with self._lock:
            if tree in self._columns:
                self._columns.move_to_end(tree)
                return self._columns[tree]
            base = next(reversed(self._columns.items()), None)
            tried = tree in self._tried
            self._tried[tree] = None
            seen = tree in self._heavy
            if heavy:
                self._heavy[tree] = None
            for remembered in (self._tried, self._heavy):
                while len(remembered) > REMEMBERED:
                    remembered.popitem(last=False)
            load = self._persists and not self._loaded
            self._loaded = True
        made = None
        if base is not None and base[1] is not None and not tried:
            made = _derived(trees, base[0], base[1], tree)
        if made is None and load:
            stored = self._load()
            if stored is not None:
                self._keep(*stored)
                made = stored[1] if stored[0] == tree else _derived(trees, *stored, tree)
        if made is None:
            kept = self._persists and trees.count(tree) >= PERSIST_FROM
            if not (heavy and (seen or kept)):
                return None
            made = snapshot_columns.build(trees, tree)
            if made is not None and kept:
                self._save(tree, made)
        self._keep(tree, made)
        return made

    def _keep(self, tree: bytes, columns: SnapshotColumns | None) -> None:
        with self._lock:
            self._columns[tree] = columns
            self._columns.move_to_end(tree)
            while len(self._columns) > self._kept:
                self._columns.popitem(last=False)

    def _load(self) -> tuple[bytes, SnapshotColumns] | None:
        """The columns the store keeps, if any and intact."""
        assert self._store is not None
        try:
            data = self._store.read_derived(DERIVED_NAME)
        except StoreError:
            return None  # derived data only saves work
        return None if data is None else snapshot_columns.decode(data)

    def _save(self, tree: bytes, columns: SnapshotColumns) -> None:
        """Keep built columns in the store for fresh processes."""
        store = self._store
        if store is None or (isinstance(store, ServerStore) and store.in_transaction()):
            return  # a caller's transaction must not carry (or roll back) derived data
        with contextlib.suppress(StoreError):  # busy or read-only: the next build tries again
            store.write_derived(DERIVED_NAME, snapshot_columns.encode(tree, columns))


def _derived(
    trees: SnapshotTrees, base: bytes, columns: SnapshotColumns, tree: bytes
) -> SnapshotColumns | None:
    """``tree``'s columns from ``base``'s through their diff, when it is small enough."""
    try:
        return columns.derive(trees, base, tree, max(1024, len(columns) // 16))
    except MissingObjectError:
        return None  # the base snapshot was collected: build anew


def ranked(
    columns: SnapshotColumns,
    held: Sequence[NDArray[np.intp]],
    total: int,
    require_all: bool,
    scorer: Scorer | None,
) -> Iterator[tuple[int, float, float]]:
    """The matches best first, as ``(position, score, match)``.

    ``held`` gives, for each phrase, the positions in ``columns`` of the
    snapshot's atoms holding it; ``total`` is the snapshot's size. Exactly as
    :func:`~contextfs.expand.ranking.match_scores` and the straightforward
    ranking: phrase weights summed in phrase order, divided by their sum,
    times the rank; molecules skipped; order ``(-score, -timestamp, key)``.
    """
    if not held:
        return
    weights = [revision_idf(total, len(found)) for found in held]
    whole = sum(weights)
    summed = np.zeros(len(columns), dtype=np.float64)  # by position: a scatter, no search
    phrases = np.zeros(len(columns), dtype=np.int8)  # a query has at most 64 phrases
    for weight, found in zip(weights, held, strict=True):
        summed[found] += weight
        phrases[found] += 1
    candidates = np.flatnonzero(phrases)
    summed, phrases = summed[candidates], phrases[candidates]
    keep = columns.relevance[candidates] >= 0  # a molecule: its atoms' words match, not it
    if require_all:
        keep &= phrases == len(held)
    candidates, summed = candidates[keep], summed[keep]
    match = summed / whole
    relevance = columns.relevance[candidates]
    timestamps = columns.timestamps[candidates]
    if scorer is None:
        score = relevance * match
    else:
        rank = [scorer(r, t) for r, t in zip(relevance.tolist(), timestamps.tolist(), strict=True)]
        score = np.array(rank, dtype=np.float64) * match
    prefixes = columns.prefixes[candidates]

    def best_first(chosen: NDArray[np.intp]) -> Iterator[tuple[int, float, float]]:
        order = chosen[np.lexsort((prefixes[chosen], -timestamps[chosen], -score[chosen]))]
        yield from zip(
            candidates[order].tolist(), score[order].tolist(), match[order].tolist(), strict=True
        )

    if len(score) <= FIRST_SORTED:
        yield from best_first(np.arange(len(score)))
        return
    cut = np.partition(score, len(score) - FIRST_SORTED)[len(score) - FIRST_SORTED]
    yield from best_first(np.flatnonzero(score >= cut))  # ties at the cut come first: all of them
    yield from best_first(np.flatnonzero(score < cut))


__all__ = ["HEAVY_FACTOR", "ColumnsCache", "is_heavy", "ranked"]
