"""Run the shipped store contract against every backend."""

from __future__ import annotations

from contextfs.store import MemoryStore, SqliteStore, Store
from contextfs.testing.store_contract import PersistentStoreContract, StoreContract


class TestMemoryStore(StoreContract):
    def make_store(self) -> Store:
        return MemoryStore()


class TestSqliteStore(StoreContract, PersistentStoreContract):
    def make_store(self) -> Store:
        return SqliteStore.open(self.tmp_path / "store.db", create=True)

    def reopen_store(self, store: Store) -> Store:
        assert isinstance(store, SqliteStore)
        return SqliteStore.open(store.path)
