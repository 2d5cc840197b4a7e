"""The SQLite search backend: FTS5 tables inside the store's own database file.

Invariants this module owns:

* The index shares the :class:`~contextfs.store.sqlite.SqliteStore`'s
  connection, lock and transactions (:meth:`SqliteStore.connection`), so text
  indexed inside ``with store.transaction():`` commits or rolls back with the
  objects written there.
* Schema step 2 (:data:`contextfs.store.sqlite.MIGRATIONS`) makes a contentless
  FTS5 table ``search_fts`` (``rowid`` -> tokens; the text itself stays only in
  the atom objects) and ``search_ids`` mapping each rowid to its atom id. A
  store that held atoms before that step is marked ``search_backfill`` in
  ``meta``; the first use of the index decodes every atom and indexes it, in one
  transaction, then drops the mark.
* FTS5 is given :func:`~contextfs.search.query.tokenize`'s output joined by
  spaces, not the raw text, so this backend and the memory twin see the same
  tokens (FTS5's own Unicode tables are older than Python's).
* The MATCH expression comes from :func:`~contextfs.search.query.fts5_expression`
  (every term a quoted FTS5 string) and reaches SQL only as a bound parameter.

Query plan of :data:`SEARCH_SQL` (SQLite 3.40; checked by the tests)::

    SCAN search_fts VIRTUAL TABLE INDEX 0:M1
    SEARCH search_ids USING INTEGER PRIMARY KEY (rowid=?)
    USE TEMP B-TREE FOR ORDER BY

The MATCH constraint is answered by FTS5's inverted index (``M``); each hit
then costs one primary-key lookup for its id. ``ORDER BY ... LIMIT`` keeps only
the best ``limit`` rows while scanning, as ``ORDER BY rank LIMIT`` does.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Final

from contextfs.search.base import (
    atom_texts,
    check_limit,
    checked_batches,
    checked_texts,
    stored_texts,
)
from contextfs.search.memory import MemorySearchIndex
from contextfs.search.query import Mode, check_mode, fts5_expression, parse_query, tokenize
from contextfs.store.memory import MemoryStore
from contextfs.store.sqlite import SqliteStore, require_fts5

#: The ``meta`` key schema step 2 sets when existing atoms still need indexing.
BACKFILL_KEY: Final = "search_backfill"

#: Best first: ``bm25()`` is lower-is-better, so its negation is the score.
SEARCH_SQL: Final = (
    "SELECT search_ids.id, -bm25(search_fts) AS score"
    " FROM search_fts JOIN search_ids ON search_ids.rowid = search_fts.rowid"
    " WHERE search_fts MATCH ?"
    " ORDER BY score DESC, search_ids.id LIMIT ?"
)

#: Every atom holding all the terms, unranked (for per-revision statistics).
MATCH_SQL: Final = (
    "SELECT search_ids.id FROM search_fts JOIN search_ids ON search_ids.rowid = search_fts.rowid"
    " WHERE search_fts MATCH ?"
)

_CHUNK: Final = 500  # ids per IN (...) lookup, far below SQLite's variable limit
_MAX_LIMIT: Final = 2**62  # keeps LIMIT inside SQLite's 64-bit integer


class SqliteSearchIndex:
    """A :class:`~contextfs.search.base.SearchIndex` over a :class:`SqliteStore`'s FTS5 tables.

    Cheap to create; any number may share one store.
    """

    def __init__(self, store: SqliteStore) -> None:
        """Attach to ``store``.

        Raises:
            StoreError: the linked SQLite lacks FTS5, or the store is closed.
        """
        self._store = store
        # True once the backfill mark is known to be gone for good (committed).
        self._ready = False
        # A read-only store with atoms not yet indexed: every atom, indexed in memory.
        self._copy: MemorySearchIndex | None = None
        with store.connection() as conn:
            require_fts5(conn, store.path)

    def __repr__(self) -> str:
        return f"SqliteSearchIndex({self._store!r})"

    def index_texts(self, items: Iterable[tuple[bytes, str]]) -> None:
        """Index ``(atom id, content)`` pairs; ids already indexed are skipped.

        Raises:
            InvalidInputError: an id is not 32 bytes or a text is not a string;
                nothing is indexed.
            StoreError: SQLite failed; nothing is indexed.
        """
        rows = checked_texts(items)
        if not rows:
            return
        with self._store.transaction():
            self._ensure_backfilled()
            with self._store.connection(write=True) as conn:
                _insert(conn, rows)

    def reindex(self, texts: Iterable[tuple[bytes, str]]) -> int:
        """Replace the whole index with ``texts``, in one transaction; return its size.

        ``texts`` is read in batches, so a whole store can be streamed through.

        Raises:
            InvalidInputError: an id or text is malformed; the transaction rolls
                back (if it is nested, the caller's outer block decides).
            StoreError: SQLite failed; the index is unchanged.
        """
        with self._store.transaction(), self._store.connection(write=True) as conn:
            conn.execute("INSERT INTO search_fts (search_fts) VALUES ('delete-all')")
            conn.execute("DELETE FROM search_ids")
            conn.execute("DELETE FROM meta WHERE key = ?", (BACKFILL_KEY,))
            for batch in checked_batches(texts):
                _insert(conn, batch)
            return _count(conn)

    def count(self) -> int:
        """Return how many atoms are indexed."""
        copy = self._read_only_copy()
        if copy is not None:
            return copy.count()
        self._catch_up()
        with self._store.connection() as conn:
            return _count(conn)

    def defer(self, oids: Iterable[bytes]) -> None:
        """Note atoms to index before the next query (one cheap insert each)."""
        rows = [(oid,) for oid in oids]
        if rows:
            with self._store.connection(write=True) as conn:
                conn.executemany("INSERT OR IGNORE INTO search_pending (id) VALUES (?)", rows)

    def forget(self, oid: bytes, text: str) -> bool:
        """Remove atom ``oid`` from the index and the deferred atoms, for a purge.

        FTS5's contentless ``delete`` command removes exactly the tokens it is
        given, so ``text`` must be the content the atom was indexed with. The
        deleted postings linger as tombstones in FTS5's segments until
        :meth:`SqliteStore.compact` merges them away.

        Returns:
            True if the atom was indexed.

        Raises:
            StoreError: SQLite failed; nothing changed.
        """
        with self._store.connection(write=True) as conn:
            conn.execute("DELETE FROM search_pending WHERE id = ?", (oid,))
            row = conn.execute("SELECT rowid FROM search_ids WHERE id = ?", (oid,)).fetchone()
            if row is None:
                return False
            conn.execute(
                "INSERT INTO search_fts (search_fts, rowid, body) VALUES ('delete', ?, ?)",
                (row[0], " ".join(tokenize(text))),
            )
            conn.execute("DELETE FROM search_ids WHERE rowid = ?", (row[0],))
            return True

    def match_ids(self, query: str) -> set[bytes]:
        """Return the ids of every atom holding all of ``query``'s terms, unranked."""
        expression = fts5_expression(parse_query(query), "all")
        copy = self._read_only_copy()
        if copy is not None:
            return copy.match_ids(query)
        self._catch_up()
        with self._store.connection() as conn:  # BLOBs come back as bytes already
            return {row[0] for row in conn.execute(MATCH_SQL, (expression,)).fetchall()}

    def search(self, query: str, *, limit: int, mode: Mode = "any") -> list[tuple[bytes, float]]:
        """Return up to ``limit`` ``(atom id, score)`` pairs, best first, ties by id.

        Raises:
            InvalidInputError: the query has no words, or ``mode`` or ``limit`` is invalid.
            StoreError: SQLite failed.
        """
        mode = check_mode(mode)
        expression = fts5_expression(parse_query(query), mode)
        limit = check_limit(limit)
        if limit <= 0:
            return []
        copy = self._read_only_copy()
        if copy is not None:
            return copy.search(query, limit=limit, mode=mode)
        self._catch_up()
        with self._store.connection() as conn:
            rows = conn.execute(SEARCH_SQL, (expression, min(limit, _MAX_LIMIT))).fetchall()
        return [(bytes(oid), float(score)) for oid, score in rows]

    def _read_only_copy(self) -> MemorySearchIndex | None:
        """On a read-only store whose index lags its atoms: an in-memory index of every atom.

        Catching up would write; a store that cannot be written here (a
        read-only mount, a full disk) is searched through a copy built once
        from its atoms instead, with the same tokens and BM25 scores.
        """
        if self._store.read_only is None:
            return None
        if self._copy is None:
            with self._store.connection() as conn:
                lagging = _backfill_pending(conn) or (
                    conn.execute("SELECT 1 FROM search_pending LIMIT 1").fetchone() is not None
                )
            if not lagging:
                return None
            copy = MemorySearchIndex(MemoryStore())
            copy.index_texts(atom_texts(self._store))
            self._copy = copy
        return self._copy

    def _catch_up(self) -> None:
        """Index what a pre-search store held and every deferred atom, before a query."""
        self._ensure_backfilled()
        with self._store.connection() as conn:
            if conn.execute("SELECT 1 FROM search_pending LIMIT 1").fetchone() is None:
                return
        with self._store.transaction(), self._store.connection(write=True) as conn:
            oids = [bytes(row[0]) for row in conn.execute("SELECT id FROM search_pending")]
            for batch in checked_batches(stored_texts(self._store, oids)):
                _insert(conn, batch)
            conn.execute("DELETE FROM search_pending")

    def _ensure_backfilled(self) -> None:
        """Index the atoms a pre-search store held, once, the first time the index is used.

        The mark is re-read under the write lock, so of several handles or
        processes exactly one does the work. If the backfill joins a caller's
        transaction that later rolls back, the mark comes back with it and the
        next use backfills again.
        """
        if self._ready:
            return
        with self._store.connection() as conn:
            pending = _backfill_pending(conn)
            if not pending and not conn.in_transaction:
                self._ready = True  # committed state: nothing can set the mark again
        if not pending:
            return
        with self._store.transaction(), self._store.connection(write=True) as conn:
            if not _backfill_pending(conn):
                return
            for batch in checked_batches(atom_texts(self._store)):
                _insert(conn, batch)
            conn.execute("DELETE FROM meta WHERE key = ?", (BACKFILL_KEY,))


def _backfill_pending(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM meta WHERE key = ?", (BACKFILL_KEY,)).fetchone()
    return row is not None


def _count(conn: sqlite3.Connection) -> int:
    (count,) = conn.execute("SELECT count(*) FROM search_ids").fetchone()
    return int(count)


def _insert(conn: sqlite3.Connection, rows: list[tuple[bytes, str]]) -> None:
    """Index the rows whose ids are not indexed yet; the caller holds the write lock.

    Rowids are allocated after the current maximum under that lock, so both
    tables are filled with two ``executemany`` calls instead of a round trip per row.
    """
    indexed: set[bytes] = set()
    for start in range(0, len(rows), _CHUNK):
        chunk = [oid for oid, _ in rows[start : start + _CHUNK]]
        sql = f"SELECT id FROM search_ids WHERE id IN ({','.join('?' * len(chunk))})"
        indexed.update(row[0] for row in conn.execute(sql, chunk))
    fresh = [(oid, text) for oid, text in rows if oid not in indexed]
    if not fresh:
        return
    (top,) = conn.execute("SELECT coalesce(max(rowid), 0) FROM search_ids").fetchone()
    numbered = [(top + n, oid, text) for n, (oid, text) in enumerate(fresh, 1)]
    conn.executemany(
        "INSERT INTO search_ids (rowid, id) VALUES (?, ?)", [(r, oid) for r, oid, _ in numbered]
    )
    conn.executemany(
        "INSERT INTO search_fts (rowid, body) VALUES (?, ?)",
        [(r, " ".join(tokenize(text))) for r, _, text in numbered],
    )
