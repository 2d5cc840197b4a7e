"""The store and its snapshot trees, written together: what every service shares.

Snapshot-tree nodes are buffered in :class:`~contextfs.history.tree.SnapshotTrees`
until the transaction that names them ends, so a commit and its tree land in
one store transaction or not at all. Every service writes through
:meth:`Storage.transaction` to keep that true.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..history.tree import SnapshotTrees
from ..store.base import Store


class Storage:
    """A repository's store, its snapshot trees, and the transaction that binds them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.trees = SnapshotTrees(store)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group calls so they land together, durably, or not at all.

        Transactions nest (inner ones join the outermost). Tree nodes written
        along the way are discarded if the block fails, so nothing half-built
        reaches the store.
        """
        with self.store.transaction():
            try:
                yield
                self.trees.flush()
            except BaseException:
                self.trees.discard()
                raise


__all__ = ["Storage"]
