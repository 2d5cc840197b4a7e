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

Columns serve every query on their snapshot, and a later snapshot's are
derived from them through the diff, so an agent that commits every turn keeps
them at the cost of its change. They are built for a query with many
matches: the first such query where the store keeps them (on disk or a
server, for snapshots of :data:`PERSIST_FROM` entries or more, as derived
data a fresh process such as one command of the CLI reads instead of every
tree node), else the second such query on a snapshot.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Final, TypeVar

import numpy as np
from numpy.typing import NDArray

from ..errors import ContextFSError, StoreError
from ..expand.ranking import revision_idf
from ..history import columns as snapshot_columns
from ..history.columns import SnapshotColumns
from ..history.tree import Scorer, SnapshotTrees
from ..store.base import DerivedStore, ServerStore

#: A query is *heavy* when ``matches ** 2 > HEAVY_FACTOR x atoms``: looking its
#: matches up in the tree then touches a large share of the leaves, and
#: building the columns pays for itself (measured at 100,000 and 1,000,000 atoms).
HEAVY_FACTOR: Final = 200
#: Columns kept in the store are read, or a kept snapshot's derived, for a
#: query with more than ``atoms / READ_FACTOR`` matches: reading costs about
#: 50 ns an entry, looking a match up in the tree about 100 µs (cold).
READ_FACTOR: Final = 2000
#: Snapshots whose columns are kept (about 56 bytes an entry): the one asked
#: last and the one before, the base of a derivation.
COLUMNS_KEPT: Final = 2
#: Snapshots remembered as asked a heavy query, and pairs tried for a derivation.
REMEMBERED: Final = 64
#: The name the store keeps built columns under (one snapshot's: the last built).
DERIVED_NAME: Final = "snapshot-columns"
#: Snapshots at least this big have their built columns kept in the store.
PERSIST_FROM: Final = 20_000
#: Matches sorted exactly before the first is yielded, when there are more.
FIRST_SORTED: Final = 1024


_Key = TypeVar("_Key")


def is_heavy(matches: int, atoms: int) -> bool:
    """Whether a query with this many matches in this many atoms pays for building columns."""
    return matches * matches > HEAVY_FACTOR * atoms


