"""The PostgreSQL vector index: vectors in the store's schema, searched exactly with numpy.

Vectors are ``bytea`` rows of float32 in tables made by the ``vectors``
component's schema steps, so a stock server needs no extension (Debian's
packages ship no ``pgvector``). Search reads an embedder's vectors once and
keeps them while its generation, bumped in the transaction of every write by
any machine, is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import psycopg

from ..store.postgres import PostgresStore, Step
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

#: The ``vectors`` component's schema steps. Append only.
MIGRATIONS: Final[tuple[Step, ...]] = (
    (
        1,
        "create the vector index",
        (
            "CREATE TABLE vectors ("
            " embedder text NOT NULL, id bytea NOT NULL CHECK (octet_length(id) = 32),"
            " vector bytea NOT NULL, PRIMARY KEY (embedder, id))",
            "CREATE INDEX vectors_by_id ON vectors (id)",
            # tree: a snapshot all of whose atoms have a vector (catching up diffs it).
            "CREATE TABLE vector_generations ("
            " embedder text PRIMARY KEY, generation bigint NOT NULL, tree bytea)",
        ),
    ),
)

_BUMP: Final = (
    "INSERT INTO vector_generations (embedder, generation) VALUES (%s, 1)"
    " ON CONFLICT (embedder) DO UPDATE SET generation = vector_generations.generation + 1"
)

Connection = psycopg.Connection[Any]


class PostgresVectorIndex:
    """A :class:`~contextfs.search.vectors.VectorIndex` in a :class:`PostgresStore`'s schema."""

    def __init__(self, store: PostgresStore) -> None:
        """Attach to ``store``, making its tables on first use.

        Raises:
            StoreError: PostgreSQL failed.
        """
        self._store = store
        self._cache = MatrixCache()
        store.migrate("vectors", MIGRATIONS)

    def add(self, embedder: str, ids: Sequence[bytes], vectors: Vectors) -> int:
        """Store one vector per id; the first vector of an id stays."""
        check_embedder(embedder)
        found, matrix = checked_rows(ids, vectors)
        if not found:
            return 0
        rows = [(embedder, oid, encode_vector(row)) for oid, row in zip(found, matrix, strict=True)]
        with self._store.connection(write=True) as conn:
            check_dimensions(embedder, _dimensions(conn, embedder), matrix.shape[1])
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO vectors (embedder, id, vector) VALUES (%s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    rows,
                )
                added = cursor.rowcount
            if added:
                conn.execute(_BUMP, (embedder,))
            return added

    def missing(self, embedder: str, ids: Iterable[bytes]) -> list[bytes]:
        """Return the ids with no vector of ``embedder``, in the order given."""
        check_embedder(embedder)
        wanted = list(ids)
        if not wanted:
            return []
        with self._store.connection() as conn:
            have = {
                row[0]
                for row in conn.execute(
                    "SELECT id FROM vectors WHERE embedder = %s AND id = ANY(%s)",
                    (embedder, wanted),
                )
            }
        return [oid for oid in wanted if oid not in have]

    def nearest(
        self, embedder: str, query: Vectors, limit: int, among: Filter | None = None
    ) -> list[tuple[bytes, float]]:
        """Exact best ``limit`` by dot product, ties by id."""
        ids, matrix = self._matrix(check_embedder(embedder))
        return search_matrix(ids, matrix, query, limit, among)

    def forget(self, oid: bytes) -> int:
        """Delete every embedder's vector of ``oid`` (joins the open transaction)."""
        with self._store.connection(write=True) as conn:
            embedders = [
                row[0]
                for row in conn.execute(
                    "DELETE FROM vectors WHERE id = %s RETURNING embedder", (oid,)
                )
            ]
            for name in embedders:
                conn.execute(_BUMP, (name,))
            return len(embedders)

    def drop(self, embedder: str) -> int:
        """Delete every vector of ``embedder``."""
        check_embedder(embedder)
        with self._store.connection(write=True) as conn:
            removed = conn.execute("DELETE FROM vectors WHERE embedder = %s", (embedder,)).rowcount
            conn.execute(_BUMP, (embedder,))
            conn.execute(
                "UPDATE vector_generations SET tree = NULL WHERE embedder = %s", (embedder,)
            )
            return removed

    def count(self, embedder: str | None = None) -> int:
        """Return how many vectors are stored (of ``embedder``, or of all)."""
        with self._store.connection() as conn:
            if embedder is None:
                row = conn.execute("SELECT count(*) FROM vectors").fetchone()
            else:
                row = conn.execute(
                    "SELECT count(*) FROM vectors WHERE embedder = %s", (check_embedder(embedder),)
                ).fetchone()
        return int(row[0]) if row is not None else 0

    def embedders(self) -> list[str]:
        """Return the embedders that have vectors here, sorted."""
        with self._store.connection() as conn:
            rows = conn.execute("SELECT DISTINCT embedder FROM vectors ORDER BY embedder")
            return [row[0] for row in rows]

    def ids(self) -> set[bytes]:
        """Return every atom id that has a vector of some embedder."""
        with self._store.connection() as conn:
            return {bytes(row[0]) for row in conn.execute("SELECT DISTINCT id FROM vectors")}

    def embedded_through(self, embedder: str) -> bytes | None:
        """The snapshot last marked as fully embedded by ``embedder``."""
        with self._store.connection() as conn:
            row = conn.execute(
                "SELECT tree FROM vector_generations WHERE embedder = %s",
                (check_embedder(embedder),),
            ).fetchone()
        return bytes(row[0]) if row is not None and row[0] is not None else None

    def mark_embedded(self, embedder: str, tree: bytes) -> None:
        """Record that every atom of ``tree`` has a vector of ``embedder``."""
        check_embedder(embedder)
        with self._store.connection(write=True) as conn:
            conn.execute(
                "INSERT INTO vector_generations (embedder, generation, tree) VALUES (%s, 0, %s)"
                " ON CONFLICT (embedder) DO UPDATE SET tree = EXCLUDED.tree",
                (embedder, tree),
            )

    def search_method(self) -> str:
        """Exact, with numpy; says whether the server could offer pgvector.

        pgvector (the ``vector`` extension) is not used yet: a stock server,
        such as Debian 12's packages, does not ship it, and answers must not
        depend on which server a team runs. Detected so ``verify`` can say so.
        """
        with self._store.connection() as conn:
            row = conn.execute(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
        if row is None:
            return f"{EXACT_SEARCH}; the server has no pgvector"
        return f"{EXACT_SEARCH}; pgvector {row[0]} is available on the server, not used"

    def _matrix(self, embedder: str) -> tuple[list[bytes], Vectors]:
        """The embedder's ids and vectors, from the cache while its generation holds."""
        with self._store.read_snapshot(), self._store.connection() as conn:
            row = conn.execute(
                "SELECT generation FROM vector_generations WHERE embedder = %s", (embedder,)
            ).fetchone()
            generation = int(row[0]) if row is not None else 0
            cached = self._cache.get(embedder, generation)
            if cached is not None:
                return cached
            rows = conn.execute(
                "SELECT id, vector FROM vectors WHERE embedder = %s ORDER BY id", (embedder,)
            ).fetchall()
        ids = [bytes(row[0]) for row in rows]
        matrix = decode_vectors([bytes(row[1]) for row in rows])
        if not self._store.in_transaction():  # what an open transaction wrote may roll back
            self._cache.put(embedder, generation, ids, matrix)
        return ids, matrix

    def __repr__(self) -> str:
        return f"PostgresVectorIndex({self._store!r})"


def _dimensions(conn: Connection, embedder: str) -> int | None:
    row = conn.execute(
        "SELECT octet_length(vector) FROM vectors WHERE embedder = %s LIMIT 1", (embedder,)
    ).fetchone()
    return int(row[0]) // 4 if row is not None else None


__all__ = ["MIGRATIONS", "PostgresVectorIndex"]
