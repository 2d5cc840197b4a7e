"""The PostgreSQL vector index: vectors in the store's schema, searched exactly with numpy.

Vectors are ``bytea`` rows of float32 in tables made by the ``vectors``
component's schema steps, so a stock server needs no extension (Debian's
packages ship no ``pgvector``). Search reads an embedder's vectors once and
keeps them while its generation, bumped in the transaction of every write by
any machine, is unchanged.

Where the database has pgvector installed, an embedder with at least
``approximate_from`` vectors is searched through its HNSW index instead
(:mod:`contextfs.search.pgvector`): candidates from the index, rescored
exactly, so a process never holds a million vectors. Below that, and while
the mirror is being brought up to date inside a caller's transaction, search
stays exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import psycopg

from ..store.postgres import PostgresStore, Step
from . import pgvector
from .vectors import (
    EXACT_SEARCH,
    Filter,
    MatrixCache,
    Vectors,
    check_dimensions,
    check_embedder,
    check_limit,
    check_query,
    checked_rows,
    decode_vectors,
    encode_vector,
    nearest_rows,
    search_matrix,
)

#: Vectors of one embedder from which search goes through pgvector's index, where
#: installed. Below it exact search of the cached matrix is faster (3.4 ms against the
#: index's 5.3 ms at 50,000 MiniLM vectors, benchmarks/vector_ann.py); its cost grows
#: with the vectors, the index's hardly, and the index spares every process a copy.
APPROXIMATE_FROM: Final = 100_000

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
    " RETURNING generation"
)

Connection = psycopg.Connection[Any]


class PostgresVectorIndex:
    """A :class:`~contextfs.search.vectors.VectorIndex` in a :class:`PostgresStore`'s schema."""

    def __init__(self, store: PostgresStore, *, approximate_from: int = APPROXIMATE_FROM) -> None:
        """Attach to ``store``, making its tables on first use.

        Args:
            store: the store whose schema holds the vectors.
            approximate_from: vectors of one embedder from which search uses
                pgvector's index, when the database has the extension installed.

        Raises:
            StoreError: PostgreSQL failed.
        """
        self._store = store
        self._cache = MatrixCache()
        store.migrate("vectors", MIGRATIONS)
        with store.connection() as conn:
            extension = pgvector.installed(conn)
            steps = pgvector.migrations(conn, extension) if extension is not None else ()
        if extension is not None:
            store.migrate("pgvector", steps)
        self._accelerator = (
            pgvector.Accelerator(extension, approximate_from) if extension is not None else None
        )

    def add(self, embedder: str, ids: Sequence[bytes], vectors: Vectors) -> int:
        """Store one vector per id; the first vector of an id stays."""
        check_embedder(embedder)
        found, matrix = checked_rows(ids, vectors)
        if not found:
            return 0
        rows = [(embedder, oid, encode_vector(row)) for oid, row in zip(found, matrix, strict=True)]
        with self._store.connection(write=True) as conn:
            had = _dimensions(conn, embedder)
            check_dimensions(embedder, had, matrix.shape[1])
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO vectors (embedder, id, vector) VALUES (%s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    rows,
                )
                added = cursor.rowcount
            if added:
                generation = _bump(conn, embedder)
                if self._accelerator is not None:
                    self._accelerator.added(
                        conn, embedder, found, matrix, generation, fresh=had is None
                    )
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
        """Best ``limit`` by dot product, ties by id: exact, or from pgvector's candidates."""
        check_embedder(embedder)
        if self._accelerator is not None:
            found = self._approximate(self._accelerator, embedder, query, limit, among)
            if found is not None:
                return found
        ids, matrix = self._matrix(embedder)
        return search_matrix(ids, matrix, query, limit, among)

    def forget(self, oid: bytes) -> int:
        """Delete every embedder's vector of ``oid`` (joins the open transaction).

        The pgvector mirror loses it too, even in a process that has not seen
        the extension (it may have been installed since): a vector leaks its text.
        """
        with self._store.connection(write=True) as conn:
            embedders = [
                row[0]
                for row in conn.execute(
                    "DELETE FROM vectors WHERE id = %s RETURNING embedder", (oid,)
                )
            ]
            generations = {name: _bump(conn, name) for name in embedders}
            if self._accelerator is not None:
                self._accelerator.forgotten(conn, oid, generations)
            elif pgvector.mirror_exists(conn):
                conn.execute("DELETE FROM vector_ann WHERE id = %s", (oid,))
            return len(embedders)

    def drop(self, embedder: str) -> int:
        """Delete every vector of ``embedder`` (and its pgvector mirror and index)."""
        check_embedder(embedder)
        with self._store.connection(write=True) as conn:
            removed = conn.execute("DELETE FROM vectors WHERE embedder = %s", (embedder,)).rowcount
            _bump(conn, embedder)
            conn.execute(
                "UPDATE vector_generations SET tree = NULL WHERE embedder = %s", (embedder,)
            )
            if self._accelerator is not None or pgvector.mirror_exists(conn):
                pgvector.drop_mirror(conn, embedder)
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
        """Return every atom id that has a vector of some embedder, here or in the mirror."""
        with self._store.read_snapshot(), self._store.connection() as conn:
            found = {bytes(row[0]) for row in conn.execute("SELECT DISTINCT id FROM vectors")}
            if pgvector.mirror_exists(conn):
                mirrored = conn.execute("SELECT DISTINCT id FROM vector_ann")
                found.update(bytes(row[0]) for row in mirrored)
            return found

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
        """Exact, with numpy; and whether pgvector is used, could be, or is absent."""
        if self._accelerator is not None:
            return (
                f"{EXACT_SEARCH} below {self._accelerator.approximate_from:,} vectors of an"
                " embedder;"
                f" from there {self._accelerator.describe()} candidates, rescored exactly"
            )
        with self._store.connection() as conn:
            version = pgvector.available(conn)
        if version is None:
            return f"{EXACT_SEARCH}; the server has no pgvector"
        return (
            f"{EXACT_SEARCH}; pgvector {version} is available on the server:"
            " a superuser's CREATE EXTENSION vector makes large embedders search its index"
        )

    def _approximate(
        self,
        accelerator: pgvector.Accelerator,
        embedder: str,
        query: Vectors,
        limit: int,
        among: Filter | None,
    ) -> list[tuple[bytes, float]] | None:
        """The answer from pgvector's candidates; None where exact search must answer.

        Asks for a few times ``limit`` candidates and, while fewer than
        ``limit`` survive ``among`` (or the index scan skipped rows deleted but
        not yet vacuumed), four times as many, up to pgvector's ceiling; short
        even there, exact search answers. A mirror left behind by a process that had not seen the
        extension is brought up to date first, unless a caller's transaction is
        open (then exact search answers this once).
        """
        with self._store.connection() as conn:
            state = accelerator.state(conn, embedder)
        if state is not None and accelerator.needs_sync(state):
            if self._store.in_transaction():
                return None
            with self._store.connection(write=True) as conn:
                state = accelerator.sync(conn, embedder)
        if state is None or not accelerator.answers(state):
            return None
        row = check_query(query, state.dimensions)
        if check_limit(limit) == 0:
            return []
        count = min(max(pgvector.MIN_CANDIDATES, 2 * limit), pgvector.MAX_CANDIDATES)
        while True:
            with self._store.read_snapshot(), self._store.connection() as conn:
                found = accelerator.candidates(conn, embedder, row, state.dimensions, count)
            ids, matrix = [oid for oid, _ in found], decode_vectors([blob for _, blob in found])
            chosen = nearest_rows(ids, matrix, row, limit, among)
            if len(chosen) == limit:
                return chosen
            if count == pgvector.MAX_CANDIDATES:
                # Short even at pgvector's ceiling: a strict filter, or dead rows an index
                # scan skips. Exact search answers, so a short answer is never wrong.
                return None
            count = min(count * 4, pgvector.MAX_CANDIDATES)

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


def _bump(conn: Connection, embedder: str) -> int:
    """Advance the embedder's generation (every process's cached matrix is stale); return it."""
    row = conn.execute(_BUMP, (embedder,)).fetchone()
    assert row is not None  # INSERT ... RETURNING always returns the row
    return int(row[0])


def _dimensions(conn: Connection, embedder: str) -> int | None:
    row = conn.execute(
        "SELECT octet_length(vector) FROM vectors WHERE embedder = %s LIMIT 1", (embedder,)
    ).fetchone()
    return int(row[0]) // 4 if row is not None else None


__all__ = ["APPROXIMATE_FROM", "MIGRATIONS", "PostgresVectorIndex"]
