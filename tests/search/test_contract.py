"""Run the shipped search contract against every backend, and check the factory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from contextfs.search import (
    MemorySearchIndex,
    SqliteSearchIndex,
    UnsupportedStoreError,
    search_index_for,
)
from contextfs.store import MemoryStore, SqliteStore, Store
from contextfs.testing.search_contract import SearchContract


class TestMemorySearch(SearchContract):
    def make_store(self) -> Store:
        return MemoryStore()


class TestSqliteSearch(SearchContract):
    def make_store(self) -> Store:
        return SqliteStore.open(self.tmp_path / "store.db", create=True)


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


def test_an_unknown_store_type_is_refused() -> None:
    class OtherStore(MemoryStore):
        pass

    class Foreign:
        pass

    assert isinstance(search_index_for(OtherStore()), MemorySearchIndex)  # subclasses work
    message = "no full-text search backend for 'Foreign' stores"
    with pytest.raises(UnsupportedStoreError, match=f"^{re.escape(message)}$"):
        search_index_for(Foreign())  # type: ignore[arg-type]
