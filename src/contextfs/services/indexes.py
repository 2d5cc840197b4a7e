"""The derived indexes beside a repository's store: its full-text index and its vectors.

Both are derived from atom content, kept in the store's transactions, and
opened on first use (opening one may create its tables), through the backend
registry that knows which index comes with which store.
"""

from __future__ import annotations

import functools

from ..backends import UnsupportedStoreError, search_index_for, vector_index_for
from ..search.base import SearchIndex
from ..search.vectors import VectorIndex
from ..store.base import Store


class Indexes:
    """A store's full-text and vector indexes, each opened when first asked for."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @functools.cached_property
    def search(self) -> SearchIndex:
        """The full-text index.

        Raises:
            UnsupportedStoreError: no backend is registered for the store.
        """
        return search_index_for(self._store)

    @functools.cached_property
    def vectors(self) -> VectorIndex:
        """The vector index.

        Raises:
            UnsupportedStoreError: no backend is registered for the store.
        """
        return vector_index_for(self._store)

    def every(self) -> tuple[SearchIndex | None, VectorIndex | None]:
        """Both indexes, None for those a store of an unregistered kind lacks (for purges)."""
        try:
            return self.search, self.vectors
        except UnsupportedStoreError:
            return None, None


__all__ = ["Indexes"]
