"""The SQLite vector index: vectors in the store's own file, searched exactly with numpy.

Vectors live in the ``vectors`` table (schema step 3 of
:data:`contextfs.store.sqlite.MIGRATIONS`), keyed by a number per embedder
(``vector_embedders``), and join the store's transactions. Search multiplies
one matrix of an embedder's vectors by the query; the matrix is read once and
kept for as long as the embedder's generation (bumped in the same
transaction as every write, by any process) is unchanged, so a query costs
one small read plus the product. No SQLite extension is needed, so this
works on every Python build.

On a store that can only be read here (:attr:`SqliteStore.read_only`),
vectors made for atoms that lack one are kept in memory beside the stored
ones for the life of the index, so search by meaning still sees every atom.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Final, Literal, overload

import numpy as np

from ..store.sqlite import SqliteStore
from .vectors import (
    EXACT_SEARCH,
    Filter,
    MatrixCache,
    Vectors,
    check_dimensions,
    check_embedder,
    checked_rows,
    decode_vectors,
    encode_vector,
    search_matrix,
)

_CHUNK: Final = 500  # ids per IN (...) lookup, far below SQLite's variable limit


class SqliteVectorIndex:
    """A :class:`~contextfs.search.vectors.VectorIndex` in a :class:`SqliteStore`'s file."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._cache = MatrixCache()
        # Vectors a read-only store could not keep, by embedder and id.
        self._unstored: dict[str, dict[bytes, Vectors]] = {}

    def add(self, embedder: str, ids: Sequence[bytes], vectors: Vectors) -> int:
        """Store one vector per id; the first vector of an id stays."""
        check_embedder(embedder)
        found, matrix = checked_rows(ids, vectors)
        if not found:
            return 0
        if self._store.read_only is not None:
            held = self._unstored.setdefault(embedder, {})
            fresh = [(oid, row) for oid, row in zip(found, matrix, strict=True) if oid not in held]
            held.update(fresh)
            return len(fresh)
        with self._store.transaction(), self._store.connection(write=True) as conn:
            number = _number(conn, embedder, create=True)
            check_dimensions(embedder, _dimensions(conn, number), matrix.shape[1])
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO vectors (embedder, id, vector) VALUES (?, ?, ?)",
                [(number, oid, encode_vector(row)) for oid, row in zip(found, matrix, strict=True)],
            )
            added = conn.total_changes - before
            if added:
                _bump(conn, number)
            return added

    def missing(self, embedder: str, ids: Iterable[bytes]) -> list[bytes]:
        """Return the ids with no vector of ``embedder``, in the order given."""
        check_embedder(embedder)
        wanted = list(ids)
        have: set[bytes] = set()
        with self._store.connection() as conn:
            number = _number(conn, embedder)
            for start in range(0, len(wanted) if number is not None else 0, _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                have.update(
                    row[0]
                    for row in conn.execute(
                        f"SELECT id FROM vectors WHERE embedder = ? AND id IN ({marks})",
                        (number, *chunk),
                    )
                )
        have.update(self._unstored.get(embedder, ()))
        return [oid for oid in wanted if oid not in have]

    def nearest(
        self, embedder: str, query: Vectors, limit: int, among: Filter | None = None
    ) -> list[tuple[bytes, float]]:
        """Exact best ``limit`` by dot product, ties by id."""
        ids, matrix = self._matrix(check_embedder(embedder))
        return search_matrix(ids, matrix, query, limit, among)

    def forget(self, oid: bytes) -> int:
        """Delete every embedder's vector of ``oid`` (joins the open transaction)."""
        with self._store.transaction(), self._store.connection(write=True) as conn:
            numbers = [
                row[0] for row in conn.execute("SELECT embedder FROM vectors WHERE id = ?", (oid,))
            ]
            conn.execute("DELETE FROM vectors WHERE id = ?", (oid,))
            for number in numbers:
                _bump(conn, number)
            return len(numbers)

    def drop(self, embedder: str) -> int:
        """Delete every vector of ``embedder``."""
        check_embedder(embedder)
        with self._store.transaction(), self._store.connection(write=True) as conn:
            number = _number(conn, embedder)
            if number is None:
                return 0
            removed = conn.execute("DELETE FROM vectors WHERE embedder = ?", (number,)).rowcount
            conn.execute("UPDATE vector_embedders SET tree = NULL WHERE number = ?", (number,))
            _bump(conn, number)
            return removed

    def count(self, embedder: str | None = None) -> int:
        """Return how many vectors are stored (of ``embedder``, or of all)."""
        with self._store.connection() as conn:
            if embedder is None:
                row = conn.execute("SELECT count(*) FROM vectors").fetchone()
            else:
                row = conn.execute(
                    "SELECT count(*) FROM vectors JOIN vector_embedders AS e"
                    " ON e.number = vectors.embedder WHERE e.embedder = ?",
                    (check_embedder(embedder),),
                ).fetchone()
            return int(row[0])

    def embedders(self) -> list[str]:
        """Return the embedders that have vectors here, sorted."""
        with self._store.connection() as conn:
            rows = conn.execute(
                "SELECT embedder FROM vector_embedders"
                " WHERE EXISTS (SELECT 1 FROM vectors WHERE vectors.embedder = number)"
                " ORDER BY embedder"
            )
            return [row[0] for row in rows]

    def ids(self) -> set[bytes]:
        """Return every atom id that has a vector of some embedder."""
        with self._store.connection() as conn:
            return {row[0] for row in conn.execute("SELECT DISTINCT id FROM vectors")}

    def embedded_through(self, embedder: str) -> bytes | None:
        """The snapshot last marked as fully embedded by ``embedder``."""
        with self._store.connection() as conn:
            row = conn.execute(
                "SELECT tree FROM vector_embedders WHERE embedder = ?", (check_embedder(embedder),)
            ).fetchone()
        return bytes(row[0]) if row is not None and row[0] is not None else None

    def mark_embedded(self, embedder: str, tree: bytes) -> None:
        """Record that every atom of ``tree`` has a vector of ``embedder`` (not when read-only)."""
        check_embedder(embedder)
        if self._store.read_only is not None:
            return
        with self._store.transaction(), self._store.connection(write=True) as conn:
            number = _number(conn, embedder, create=True)
            conn.execute("UPDATE vector_embedders SET tree = ? WHERE number = ?", (tree, number))

    def search_method(self) -> str:
        """Exact: every vector of the embedder scored with numpy."""
        return EXACT_SEARCH

    def _matrix(self, embedder: str) -> tuple[list[bytes], Vectors]:
        """The embedder's ids and vectors, with those a read-only store could not keep."""
        ids, matrix = self._stored_matrix(embedder)
        unstored = self._unstored.get(embedder)
        if not unstored:
            return ids, matrix
        merged = sorted([*zip(ids, matrix, strict=True), *unstored.items()], key=lambda p: p[0])
        return [oid for oid, _ in merged], np.stack([row for _, row in merged])

    def _stored_matrix(self, embedder: str) -> tuple[list[bytes], Vectors]:
        """The embedder's stored ids and vectors, from the cache while its generation holds."""
        with self._store.connection() as conn:
            row = conn.execute(
                "SELECT number, generation FROM vector_embedders WHERE embedder = ?", (embedder,)
            ).fetchone()
            if row is None:
                return [], decode_vectors([])
            number, generation = int(row[0]), int(row[1])
            cached = self._cache.get(embedder, generation)
            if cached is not None:
                return cached
            rows = conn.execute(
                "SELECT id, vector FROM vectors WHERE embedder = ? ORDER BY id", (number,)
            ).fetchall()
        ids = [row[0] for row in rows]
        matrix = decode_vectors([row[1] for row in rows])
        if not self._store.in_transaction():  # what an open transaction wrote may roll back
            self._cache.put(embedder, generation, ids, matrix)
        return ids, matrix

    def __repr__(self) -> str:
        return f"SqliteVectorIndex({self._store!r})"


@overload
def _number(conn: sqlite3.Connection, embedder: str, *, create: Literal[True]) -> int: ...
@overload
def _number(conn: sqlite3.Connection, embedder: str, *, create: bool = False) -> int | None: ...
def _number(conn: sqlite3.Connection, embedder: str, *, create: bool = False) -> int | None:
    """The embedder's number in this file; with ``create``, numbered now if it has none."""
    if create:
        conn.execute(
            "INSERT OR IGNORE INTO vector_embedders (embedder, generation) VALUES (?, 0)",
            (embedder,),
        )
    row = conn.execute(
        "SELECT number FROM vector_embedders WHERE embedder = ?", (embedder,)
    ).fetchone()
    return int(row[0]) if row is not None else None


def _bump(conn: sqlite3.Connection, number: int) -> None:
    conn.execute(
        "UPDATE vector_embedders SET generation = generation + 1 WHERE number = ?", (number,)
    )


def _dimensions(conn: sqlite3.Connection, number: int) -> int | None:
    row = conn.execute(
        "SELECT length(vector) FROM vectors WHERE embedder = ? LIMIT 1", (number,)
    ).fetchone()
    return int(row[0]) // 4 if row is not None else None


__all__ = ["SqliteVectorIndex"]
