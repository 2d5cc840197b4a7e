"""The SQLite vector index: vectors in the store's own file, searched exactly with numpy.

Vectors live in the ``vectors`` table (schema step 3 of
:data:`contextfs.store.sqlite.MIGRATIONS`) and join the store's
transactions. Search multiplies one matrix of an embedder's vectors by the
query; the matrix is read once and kept for as long as the embedder's
generation (``vector_generations``, bumped in the same transaction as every
write, by any process) is unchanged, so a query costs one small read plus the
product. No SQLite extension is needed, so this works on every Python build.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from typing import Final

from ..store.sqlite import SqliteStore
from .vectors import (
    Filter,
    Vectors,
    check_dimensions,
    check_embedder,
    check_query,
    checked_rows,
    decode_vectors,
    encode_vector,
    nearest_rows,
)

_CHUNK: Final = 500  # ids per IN (...) lookup, far below SQLite's variable limit

_BUMP: Final = (
    "INSERT INTO vector_generations (embedder, generation) VALUES (?, 1)"
    " ON CONFLICT (embedder) DO UPDATE SET generation = generation + 1"
)


class SqliteVectorIndex:
    """A :class:`~contextfs.search.vectors.VectorIndex` in a :class:`SqliteStore`'s file."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[int, list[bytes], Vectors]] = {}

    def add(self, embedder: str, ids: Sequence[bytes], vectors: Vectors) -> int:
        """Store one vector per id; the first vector of an id stays."""
        check_embedder(embedder)
        found, matrix = checked_rows(ids, vectors)
        if not found:
            return 0
        with self._store.transaction(), self._store.connection(write=True) as conn:
            check_dimensions(embedder, _dimensions(conn, embedder), matrix.shape[1])
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO vectors (embedder, id, vector) VALUES (?, ?, ?)",
                [
                    (embedder, oid, encode_vector(row))
                    for oid, row in zip(found, matrix, strict=True)
                ],
            )
            added = conn.total_changes - before
            if added:
                conn.execute(_BUMP, (embedder,))
            return added

    def missing(self, embedder: str, ids: Iterable[bytes]) -> list[bytes]:
        """Return the ids with no vector of ``embedder``, in the order given."""
        check_embedder(embedder)
        wanted = list(ids)
        have: set[bytes] = set()
        with self._store.connection() as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                have.update(
                    row[0]
                    for row in conn.execute(
                        f"SELECT id FROM vectors WHERE embedder = ? AND id IN ({marks})",
                        (embedder, *chunk),
                    )
                )
        return [oid for oid in wanted if oid not in have]

    def nearest(
        self, embedder: str, query: Vectors, limit: int, among: Filter | None = None
    ) -> list[tuple[bytes, float]]:
        """Exact best ``limit`` by dot product, ties by id."""
        ids, matrix = self._matrix(check_embedder(embedder))
        row = check_query(query, matrix.shape[1] if ids else None)
        return nearest_rows(ids, matrix, row, limit, among)

    def forget(self, oid: bytes) -> int:
        """Delete every embedder's vector of ``oid`` (joins the open transaction)."""
        with self._store.transaction(), self._store.connection(write=True) as conn:
            embedders = [
                row[0] for row in conn.execute("SELECT embedder FROM vectors WHERE id = ?", (oid,))
            ]
            conn.execute("DELETE FROM vectors WHERE id = ?", (oid,))
            conn.executemany(_BUMP, [(name,) for name in embedders])
            return len(embedders)

    def drop(self, embedder: str) -> int:
        """Delete every vector of ``embedder``."""
        check_embedder(embedder)
        with self._store.transaction(), self._store.connection(write=True) as conn:
            removed = conn.execute("DELETE FROM vectors WHERE embedder = ?", (embedder,)).rowcount
            conn.execute(_BUMP, (embedder,))
            return removed

    def count(self, embedder: str | None = None) -> int:
        """Return how many vectors are stored (of ``embedder``, or of all)."""
        with self._store.connection() as conn:
            if embedder is None:
                row = conn.execute("SELECT count(*) FROM vectors").fetchone()
            else:
                row = conn.execute(
                    "SELECT count(*) FROM vectors WHERE embedder = ?", (check_embedder(embedder),)
                ).fetchone()
            return int(row[0])

    def embedders(self) -> list[str]:
        """Return the embedders that have vectors here, sorted."""
        with self._store.connection() as conn:
            rows = conn.execute("SELECT DISTINCT embedder FROM vectors ORDER BY embedder")
            return [row[0] for row in rows]

    def ids(self) -> set[bytes]:
        """Return every atom id that has a vector of some embedder."""
        with self._store.connection() as conn:
            return {row[0] for row in conn.execute("SELECT DISTINCT id FROM vectors")}

    def _matrix(self, embedder: str) -> tuple[list[bytes], Vectors]:
        """The embedder's ids and vectors, from the cache while its generation holds."""
        with self._store.connection() as conn:
            generation = _generation(conn, embedder)
            with self._lock:
                cached = self._cache.get(embedder)
            if cached is not None and cached[0] == generation:
                return cached[1], cached[2]
            rows = conn.execute(
                "SELECT id, vector FROM vectors WHERE embedder = ? ORDER BY id", (embedder,)
            ).fetchall()
        ids = [row[0] for row in rows]
        matrix = decode_vectors([row[1] for row in rows])
        if not self._store.in_transaction():  # what an open transaction wrote may roll back
            with self._lock:
                self._cache[embedder] = (generation, ids, matrix)
        return ids, matrix

    def __repr__(self) -> str:
        return f"SqliteVectorIndex({self._store!r})"


def _generation(conn: sqlite3.Connection, embedder: str) -> int:
    row = conn.execute(
        "SELECT generation FROM vector_generations WHERE embedder = ?", (embedder,)
    ).fetchone()
    return int(row[0]) if row is not None else 0


def _dimensions(conn: sqlite3.Connection, embedder: str) -> int | None:
    row = conn.execute(
        "SELECT length(vector) FROM vectors WHERE embedder = ? LIMIT 1", (embedder,)
    ).fetchone()
    return int(row[0]) // 4 if row is not None else None


__all__ = ["SqliteVectorIndex"]
