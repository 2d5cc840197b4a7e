"""Run the shipped vector contract against every backend; the SQLite schema step."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from contextfs.backends import vector_index_for
from contextfs.store import MemoryStore, SqliteStore, Store
from contextfs.store.postgres import PostgresStore
from contextfs.store.sqlite import MIGRATIONS
from contextfs.testing.vector_contract import VectorContract


class TestMemoryVectors(VectorContract):
    def make_store(self) -> Store:
        return MemoryStore()


class TestSqliteVectors(VectorContract):
    def make_store(self) -> Store:
        return SqliteStore.open(self.tmp_path / "store.db", create=True)


class TestPostgresVectors(VectorContract):
    def make_store(self) -> Store:
        return PostgresStore.open(self.request.getfixturevalue("postgres_url"), create=True)


def test_a_store_made_before_vectors_gets_their_tables_on_open(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    SqliteStore.open(path, create=True).close()
    with sqlite3.connect(path) as raw:  # the store as ContextFS wrote it before step 3
        raw.execute("DROP TABLE vectors")
        raw.execute("DROP TABLE vector_embedders")
        raw.execute("DROP TABLE reflog")  # later steps
        raw.execute("DROP TABLE dictionaries")
        raw.execute("DROP TABLE tokens")
        raw.execute("ALTER TABLE objects DROP COLUMN codec")
        raw.execute("ALTER TABLE objects DROP COLUMN base")
        raw.execute("DELETE FROM schema_migrations WHERE step >= 3")
    raw.close()
    assert MIGRATIONS[2][:2] == (3, "create the vector index")
    with SqliteStore.open(path) as store:
        index = vector_index_for(store)
        assert index.add("e@1", [bytes(32)], np.ones((1, 4), np.float32) / 2) == 1
        assert index.nearest("e@1", np.ones(4, np.float32) / 2, 1) == [(bytes(32), 1.0)]
    with sqlite3.connect(path) as raw:
        steps = raw.execute("SELECT step FROM schema_migrations ORDER BY step").fetchall()
    raw.close()
    assert steps == [(step,) for step, _, _ in MIGRATIONS]  # step 3 and those after it
