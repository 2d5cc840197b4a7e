"""Run the shipped search contract against every backend, and check the registry's choice."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from contextfs.backends import UnsupportedStoreError, search_index_for
from contextfs.search import MemorySearchIndex, SqliteSearchIndex
from contextfs.search.postgres_fts import PostgresSearchIndex
from contextfs.store import MemoryStore, SqliteStore, Store
from contextfs.store.postgres import PostgresStore
from contextfs.testing.search_contract import SearchContract


class TestMemorySearch(SearchContract):
    def make_store(self) -> Store:
        return MemoryStore()


class TestSqliteSearch(SearchContract):
    def make_store(self) -> Store:
        return SqliteStore.open(self.tmp_path / "store.db", create=True)


class TestPostgresSearch(SearchContract):
    def make_store(self) -> Store:
        return PostgresStore.open(self.request.getfixturevalue("postgres_url"), create=True)


def test_a_memory_store_has_one_index() -> None:
    store, other = MemoryStore(), MemoryStore()
    index = search_index_for(store)
    assert isinstance(index, MemorySearchIndex)
    assert search_index_for(store) is index
    assert MemorySearchIndex.for_store(store) is index
    assert search_index_for(other) is not index


def test_a_sqlite_store_gets_an_fts5_index(tmp_path: Path) -> None:
    with SqliteStore.open(tmp_path / "store.db", create=True) as store:
        assert isinstance(search_index_for(store), SqliteSearchIndex)


def test_a_postgres_store_gets_a_tsvector_index(postgres_url: str) -> None:
    with PostgresStore.open(postgres_url, create=True) as store:
        index = search_index_for(store)
        assert isinstance(index, PostgresSearchIndex)
        assert repr(index) == f"PostgresSearchIndex({store!r})"


def test_an_unknown_store_type_is_refused() -> None:
    class OtherStore(MemoryStore):
        pass

    class Foreign:
        pass

    assert isinstance(search_index_for(OtherStore()), MemorySearchIndex)  # subclasses work
    message = "no full-text search backend for 'Foreign' stores"
    with pytest.raises(UnsupportedStoreError, match=f"^{re.escape(message)}$"):
        search_index_for(Foreign())  # type: ignore[arg-type]


def test_the_factory_works_without_psycopg_for_other_stores() -> None:
    """psycopg is an optional extra: without it, search still works and imports nothing of it."""
    code = textwrap.dedent(
        """
        import sys

        class NoPsycopg:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "psycopg":
                    raise ImportError("psycopg is not installed")

        sys.meta_path.insert(0, NoPsycopg())
        from contextfs.backends import UnsupportedStoreError, search_index_for
        from contextfs.store import MemoryStore

        print(type(search_index_for(MemoryStore())).__name__)
        try:
            search_index_for(object())
        except UnsupportedStoreError as exc:
            print(exc)
        print(sorted(name for name in sys.modules if "postgres" in name or "psycopg" in name))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.splitlines() == [
        "MemorySearchIndex",
        "no full-text search backend for 'object' stores",
        "[]",
    ]
