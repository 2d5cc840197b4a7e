"""pgvector as an accelerator for the PostgreSQL vector index: nearest candidates from HNSW.

Exact search reads every vector of an embedder into each process (about
1.5 GB at a million 384-dimension vectors) and scores them all. Where the
database has the ``vector`` extension installed (``CREATE EXTENSION vector``,
by a superuser: stock packages such as Debian 12's do not ship it), each
vector is also kept as a pgvector value in ``vector_ann``; an embedder with
``approximate_from`` vectors gets a partial HNSW index over inner product, and
a search asks that index for candidates. The candidates are rescored from the
stored float32 bytes exactly as exact search scores them, so a score never
differs between the two paths; only whether a true neighbour is among the
candidates is approximate, at the recall ``benchmarks/vector_ann.py`` measures.

Invariants this module owns:

* ``vector_ann`` mirrors the ``vectors`` rows of an embedder while
  ``vector_ann_state.generation`` equals the embedder's generation in
  ``vector_generations``. Every write by an accelerated index advances both in
  one transaction; a write by a process that did not see the extension (it
  was installed later) advances only the generation, so the mirror is seen
  to be stale and is brought up to date (:meth:`Accelerator.sync`) before it
  answers again.
* Purges reach the mirror from every process, accelerated or not (a vector
  leaks its text): see :func:`mirror_exists`.
* The index of an embedder is partial on its id, written into the SQL as a
  quoted literal (:mod:`psycopg.sql`), and over the vectors cast to their
  dimensions, as pgvector requires; queries repeat both exactly so the
  planner can use it. Embedders over :data:`MAX_INDEXED_DIMENSIONS` are not
  indexed and are searched exactly.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import psycopg
from psycopg import sql
from psycopg.adapt import Dumper
from psycopg.pq import Format

from ..store.postgres import Step
from .vectors import Vectors

#: Most dimensions pgvector's HNSW index takes for its ``vector`` type.
MAX_INDEXED_DIMENSIONS: Final = 2000
#: Most candidates one index scan returns (pgvector's ceiling for ``hnsw.ef_search``).
MAX_CANDIDATES: Final = 1000
#: Fewest candidates asked for (``hnsw.ef_search``): pgvector's default, 40, found 0.95 of
#: the exact ten nearest in benchmarks/vector_ann.py; 100 finds more for under a millisecond.
MIN_CANDIDATES: Final = 100
_SYNC_BATCH: Final = 2000

Connection = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class Pgvector:
    """The installed extension: where its type lives, and which version it is."""

    schema: str
    version: str
    type_oid: int


def installed(conn: Connection) -> Pgvector | None:
    """The ``vector`` extension installed in this database, if it is."""
    row = conn.execute(
        "SELECT n.nspname, e.extversion, t.oid FROM pg_extension AS e"
        " JOIN pg_namespace AS n ON n.oid = e.extnamespace"
        " JOIN pg_type AS t ON t.typnamespace = e.extnamespace AND t.typname = 'vector'"
        " WHERE e.extname = 'vector'"
    ).fetchone()
    return Pgvector(str(row[0]), str(row[1]), int(row[2])) if row is not None else None


def available(conn: Connection) -> str | None:
    """The version of pgvector the server could install, if it ships it."""
    row = conn.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
    ).fetchone()
    return str(row[0]) if row is not None else None


def mirror_exists(conn: Connection) -> bool:
    """Whether this store has the ``vector_ann`` mirror (made once pgvector was seen)."""
    row = conn.execute("SELECT to_regclass('vector_ann')").fetchone()
    return row is not None and row[0] is not None


def migrations(conn: Connection, extension: Pgvector) -> tuple[Step, ...]:
    """The ``pgvector`` component's schema steps, naming the extension's schema. Append only."""
    vector = sql.SQL("{}.vector").format(sql.Identifier(extension.schema)).as_string(conn)
    return (
        (
            1,
            "mirror vectors into pgvector",
            (
                "CREATE TABLE vector_ann ("
                " embedder text NOT NULL, id bytea NOT NULL,"
                f" embedding {vector} NOT NULL, PRIMARY KEY (embedder, id))",
                "CREATE INDEX vector_ann_by_id ON vector_ann (id)",
                # generation: the embedder's generation the mirror matches; size: its rows.
                "CREATE TABLE vector_ann_state ("
                " embedder text PRIMARY KEY, generation bigint NOT NULL,"
                " size bigint NOT NULL, dimensions integer NOT NULL)",
            ),
        ),
    )


def index_name(embedder: str) -> str:
    """The name of an embedder's HNSW index: fixed, short, and free of the id's characters."""
    return "vector_ann_" + hashlib.sha256(embedder.encode()).hexdigest()[:24]


class _PgvectorValue:
    """One row of a matrix, to be sent in pgvector's binary format."""

    __slots__ = ("row",)

    def __init__(self, row: Vectors) -> None:
        self.row = row


