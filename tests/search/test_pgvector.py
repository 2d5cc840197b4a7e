"""pgvector as the PostgreSQL vector index's accelerator, on a server that ships it.

The store keeps a mirror of its vectors in pgvector's type with an HNSW index
per embedder, in step with ``vectors`` through every write, from every process;
large embedders are searched through the index and rescored exactly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import numpy as np
import psycopg
import pytest

from contextfs.search.pgvector import MAX_INDEXED_DIMENSIONS, index_name
from contextfs.search.postgres_vectors import PostgresVectorIndex
from contextfs.search.vectors import EXACT_SEARCH
from contextfs.store import Store
from contextfs.store.postgres import PostgresStore
from contextfs.testing.vector_contract import (
    EMBEDDER,
    VectorContract,
    abandoned,
    brute_force,
    unit_rows,
    vector_id,
)

from ..conftest import PgvectorDatabase


class TestPgvectorMirroredVectors(VectorContract):
    """The contract holds with the mirror kept beside every write (search stays exact)."""

    def make_store(self) -> Store:
        database: PgvectorDatabase = self.request.getfixturevalue("pgvector_database")
        database.install()
        return PostgresStore.open(database.url, create=True)


@pytest.fixture
def store(pgvector_database: PgvectorDatabase) -> Iterator[PostgresStore]:
    pgvector_database.install()
    with PostgresStore.open(pgvector_database.url, create=True) as opened:
        yield opened


def approximate(store: PostgresStore) -> PostgresVectorIndex:
    """An index that searches every embedder through pgvector, however small."""
    return PostgresVectorIndex(store, approximate_from=0)


def mirrored(store: PostgresStore, embedder: str = EMBEDDER) -> set[bytes]:
    with store.connection() as conn:
        rows = conn.execute("SELECT id FROM vector_ann WHERE embedder = %s", (embedder,))
        return {bytes(row[0]) for row in rows}


def indexes(store: PostgresStore) -> set[str]:
    with store.connection() as conn:
        rows = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'vector_ann'")
        return {row[0] for row in rows}


def fill(
    index: PostgresVectorIndex, count: int, dimensions: int = 32
) -> tuple[list[bytes], np.ndarray]:
    ids = [vector_id(n) for n in range(count)]
    rows = unit_rows(count, dimensions=dimensions)
    assert index.add(EMBEDDER, ids, rows) == count
    return ids, rows


def noisy(rows: np.ndarray, seed: int) -> np.ndarray:
    """Queries near stored vectors, as a question is near the memory it asks about."""
    rng = np.random.default_rng(seed)
    near = rows + 0.3 * rng.standard_normal(rows.shape).astype(np.float32)
    return (near / np.linalg.norm(near, axis=1, keepdims=True)).astype(np.float32)


def test_verify_names_pgvector_when_it_is_installed(store: PostgresStore) -> None:
    method = PostgresVectorIndex(store).search_method()
    assert method.startswith(EXACT_SEARCH)
    assert method.endswith(
        " below 100,000 vectors of an embedder; from there pgvector 0.6.2 HNSW"
        " candidates, rescored exactly"
    )


def test_large_embedders_are_searched_through_the_hnsw_index(store: PostgresStore) -> None:
    index = approximate(store)
    ids, rows = fill(index, 1500)
    assert mirrored(store) == set(ids)
    assert index_name(EMBEDDER) in indexes(store)
    accelerator = index._accelerator
    assert accelerator is not None
    with store.connection() as conn:
        plan = conn.execute(
            b"EXPLAIN "
            + accelerator.nearest_query(EMBEDDER, 32)
            .as_bytes(conn)
            .replace(b"%b", b"%s::pgv.vector"),
            (str(rows[0].tolist()), 10),
        ).fetchall()
    assert f"Index Scan using {index_name(EMBEDDER)}" in "\n".join(line[0] for line in plan)

    queries = noisy(rows[:40], seed=7)
    overlap = 0
    for query in queries:
        found = index.nearest(EMBEDDER, query, 10)
        exact = brute_force(ids, rows, query, 10)
        assert [score for _, score in found] == sorted((s for _, s in found), reverse=True)
        exact_scores = dict(exact)
        for oid, score in found:  # rescored exactly: a shared candidate scores the same
            if oid in exact_scores:
                assert score == pytest.approx(exact_scores[oid], abs=1e-6)
        overlap += len({oid for oid, _ in found} & exact_scores.keys())
    assert overlap / (10 * len(queries)) >= 0.9  # HNSW recall on 1,500 vectors

    with store.connection(write=True) as conn:  # behind the index's back: the mirror answers
        conn.execute("DELETE FROM vector_ann WHERE id = %s", (ids[3],))
    assert index.nearest(EMBEDDER, rows[3], 1)[0][0] != ids[3]
    assert PostgresVectorIndex(store).nearest(EMBEDDER, rows[3], 1)[0][0] == ids[3]  # exact


def test_a_strict_filter_deepens_then_falls_back_to_exact_search(store: PostgresStore) -> None:
    index = approximate(store)
    ids, rows = fill(index, 1200)
    query = unit_rows(1, dimensions=32, seed=5)[0]
    offered: list[int] = []

    def every_third(batch: Sequence[bytes]) -> set[bytes]:
        offered.append(len(batch))
        return set(batch) & set(ids[::3])

    got = index.nearest(EMBEDDER, query, 5, every_third)
    assert len(got) == 5
    assert {oid for oid, _ in got} <= set(ids[::3])

    def only_four(batch: Sequence[bytes]) -> set[bytes]:
        return set(batch) & set(ids[:4])

    expected = brute_force(ids[:4], rows[:4], query, 5)  # the index's candidates run out
    assert index.nearest(EMBEDDER, query, 5, only_four) == expected
    assert index.nearest(EMBEDDER, query, 0) == []


def test_a_mirror_left_behind_catches_up_before_it_answers(
    pgvector_database: PgvectorDatabase,
) -> None:
    with PostgresStore.open(pgvector_database.url, create=True) as before:
        unaware = PostgresVectorIndex(before)  # opened before the extension was installed
        ids, rows = fill(unaware, 200)
        pgvector_database.install()
        with PostgresStore.open(pgvector_database.url) as after:
            aware = approximate(after)
            assert aware.nearest(EMBEDDER, rows[7], 1) == [(ids[7], 1.0)]
            assert mirrored(after) == set(ids)

            late = unit_rows(1, dimensions=32, seed=42)
            assert unaware.add(EMBEDDER, [vector_id(999)], late) == 1  # not mirrored by it
            assert aware.nearest(EMBEDDER, late[0], 1) == [(vector_id(999), 1.0)]

            assert unaware.forget(ids[7]) == 1  # a purge reaches the mirror from any process
            assert ids[7] not in mirrored(after)
            assert ids[7] not in {oid for oid, _ in aware.nearest(EMBEDDER, rows[7], 5)}
            assert aware.ids() == (set(ids) | {vector_id(999)}) - {ids[7]}

            assert unaware.drop(EMBEDDER) == 200
            assert mirrored(after) == set()
            assert index_name(EMBEDDER) not in indexes(after)
            assert aware.nearest(EMBEDDER, rows[0], 1) == []


def test_writes_keep_the_mirror_in_step_and_roll_back_with_it(store: PostgresStore) -> None:
    index = approximate(store)
    ids, _ = fill(index, 50)
    with abandoned(store):
        index.add(EMBEDDER, [vector_id(500)], unit_rows(1, dimensions=32, seed=9))
        assert vector_id(500) in mirrored(store)
    assert mirrored(store) == set(ids)
    assert index.forget(ids[0]) == 1
    assert mirrored(store) == set(ids[1:])
    with store.connection() as conn:
        state = conn.execute(
            "SELECT s.generation = g.generation, s.size FROM vector_ann_state AS s"
            " JOIN vector_generations AS g USING (embedder)"
        ).fetchone()
    assert state == (True, 49)
    assert index.drop(EMBEDDER) == 49
    assert index_name(EMBEDDER) not in indexes(store)


def test_embedders_too_wide_for_hnsw_are_searched_exactly(store: PostgresStore) -> None:
    index = approximate(store)
    ids, rows = fill(index, 30, dimensions=MAX_INDEXED_DIMENSIONS + 1)
    assert mirrored(store) == set(ids)
    assert index_name(EMBEDDER) not in indexes(store)
    assert index.nearest(EMBEDDER, rows[4], 3) == brute_force(ids, rows, rows[4], 3)


def test_installing_pgvector_leaves_a_superusers_step_to_the_administrator(
    pgvector_database: PgvectorDatabase,
) -> None:
    with PostgresStore.open(pgvector_database.url, create=True) as store:
        method = PostgresVectorIndex(store).search_method()
    assert method == (
        f"{EXACT_SEARCH}; pgvector 0.6.2 is available on the server:"
        " a superuser's CREATE EXTENSION vector makes large embedders search its index"
    )
    with psycopg.connect(pgvector_database.url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = 'vector'"
        ).fetchone() == (0,)


def test_rows_deleted_but_not_vacuumed_never_shorten_an_answer(store: PostgresStore) -> None:
    index = approximate(store)
    ids, rows = fill(index, 1200)
    for oid in ids[::2]:
        index.forget(oid)
    live = [i for i in range(len(ids)) if i % 2]
    live_ids, live_rows = [ids[i] for i in live], rows[live]
    query = unit_rows(1, dimensions=32, seed=11)[0]
    assert len(index.nearest(EMBEDDER, query, 80)) == 80
    for every in (15, 20, 30):
        kept = set(live_ids[::every])

        def among(batch: Sequence[bytes], kept: set[bytes] = kept) -> set[bytes]:
            return kept & set(batch)

        chosen = [i for i, oid in enumerate(live_ids) if oid in kept]
        expected = brute_force([live_ids[i] for i in chosen], live_rows[chosen], query, 10)
        assert index.nearest(EMBEDDER, query, 10, among) == expected


def test_a_first_write_racing_an_unaware_process_leaves_the_copy_out_of_step(
    pgvector_database: PgvectorDatabase,
) -> None:
    with PostgresStore.open(pgvector_database.url, create=True) as before:
        unaware = PostgresVectorIndex(before)
        pgvector_database.install()
        with PostgresStore.open(pgvector_database.url) as after:
            aware = approximate(after)
            theirs = [vector_id(n) for n in range(20)]
            ours = [vector_id(100 + n) for n in range(20)]
            with before.transaction():
                unaware.add(EMBEDDER, theirs, unit_rows(20, dimensions=32, seed=1))
                with after.connection() as conn:
                    pid = conn.info.backend_pid
                writer = threading.Thread(
                    target=aware.add, args=(EMBEDDER, ours, unit_rows(20, dimensions=32, seed=2))
                )
                writer.start()
                wait_until_blocked(pgvector_database.url, pid)  # it saw no vectors, then waits
            writer.join()
            with after.connection() as conn:
                in_step = conn.execute("SELECT count(*) FROM vector_ann_state").fetchone()
            assert in_step == (0,)  # not marked in step while lacking the other's 20
            found = aware.nearest(EMBEDDER, unit_rows(20, dimensions=32, seed=1)[3], 1)
            assert found == [(theirs[3], 1.0)]
            assert mirrored(after) == set(theirs) | set(ours)


def wait_until_blocked(url: str, pid: int) -> None:
    """Return once backend ``pid`` waits for a lock (polls; fails after a minute)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(6000):
            row = conn.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            if row is not None and row[0] == "Lock":
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} never waited for a lock")
