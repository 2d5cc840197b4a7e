"""The in-memory vector index: the reference twin of the SQLite and PostgreSQL ones.

One index per :class:`~contextfs.store.memory.MemoryStore` (found again with
:meth:`MemoryVectorIndex.for_store`); every write registers its undo with the
store's transaction, so vectors roll back with the objects.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from functools import partial

import numpy as np

from ..store.memory import MemoryStore
from .vectors import (
    EXACT_SEARCH,
    Filter,
    Vectors,
    check_dimensions,
    check_embedder,
    checked_rows,
    search_matrix,
)


class MemoryVectorIndex:
    """A :class:`~contextfs.search.vectors.VectorIndex` held in dicts beside a MemoryStore."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._lock = threading.RLock()
        self._rows: dict[str, dict[bytes, Vectors]] = {}
        self._matrices: dict[str, tuple[list[bytes], Vectors]] = {}
        self._marks: dict[str, bytes] = {}

    @classmethod
    def for_store(cls, store: MemoryStore) -> MemoryVectorIndex:
        """Return the index attached to ``store``, creating it on first use."""
        return store.extension(cls, partial(cls, store))

    def add(self, embedder: str, ids: Sequence[bytes], vectors: Vectors) -> int:
        """Store one vector per id; the first vector of an id stays."""
        check_embedder(embedder)
        found, matrix = checked_rows(ids, vectors)
        with self._store.transaction(), self._lock:
            rows = self._rows.setdefault(embedder, {})
            if found:
                stored = next(iter(rows.values()), None)
                have = None if stored is None else len(stored)
                check_dimensions(embedder, have, matrix.shape[1])
            new = [(oid, row) for oid, row in zip(found, matrix, strict=True) if oid not in rows]
            for oid, row in new:
                rows[oid] = row.copy()
            if new:
                self._matrices.pop(embedder, None)
                self._store.on_rollback(partial(self._undo_add, embedder, [o for o, _ in new]))
            return len(new)

    def missing(self, embedder: str, ids: Iterable[bytes]) -> list[bytes]:
        """Return the ids with no vector of ``embedder``, in the order given."""
        with self._lock:
            rows = self._rows.get(check_embedder(embedder), {})
            return [oid for oid in ids if oid not in rows]

    def nearest(
        self, embedder: str, query: Vectors, limit: int, among: Filter | None = None
    ) -> list[tuple[bytes, float]]:
        """Exact best ``limit`` by dot product, ties by id."""
        ids, matrix = self._matrix(check_embedder(embedder))
        return search_matrix(ids, matrix, query, limit, among)

    def forget(self, oid: bytes) -> int:
        """Delete every embedder's vector of ``oid``."""
        with self._store.transaction(), self._lock:
            removed = 0
            for embedder, rows in self._rows.items():
                row = rows.pop(oid, None)
                if row is not None:
                    removed += 1
                    self._matrices.pop(embedder, None)
                    self._store.on_rollback(partial(self._undo_remove, embedder, {oid: row}))
            return removed

    def drop(self, embedder: str) -> int:
        """Delete every vector of ``embedder``."""
        with self._store.transaction(), self._lock:
            rows = self._rows.pop(check_embedder(embedder), {})
            self._matrices.pop(embedder, None)
            mark = self._marks.pop(embedder, None)
            if mark is not None:
                self._store.on_rollback(partial(self._marks.__setitem__, embedder, mark))
            if rows:
                self._store.on_rollback(partial(self._undo_remove, embedder, rows))
            return len(rows)

    def count(self, embedder: str | None = None) -> int:
        """Return how many vectors are stored (of ``embedder``, or of all)."""
        with self._lock:
            if embedder is not None:
                return len(self._rows.get(check_embedder(embedder), {}))
            return sum(len(rows) for rows in self._rows.values())

    def embedders(self) -> list[str]:
        """Return the embedders that have vectors here, sorted."""
        with self._lock:
            return sorted(name for name, rows in self._rows.items() if rows)

    def ids(self) -> set[bytes]:
        """Return every atom id that has a vector of some embedder."""
        with self._lock:
            return {oid for rows in self._rows.values() for oid in rows}

    def embedded_through(self, embedder: str) -> bytes | None:
        """The snapshot last marked as fully embedded by ``embedder``."""
        with self._lock:
            return self._marks.get(check_embedder(embedder))

    def mark_embedded(self, embedder: str, tree: bytes) -> None:
        """Record that every atom of ``tree`` has a vector of ``embedder``."""
        check_embedder(embedder)
        with self._store.transaction(), self._lock:
            old = self._marks.get(embedder)
            self._marks[embedder] = bytes(tree)
            undo = (
                partial(self._marks.pop, embedder, None)
                if old is None
                else partial(self._marks.__setitem__, embedder, old)
            )
            self._store.on_rollback(undo)

    def search_method(self) -> str:
        """Exact: every vector of the embedder scored with numpy."""
        return EXACT_SEARCH

    def _matrix(self, embedder: str) -> tuple[list[bytes], Vectors]:
        with self._lock:
            cached = self._matrices.get(embedder)
            if cached is None:
                rows = self._rows.get(embedder, {})
                ids = list(rows)
                matrix = np.stack(list(rows.values())) if rows else np.zeros((0, 0), np.float32)
                cached = self._matrices[embedder] = (ids, matrix)
            return cached

    def _undo_add(self, embedder: str, ids: list[bytes]) -> None:
        with self._lock:
            rows = self._rows.get(embedder, {})
            for oid in ids:
                rows.pop(oid, None)
            self._matrices.pop(embedder, None)

    def _undo_remove(self, embedder: str, removed: dict[bytes, Vectors]) -> None:
        with self._lock:
            self._rows.setdefault(embedder, {}).update(removed)
            self._matrices.pop(embedder, None)

    def __repr__(self) -> str:
        return f"MemoryVectorIndex({self._store!r})"


__all__ = ["MemoryVectorIndex"]
