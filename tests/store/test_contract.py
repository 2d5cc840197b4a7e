"""Run the shipped store contract against every backend."""

from __future__ import annotations

from contextfs.store import MemoryStore, SqliteStore, Store
from contextfs.store.postgres import PostgresStore
from contextfs.testing.store_contract import (
    DerivedStoreContract,
    PackedStoreContract,
    PersistentStoreContract,
    ReflogStoreContract,
    StoreContract,
    TokenStoreContract,
)


class TestMemoryStore(StoreContract, DerivedStoreContract, ReflogStoreContract, TokenStoreContract):
    def make_store(self) -> Store:
        return MemoryStore()


class TestSqliteStore(
    StoreContract,
    DerivedStoreContract,
    ReflogStoreContract,
    PackedStoreContract,
    PersistentStoreContract,
    TokenStoreContract,
):
    def make_store(self) -> Store:
        return SqliteStore.open(self.tmp_path / "store.db", create=True)

    def reopen_store(self, store: Store) -> Store:
        assert isinstance(store, SqliteStore)
        return SqliteStore.open(store.path)


class TestPostgresStore(
    StoreContract,
    DerivedStoreContract,
    ReflogStoreContract,
    PackedStoreContract,
    PersistentStoreContract,
    TokenStoreContract,
):
    def make_store(self) -> Store:
        self.url = self.request.getfixturevalue("postgres_url")
        return PostgresStore.open(self.url, create=True)

    def reopen_store(self, store: Store) -> Store:
        return PostgresStore.open(self.url)


class TestPostgresWorkspaceStore(
    StoreContract, DerivedStoreContract, ReflogStoreContract, PersistentStoreContract
):
    """The contract holds unchanged for a workspace, whose HEAD and stage are private."""

    def make_store(self) -> Store:
        self.url = self.request.getfixturevalue("postgres_url")
        return PostgresStore.open(self.url, create=True, workspace="w1")

    def reopen_store(self, store: Store) -> Store:
        return PostgresStore.open(self.url, workspace="w1")
