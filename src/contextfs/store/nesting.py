"""Nested transactions over one database connection: inner blocks join the outermost.

The SQLite and PostgreSQL backends share this logic; each says only how its
database begins, commits and rolls back (:class:`NestedTransactions`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class NestedTransactions:
    """``transaction()`` for a store whose connection is guarded by ``_lock``.

    Subclasses set ``_lock`` and ``_depth`` (0) and implement :meth:`_begin`,
    :meth:`_commit` and :meth:`_abort`. The outermost block holds the lock for
    its whole body, so no other thread's statement slips into it.
    """

    _lock: threading.RLock
    _depth: int

    def _begin(self) -> None:
        """Start a transaction on the connection."""
        raise NotImplementedError

    def _commit(self) -> None:
        """Commit the open transaction (rolling back if the commit itself fails)."""
        raise NotImplementedError

    def _abort(self) -> None:
        """Roll the open transaction back; never raise over the body's exception."""
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes so they land together, durably, or not at all.

        Nested calls join the outermost; only its exit commits, or rolls back if
        its body raised. Other threads using this store object wait meanwhile.
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._begin()
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                self._abort()
                raise
            self._depth = 0
            self._commit()