class ColumnsCache:
    """The columns of the snapshots last queried, one cache per repository.

    Besides the :data:`COLUMNS_KEPT` snapshots queried last it pins an
    *anchor*: the columns last built here or read from the store, which later
    snapshots are derived from however many others were queried between. On a
    store on disk or a server (:class:`~contextfs.store.base.DerivedStore`),
    columns built here are kept there too, and a fresh process reads them as
    its anchor. Thread-safe; a build or derivation runs outside the lock (two
    threads may both build one snapshot's columns; either result is the same).
    """

    def __init__(self, store: object = None, kept: int = COLUMNS_KEPT) -> None:
        self._kept = kept
        self._store = store if isinstance(store, DerivedStore) else None
        self._persists = isinstance(store, DerivedStore) and isinstance(store, ServerStore)
        self._lock = threading.Lock()
        self._columns: OrderedDict[bytes, SnapshotColumns | None] = OrderedDict()
        self._anchor: tuple[bytes, SnapshotColumns] | None = None
        self._heavy: OrderedDict[bytes, None] = OrderedDict()  # asked a heavy query
        self._tried: OrderedDict[tuple[bytes, bytes], None] = OrderedDict()  # failed derivations
        self._loaded = False  # the store's columns were read

    def for_query(
        self, trees: SnapshotTrees, tree: bytes, matches: int, atoms: int
    ) -> SnapshotColumns | None:
        """Columns for a query with ``matches`` on snapshot ``tree`` of ``atoms``, if worth it.

        Kept ones serve every query. For one with more than ``atoms /``
        :data:`READ_FACTOR` matches they are otherwise read from the store or
        derived from a kept snapshot's or the anchor's when the two differ in
        at most a sixteenth of its entries (each pair tried once); for a
        heavy one (:func:`is_heavy`) built: on the first where the store keeps
        what is built (on disk or a server, from :data:`PERSIST_FROM`
        entries), else on the second on ``tree``. None means the caller looks
        the matches up in the tree.
        """
        heavy = is_heavy(matches, atoms)
        with self._lock:
            if tree in self._columns:
                self._columns.move_to_end(tree)
                return self._columns[tree]
            if matches * READ_FACTOR <= atoms:
                return None  # so few are cheap the straightforward way
            seen = tree in self._heavy
            if heavy:
                _remember(self._heavy, tree)
            load = self._persists and not self._loaded
            self._loaded = True
        if load and (stored := self._load()) is not None:
            with self._lock:
                self._anchor = stored
        made = self._derive(trees, tree)
        if made is None:
            kept = self._persists and atoms >= PERSIST_FROM
            if not heavy or not (seen or kept):
                return None
            made = snapshot_columns.build(trees, tree)
            if made is not None:
                with self._lock:
                    self._anchor = (tree, made)
                if kept:
                    self._save(tree, made)
        with self._lock:
            self._columns[tree] = made
            self._columns.move_to_end(tree)
            while len(self._columns) > self._kept:
                self._columns.popitem(last=False)
        return made

    def _derive(self, trees: SnapshotTrees, tree: bytes) -> SnapshotColumns | None:
        """``tree``'s columns from a kept snapshot's or the anchor's, newest first.

        A pair that failed (too far apart, or its base collected) is not tried again.
        """
        with self._lock:
            bases = [*reversed(self._columns.items()), *([self._anchor] if self._anchor else [])]
            if any(base == tree and columns is not None for base, columns in bases):
                return next(c for b, c in bases if b == tree and c is not None)  # the anchor
            untried = [
                (base, columns)
                for base, columns in dict(bases).items()
                if columns is not None and (base, tree) not in self._tried
            ]
        for base, columns in untried:
            try:
                made = columns.derive(trees, base, tree, max(1024, len(columns) // 16))
            except StoreError:
                made = None  # the base snapshot was collected or is damaged
            if made is not None:
                return made
            with self._lock:
                _remember(self._tried, (base, tree))
        return None

    def _load(self) -> tuple[bytes, SnapshotColumns] | None:
        """The columns the store keeps, if any and intact."""
        assert self._store is not None
        try:
            data = self._store.read_derived(DERIVED_NAME)
        except ContextFSError:
            return None  # derived data only saves work
        return None if data is None else snapshot_columns.decode(data)

    def _save(self, tree: bytes, columns: SnapshotColumns) -> None:
        """Keep built columns in the store for fresh processes; never wait or fail for it."""
        store = self._store
        if store is None or (isinstance(store, ServerStore) and store.in_transaction()):
            return  # a caller's transaction must not carry (or roll back) derived data
        with contextlib.suppress(ContextFSError):  # busy, read-only, a concurrent writer
            store.write_derived(DERIVED_NAME, snapshot_columns.encode(tree, columns))


def _remember(remembered: OrderedDict[_Key, None], key: _Key) -> None:
    remembered[key] = None
    remembered.move_to_end(key)
    while len(remembered) > REMEMBERED:
        remembered.popitem(last=False)


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
    if sum(map(len, held)) * 16 < len(columns):  # few: work on the matches alone
        candidates = np.unique(np.concatenate(held))
        slots = [np.searchsorted(candidates, found) for found in held]
        size = len(candidates)
    else:  # many: by position, a scatter over the snapshot without searching
        candidates, slots, size = None, list(held), len(columns)
    summed = np.zeros(size, dtype=np.float64)
    phrases = np.zeros(size, dtype=np.int8)  # a query has at most 64 phrases
    for weight, at in zip(weights, slots, strict=True):
        summed[at] += weight
        phrases[at] += 1
    if candidates is None:
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


__all__ = ["HEAVY_FACTOR", "READ_FACTOR", "ColumnsCache", "is_heavy", "ranked"]