class _PgvectorDumper(Dumper):
    """pgvector's binary input: dimensions and a reserved word (uint16 each), then float4s."""

    format = Format.BINARY

    def dump(self, obj: _PgvectorValue) -> bytes:
        row = obj.row
        return struct.pack(">HH", len(row), 0) + np.asarray(row, dtype=">f4").tobytes()


@dataclass(frozen=True, slots=True)
class MirrorState:
    """An embedder's mirror: whether it matches ``vectors``, its size, and its index."""

    in_step: bool
    size: int
    dimensions: int
    indexed: bool


class Accelerator:
    """The ``vector_ann`` mirror and its HNSW indexes, driven on the store's connection.

    Every method runs on a connection the caller lends, inside the caller's
    transaction where it writes, so the mirror lands or rolls back with the
    ``vectors`` rows it mirrors. An embedder's index is built once its mirror
    holds ``approximate_from`` vectors, in one go (faster than growing it row
    by row), and kept up to date by PostgreSQL from then on.
    """

    def __init__(self, extension: Pgvector, approximate_from: int) -> None:
        self.extension = extension
        self.approximate_from = max(approximate_from, 1)
        self._vector = sql.SQL("{}.vector").format(sql.Identifier(extension.schema))
        self._inner = sql.SQL("OPERATOR({}.<#>)").format(sql.Identifier(extension.schema))
        dumper = type("PgvectorDumper", (_PgvectorDumper,), {"oid": extension.type_oid})
        self._dumper: type[Dumper] = dumper

    def describe(self) -> str:
        """The extension, as ``verify`` names it."""
        return f"pgvector {self.extension.version} HNSW"

    def answers(self, state: MirrorState) -> bool:
        """Whether the index may answer for an embedder in ``state``."""
        return state.in_step and state.indexed and state.size >= self.approximate_from

    def needs_sync(self, state: MirrorState) -> bool:
        """Whether the mirror lags ``vectors``, or lacks the index its size calls for."""
        wants_index = state.size >= self.approximate_from and indexable(state.dimensions)
        return not state.in_step or (wants_index and not state.indexed)

    # -- writes (inside the caller's transaction) -------------------------------

    def added(
        self,
        conn: Connection,
        embedder: str,
        ids: Sequence[bytes],
        matrix: Vectors,
        generation: int,
        fresh: bool,
    ) -> None:
        """Mirror rows just added to ``vectors``; ``generation`` is the embedder's new one.

        ``fresh``: the embedder had no vectors before this write began, so its
        mirror may start here, unless a process that does not keep it wrote
        some meanwhile (then it stays out of step, and :meth:`sync` catches up).
        """
        mirrored = self._insert(conn, embedder, ids, matrix)
        if fresh and self._count(conn, embedder) == mirrored:
            # Only now is it sure no other process wrote vectors the copy lacks: the bump
            # holds the generation row, so every earlier writer has committed.
            conn.execute(
                "INSERT INTO vector_ann_state (embedder, generation, size, dimensions)"
                " VALUES (%s, %s, 0, %s) ON CONFLICT (embedder) DO NOTHING",
                (embedder, generation - 1, matrix.shape[1]),
            )
        size = self._advance(conn, embedder, generation, mirrored)
        if size is not None and size - mirrored < self.approximate_from <= size:
            self._build_index(conn, embedder, matrix.shape[1])

    def forgotten(self, conn: Connection, oid: bytes, generations: dict[str, int]) -> None:
        """Delete ``oid``'s mirrored vectors; ``generations``: the new ones it was bumped to."""
        deleted = conn.execute("DELETE FROM vector_ann WHERE id = %s RETURNING embedder", (oid,))
        removed = {row[0] for row in deleted}
        for embedder, generation in generations.items():
            self._advance(conn, embedder, generation, -1 if embedder in removed else 0)

    # -- keeping in step --------------------------------------------------------

    def state(self, conn: Connection, embedder: str) -> MirrorState | None:
        """The embedder's mirror state; None when it has no vectors at all."""
        row = conn.execute(
            "SELECT g.generation, s.generation, s.size, s.dimensions,"
            " to_regclass(%s) IS NOT NULL"
            " FROM vector_generations AS g"
            " LEFT JOIN vector_ann_state AS s ON s.embedder = g.embedder"
            " WHERE g.embedder = %s",
            (index_name(embedder), embedder),
        ).fetchone()
        if row is None:
            return None
        if row[1] is None or int(row[0]) != int(row[1]):
            return MirrorState(False, 0, 0, bool(row[4]))
        return MirrorState(True, int(row[2]), int(row[3]), bool(row[4]))

    def sync(self, conn: Connection, embedder: str) -> MirrorState | None:
        """Bring the embedder's mirror up to its ``vectors`` (inside a write transaction).

        Locks the embedder's generation row first, so adds wait and none is
        missed; builds the index if the mirror has grown to need it.
        """
        row = conn.execute(
            "SELECT generation FROM vector_generations WHERE embedder = %s FOR UPDATE",
            (embedder,),
        ).fetchone()
        if row is None:
            return None
        generation = int(row[0])
        conn.execute(
            "DELETE FROM vector_ann AS a WHERE a.embedder = %s AND NOT EXISTS"
            " (SELECT 1 FROM vectors AS v WHERE v.embedder = a.embedder AND v.id = a.id)",
            (embedder,),
        )
        with conn.cursor(name="vector_ann_sync") as cursor:  # server-side: a batch at a time
            cursor.execute(
                "SELECT v.id, v.vector FROM vectors AS v WHERE v.embedder = %s AND NOT EXISTS"
                " (SELECT 1 FROM vector_ann AS a WHERE a.embedder = v.embedder AND a.id = v.id)",
                (embedder,),
            )
            while batch := cursor.fetchmany(_SYNC_BATCH):
                blobs = b"".join(bytes(item[1]) for item in batch)
                matrix = np.frombuffer(blobs, dtype="<f4").reshape(len(batch), -1)
                self._insert(conn, embedder, [bytes(item[0]) for item in batch], matrix)
        counted = conn.execute(
            "SELECT count(*), coalesce(max(octet_length(vector)) / 4, 0)"
            " FROM vectors WHERE embedder = %s",
            (embedder,),
        ).fetchone()
        size, dimensions = (int(counted[0]), int(counted[1])) if counted else (0, 0)
        conn.execute(
            "INSERT INTO vector_ann_state (embedder, generation, size, dimensions)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (embedder) DO UPDATE SET"
            " generation = EXCLUDED.generation, size = EXCLUDED.size,"
            " dimensions = EXCLUDED.dimensions",
            (embedder, generation, size, dimensions),
        )
        indexed = size >= self.approximate_from and self._build_index(conn, embedder, dimensions)
        if not indexed:
            self.analyze(conn)  # else the build did; the planner needs fresh figures
        return self.state(conn, embedder)

    # -- search ---------------------------------------------------------------

    def candidates(
        self, conn: Connection, embedder: str, query: Vectors, dimensions: int, count: int
    ) -> list[tuple[bytes, bytes]]:
        """Up to ``count`` ids the embedder's index finds nearest, with their stored vectors."""
        conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(count),))
        with conn.cursor() as cursor:
            cursor.adapters.register_dumper(_PgvectorValue, self._dumper)
            rows = cursor.execute(
                self.nearest_query(embedder, dimensions),
                (_PgvectorValue(query), count),
            ).fetchall()
        return [(bytes(row[0]), bytes(row[1])) for row in rows]

    def nearest_query(self, embedder: str, dimensions: int) -> sql.Composed:
        """The candidate query (``%b``: the query vector, ``%s``: how many): uses the index."""
        return sql.SQL(
            "SELECT v.id, v.vector FROM ("
            "SELECT id FROM vector_ann WHERE embedder = {embedder}"
            " ORDER BY {cast} {inner} %b LIMIT %s"
            ") AS a JOIN vectors AS v ON v.embedder = {embedder} AND v.id = a.id"
        ).format(
            embedder=sql.Literal(embedder),
            cast=self._cast(dimensions),
            inner=self._inner,
        )

    # -- plumbing ---------------------------------------------------------------

    def _insert(
        self, conn: Connection, embedder: str, ids: Sequence[bytes], matrix: Vectors
    ) -> int:
        with conn.cursor() as cursor:
            cursor.adapters.register_dumper(_PgvectorValue, self._dumper)
            cursor.executemany(
                "INSERT INTO vector_ann (embedder, id, embedding) VALUES (%s, %s, %b)"
                " ON CONFLICT DO NOTHING",
                [
                    (embedder, oid, _PgvectorValue(row))
                    for oid, row in zip(ids, matrix, strict=True)
                ],
            )
            return max(cursor.rowcount, 0)

    def _count(self, conn: Connection, embedder: str) -> int:
        row = conn.execute("SELECT count(*) FROM vectors WHERE embedder = %s", (embedder,))
        found = row.fetchone()
        return int(found[0]) if found is not None else 0

    def _advance(self, conn: Connection, embedder: str, generation: int, change: int) -> int | None:
        """Move a mirror in step with the write before this one to ``generation``; its size."""
        row = conn.execute(
            "UPDATE vector_ann_state SET generation = %s, size = size + %s"
            " WHERE embedder = %s AND generation = %s RETURNING size",
            (generation, change, embedder, generation - 1),
        ).fetchone()
        return int(row[0]) if row is not None else None

    def analyze(self, conn: Connection) -> None:
        """Refresh the planner's statistics, which else may not pick an index just grown."""
        conn.execute("ANALYZE vector_ann")

    def _cast(self, dimensions: int) -> sql.Composable:
        return sql.SQL("(embedding::{vector}({dimensions}))").format(
            vector=self._vector, dimensions=sql.Literal(dimensions)
        )

    def _build_index(self, conn: Connection, embedder: str, dimensions: int) -> bool:
        """Build the embedder's HNSW index if pgvector can; whether it exists now."""
        if not indexable(dimensions):
            return False
        conn.execute(
            sql.SQL(
                "CREATE INDEX IF NOT EXISTS {name} ON vector_ann USING hnsw"
                " ({cast} {opclass}) WHERE embedder = {embedder}"
            ).format(
                name=sql.Identifier(index_name(embedder)),
                cast=self._cast(dimensions),
                opclass=sql.SQL("{}.vector_ip_ops").format(sql.Identifier(self.extension.schema)),
                embedder=sql.Literal(embedder),
            )
        )
        self.analyze(conn)  # the planner picks a new index only with figures for its table
        return True


def indexable(dimensions: int) -> bool:
    """Whether pgvector's HNSW index takes vectors of this many dimensions."""
    return 0 < dimensions <= MAX_INDEXED_DIMENSIONS


def drop_mirror(conn: Connection, embedder: str) -> None:
    """Delete an embedder's mirrored vectors, state and index (any process may)."""
    conn.execute("DELETE FROM vector_ann WHERE embedder = %s", (embedder,))
    conn.execute("DELETE FROM vector_ann_state WHERE embedder = %s", (embedder,))
    conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(index_name(embedder))))


__all__ = [
    "MAX_CANDIDATES",
    "MAX_INDEXED_DIMENSIONS",
    "MIN_CANDIDATES",
    "Accelerator",
    "MirrorState",
    "Pgvector",
    "available",
    "drop_mirror",
    "index_name",
    "indexable",
    "installed",
    "migrations",
    "mirror_exists",
]
