"""The SQLite backend: the :class:`~contextfs.store.base.Store` port over one database file.

Invariants this module owns:

* One connection per store object, in autocommit mode (``isolation_level=None``) so
  every transaction is explicit. Threads share it under one re-entrant lock; an
  open transaction holds that lock for its whole body, so no other thread's
  statement can slip into it.
* Every write takes the database write lock up front with ``BEGIN IMMEDIATE``. A
  deferred transaction that later upgrades can fail with ``SQLITE_BUSY`` without
  waiting, which would turn a compare-and-swap race into an error.
* ``journal_mode=WAL`` with ``synchronous=FULL``: a write is durable when the call
  (or the outermost transaction) returns, and a crash rolls back anything
  uncommitted (DESIGN.md section 11).
* SQL text never contains caller data: values travel as parameters only.
* :class:`sqlite3.Error` never escapes; it becomes a one-line :class:`StoreError`.

Transactions nest and roll back exactly as in :mod:`contextfs.store.memory`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Final

from contextfs.errors import (
    CorruptObjectError,
    InvalidInputError,
    ReadOnlyStoreError,
    StoreError,
)
from contextfs.store.base import OBJECT_KINDS, ReflogEntry, StoredObject
from contextfs.store.codec import (
    DELTA,
    MAX_SAMPLES,
    RAW,
    Codec,
    Learner,
    StoredRow,
    changes,
    split_sample,
    walk_deltas,
)
from contextfs.store.memory import check_hex_prefix, checked_objects
from contextfs.store.nesting import NestedTransactions
from contextfs.tokens import TokenRecord, token_record, token_row

#: The value of ``meta.format``; bumped only for changes old code must not read.
FORMAT: Final = "1"

#: Ordered schema steps ``(step, name, statements)``, recorded in
#: ``schema_migrations`` as they are applied. Append only: never edit a released step.
MIGRATIONS: Final[tuple[tuple[int, str, tuple[str, ...]], ...]] = (
    (
        1,
        "create objects, refs and meta",
        (
            "CREATE TABLE objects ("
            "id BLOB PRIMARY KEY, kind TEXT NOT NULL, data BLOB NOT NULL) WITHOUT ROWID",
            "CREATE TABLE refs (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "INSERT INTO meta (key, value) VALUES ('format', '1')",  # must equal FORMAT
        ),
    ),
    (
        2,
        "create the full-text search index",
        (
            # Contentless (content=''): the text lives once, in the atom objects;
            # the FTS5 table keeps only the inverted index and token counts.
            "CREATE VIRTUAL TABLE search_fts USING fts5("
            "body, content='', tokenize='unicode61 remove_diacritics 2')",
            # FTS5 rows are keyed by integer rowid; this maps them to atom ids.
            "CREATE TABLE search_ids (rowid INTEGER PRIMARY KEY, id BLOB UNIQUE NOT NULL)",
            # Atoms staged but not yet tokenized: indexing waits for the next query,
            # so bulk ingest pays one cheap insert per atom, not a tokenization.
            "CREATE TABLE search_pending (id BLOB PRIMARY KEY) WITHOUT ROWID",
            # SQL cannot decode atom bodies, so a store that already holds atoms is
            # marked for a backfill that contextfs.search.sqlite_fts runs on first use.
            "INSERT INTO meta (key, value) SELECT 'search_backfill', 'pending'"
            " WHERE EXISTS (SELECT 1 FROM objects WHERE kind = 'atom')",
        ),
    ),
    (
        3,
        "create the vector index",
        (
            # One float32 vector per (embedder, atom id): derived data, like the
            # full-text index (contextfs.search.sqlite_vectors). Embedder ids are long
            # text, so each gets a number here; generation is bumped by every write of
            # its vectors, so a process that keeps them in memory sees others' writes;
            # tree is a snapshot all of whose atoms have a vector (catching up diffs it).
            "CREATE TABLE vector_embedders ("
            "number INTEGER PRIMARY KEY, embedder TEXT UNIQUE NOT NULL,"
            " generation INTEGER NOT NULL, tree BLOB)",
            # A rowid table: vectors are ~1 KiB, too big for a WITHOUT ROWID b-tree.
            "CREATE TABLE vectors ("
            "embedder INTEGER NOT NULL REFERENCES vector_embedders (number),"
            " id BLOB NOT NULL, vector BLOB NOT NULL, UNIQUE (embedder, id))",
            "CREATE INDEX vectors_by_id ON vectors (id)",
        ),
    ),
    (
        4,
        "create the reflog",
        (
            # Every move of HEAD and the branches, appended with the move (git's reflog).
            "CREATE TABLE reflog (seq INTEGER PRIMARY KEY, ref TEXT NOT NULL, old TEXT,"
            " new TEXT, who TEXT NOT NULL, at INTEGER NOT NULL, why TEXT NOT NULL)",
            "CREATE INDEX reflog_by_ref ON reflog (ref, seq)",
        ),
    ),
    (
        5,
        "compress objects",
        (
            # How each object is kept (contextfs.store.codec): 0 raw, as every object
            # stored before this step; 1 a zstd frame; 2 a zstd delta against base.
            "ALTER TABLE objects ADD COLUMN codec INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE objects ADD COLUMN base BLOB",
            # zstd dictionaries trained from the store's own objects, by the id their
            # frames name; appended only, so every frame ever written stays readable.
            "CREATE TABLE dictionaries (id INTEGER PRIMARY KEY, kind TEXT NOT NULL,"
            " data BLOB NOT NULL)",
        ),
    ),
    (
        6,
        "keep access tokens",
        (
            # Scoped tokens of `contextfs token` (contextfs.tokens): only the SHA-256 of
            # each secret, its scope (1 read, 2 write, 3 admin), branch glob and times (µs).
            "CREATE TABLE tokens (name TEXT PRIMARY KEY, digest TEXT UNIQUE NOT NULL,"
            " scope INTEGER NOT NULL, branches TEXT, created INTEGER NOT NULL,"
            " expires INTEGER, revoked INTEGER, created_by TEXT NOT NULL)",
        ),
    ),
)

#: Derived data (:class:`~contextfs.store.base.DerivedStore`) lives in a table made by
#: its first write, not by a schema step: older versions still open the store.
_DERIVED_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS contextfs_derived (name TEXT PRIMARY KEY, data BLOB NOT NULL)"
)
_DERIVED_EXISTS: Final = (
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'contextfs_derived'"
)

#: Schema steps that create FTS5 tables, so need an SQLite built with FTS5.
FTS5_STEPS: Final = frozenset({2})

_CREATE_MIGRATIONS_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "step INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
)

#: ``find_ids`` queries: a range over the primary key, never a table scan.
FIND_IDS_SQL: Final = "SELECT id FROM objects WHERE id >= ? AND id < ? ORDER BY id LIMIT ?"
FIND_IDS_TO_END_SQL: Final = "SELECT id FROM objects WHERE id >= ? ORDER BY id LIMIT ?"
#: The same ranges keeping only some kinds; ``{}`` is one ``?`` per kind.
FIND_KIND_IDS_SQL: Final = (
    "SELECT id FROM objects WHERE id >= ? AND id < ? AND kind IN ({}) ORDER BY id LIMIT ?"
)
FIND_KIND_IDS_TO_END_SQL: Final = (
    "SELECT id FROM objects WHERE id >= ? AND kind IN ({}) ORDER BY id LIMIT ?"
)

#: The columns of ``tokens``, in the order of :func:`token_row`.
_TOKEN_COLUMNS: Final = "name, digest, scope, branches, created, expires, revoked, created_by"

#: Milliseconds a purge waits for other connections to leave the log before refusing.
_READY_WAIT_MS: Final = 2000

#: The ``meta`` key that says a bulk write's atoms made no dictionary worth keeping.
_UNPAID: Final = "atom_dictionary_unpaid"
#: Objects stored whole, from an id on (a page of iter_objects).
_WHOLE_ROWS: Final = (
    f"SELECT id, kind, data, codec, base FROM objects WHERE id > ? AND codec != {DELTA}"
)
#: Objects as stored (contextfs.store.codec decodes them).
_SELECT_ROWS: Final = "SELECT id, kind, data, codec, base FROM objects"
_CHUNK: Final = 500  # ids per IN (...) lookup, far below SQLite's variable limit
_PAGE: Final = 1000  # rows per iter_objects page
_MAX_LIMIT: Final = 2**62  # keeps LIMIT inside SQLite's 64-bit integer


def id_range(hex_prefix: str) -> tuple[bytes, bytes | None]:
    """Return the ``[low, high)`` id bounds of a hex prefix; ``high`` None means unbounded.

    BLOBs compare with memcmp, which orders ids as their hex spellings do, so the
    ids starting with a prefix are exactly one primary-key range. An odd-length
    prefix ``"a"`` covers ``a0...`` up to ``af...``.
    """
    if len(hex_prefix) % 2:
        low, top = bytes.fromhex(hex_prefix + "0"), bytes.fromhex(hex_prefix + "f")
    else:
        low = top = bytes.fromhex(hex_prefix)
    # The smallest byte string above every string that starts with ``top``.
    stem = top.rstrip(b"\xff")
    high = stem[:-1] + bytes([stem[-1] + 1]) if stem else None
    return low, high


def fts5_available(conn: sqlite3.Connection) -> bool:
    """Return whether the linked SQLite can create FTS5 tables.

    The compile option answers for builds with FTS5 built in; otherwise a probe
    table in the connection's private ``temp`` schema catches FTS5 loaded as an
    extension.
    """
    (built_in,) = conn.execute("SELECT sqlite_compileoption_used('ENABLE_FTS5')").fetchone()
    if built_in:
        return True
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.contextfs_fts5_probe USING fts5(x)")
    except sqlite3.OperationalError:
        return False
    conn.execute("DROP TABLE temp.contextfs_fts5_probe")
    return True


def require_fts5(conn: sqlite3.Connection, path: Path) -> None:
    """Raise a one-line :class:`StoreError` unless the linked SQLite has FTS5.

    Raises:
        StoreError: FTS5 is missing.
    """
    if not fts5_available(conn):
        raise StoreError(
            f"store {str(path)!r}: SQLite {sqlite3.sqlite_version} was built without FTS5,"
            " which ContextFS needs for full-text search; use a Python whose sqlite3 has FTS5"
        )


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SqliteStore(NestedTransactions):
    """A :class:`~contextfs.store.base.Store` in one SQLite file; build it with :meth:`open`.

    Several store objects, threads and processes may share one file: refs move by
    compare-and-swap under SQLite's write lock, so no update is lost.
    """

    #: Its entry in the backend registry (:mod:`contextfs.backends`).
    backend: ClassVar[str] = "sqlite"

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        """Wrap an already configured connection; use :meth:`open` instead."""
        self._conn: sqlite3.Connection | None = connection
        self._path = path
        self._lock = threading.RLock()
        self._depth = 0
        self._busy_ms = 30_000  # set again by _configure
        self._codec = Codec(loader=self._load_dictionary)  # dictionaries read by _configure
        self._learner = Learner()  # the atoms to train the store's first dictionary on
        #: Why this store can only be read here (a read-only folder, a full disk), or None.
        self.read_only: str | None = None

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, create: bool = False, busy_timeout: float = 30.0
    ) -> SqliteStore:
        """Open (and with ``create``, make) the store at ``path``, migrating its schema.

        Args:
            path: the database file.
            create: make the file and schema if missing; otherwise it must exist.
            busy_timeout: seconds to wait for another writer before giving up.

        An existing store that cannot be written here (a read-only folder or
        mount, a file without write permission, a full disk) opens read-only:
        every read works, and every write raises :class:`ReadOnlyStoreError`
        naming why (:attr:`read_only`).

        Raises:
            StoreError: the file is missing, not a ContextFS store, damaged, or
                written by a newer ContextFS; or it is read-only here and needs
                a schema upgrade, which only a writable open can make.
        """
        where = Path(path)
        if not create and not where.exists():
            raise StoreError(f"no ContextFS store at {str(where)!r}")
        # A URI with mode=rw refuses to create the file, closing the race with the check above.
        try:
            return cls._connect(where, "rwc" if create else "rw", busy_timeout, create=create)
        except StoreError as exc:
            cause = exc.__cause__
            if create or not isinstance(cause, sqlite3.Error) or not _cannot_write(cause):
                raise
            reason = _write_refusal(cause)
        for mode in _READ_ONLY_MODES:
            try:
                store = cls._connect(where, mode, busy_timeout, read_only=reason)
            except StoreError as exc:
                if isinstance(exc.__cause__, sqlite3.Error) and _cannot_write(exc.__cause__):
                    continue
                raise
            if mode.endswith("immutable=1") and _has_wal(where):
                store.close()  # the write-ahead log holds commits this mode would not see
                break
            return store
        raise StoreError(
            f"store {str(where)!r} cannot be read here: it is read-only ({reason}) and"
            " SQLite cannot open its write-ahead log"
        )

    @classmethod
    def _connect(
        cls,
        where: Path,
        mode: str,
        busy_timeout: float,
        *,
        create: bool = False,
        read_only: str | None = None,
    ) -> SqliteStore:
        """Connect with URI ``mode`` and configure the store (see :meth:`open`)."""
        try:
            conn = sqlite3.connect(
                f"{where.absolute().as_uri()}?mode={mode}",
                uri=True,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise StoreError(_one_line(where, exc)) from exc
        store = cls(conn, where)
        store.read_only = read_only
        try:
            store._configure(create, busy_timeout)
        except BaseException:
            conn.close()
            raise
        return store

    @property
    def path(self) -> Path:
        """The database file this store reads and writes."""
        return self._path

    def __repr__(self) -> str:
        return f"SqliteStore({str(self._path)!r})"

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------

    @contextmanager
    def _guard(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock, check the store is open, and translate SQLite's errors."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreError(f"store {str(self._path)!r} is closed")
            try:
                yield conn
            except sqlite3.Error as exc:
                raise StoreError(_one_line(self._path, exc)) from exc
            except UnicodeEncodeError as exc:
                raise InvalidInputError(f"text {exc.object!r} is not valid Unicode") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """Run a write inside the open transaction, or in its own short one.

        Raises:
            ReadOnlyStoreError: the store was opened read-only (nothing is tried).
        """
        if self.read_only is not None:
            raise ReadOnlyStoreError(
                f"store {str(self._path)!r} is read-only here ({self.read_only});"
                " nothing was written"
            )
        with self._guard() as conn:
            if self._depth:
                # SQLite ends a transaction itself after some errors (disk full, I/O);
                # writing on would autocommit statement by statement.
                if not conn.in_transaction:
                    raise StoreError(f"store {str(self._path)!r}: the transaction was aborted")
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                self._forget_uncommitted(conn)
                raise

    @contextmanager
    def connection(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """Lend the guarded connection to a module that keeps its own tables in this file.

        The body holds the store's lock and its SQLite errors become
        :class:`StoreError`, as in every method here. With ``write`` it runs
        inside the open transaction, or in a short ``BEGIN IMMEDIATE`` one of its
        own that commits when the body returns and rolls back if it raises.
        Callers bind every value as a parameter.

        Raises:
            StoreError: the store is closed, the transaction was aborted, or SQLite failed.
        """
        with self._write() if write else self._guard() as conn:
            yield conn

    @contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """Make every read in the body see one committed state, without blocking writers.

        Holds one deferred read transaction (in WAL mode other connections keep
        writing; this one keeps reading the state of its first read), so a long
        scan such as ``verify`` never sees half of a concurrent commit. Other
        threads using this store object wait. Inside an open transaction it
        just joins it. The body must not write.

        Raises:
            StoreError: the store is closed, or SQLite failed.
        """
        with self._lock:
            if self._depth:
                yield
                return
            with self._guard() as conn:
                conn.execute("BEGIN")
            try:
                yield
            finally:
                with self._guard() as conn:
                    _rollback(conn)

    def _configure(self, create: bool, busy_timeout: float) -> None:
        with self._guard() as conn:
            # PRAGMAs take no parameters; the value is an int computed here.
            self._busy_ms = int(busy_timeout * 1000)
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            if self.read_only is None:
                conn.execute("PRAGMA journal_mode = WAL").fetchone()
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            # Check without the write lock first so that opening an up-to-date store
            # never waits for a writer; re-check under the lock before migrating.
            pending = self._pending_steps(conn, create)
            if pending and self.read_only is not None:
                raise StoreError(
                    f"store {str(self._path)!r} needs schema step {pending[-1][0]} of this"
                    f" ContextFS, but is read-only here ({self.read_only}); open it once"
                    " where it can be written"
                )
            if pending:
                with self._write():
                    pending = self._pending_steps(conn, create)
                    if any(step in FTS5_STEPS for step, _, _ in pending):
                        require_fts5(conn, self._path)
                    conn.execute(_CREATE_MIGRATIONS_TABLE)
                    for step, name, statements in pending:
                        for sql in statements:
                            conn.execute(sql)
                        conn.execute(
                            "INSERT INTO schema_migrations (step, name, applied_at)"
                            " VALUES (?, ?, ?)",
                            (step, name, _utc_now()),
                        )
            row = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            if row is None or row[0] != FORMAT:
                found = None if row is None else row[0]
                raise StoreError(
                    f"store {str(self._path)!r} has format {found!r}, expected {FORMAT!r}"
                )
            self._codec = self._read_codec(conn)

    def _read_codec(self, conn: sqlite3.Connection) -> Codec:
        """A codec with every dictionary the store holds."""
        rows = conn.execute("SELECT id, kind, data FROM dictionaries").fetchall()
        return Codec(rows, loader=self._load_dictionary)

    def _load_dictionary(self, dict_id: int) -> tuple[str, bytes] | None:
        """Read one dictionary (trained by another connection since this one opened)."""
        with self._guard() as conn:
            row = conn.execute(
                "SELECT kind, data FROM dictionaries WHERE id = ?", (dict_id,)
            ).fetchone()
        return None if row is None else (row[0], row[1])

    def _pending_steps(
        self, conn: sqlite3.Connection, create: bool
    ) -> list[tuple[int, str, tuple[str, ...]]]:
        """Return the schema steps still to apply; refuse foreign and newer databases."""
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "schema_migrations" not in tables:
            if tables or not create:
                raise StoreError(f"{str(self._path)!r} is not a ContextFS store")
            return list(MIGRATIONS)
        (applied,) = conn.execute("SELECT coalesce(max(step), 0) FROM schema_migrations").fetchone()
        latest = MIGRATIONS[-1][0]
        if applied > latest:
            raise StoreError(
                f"store {str(self._path)!r} has schema step {applied}, but this version"
                f" of ContextFS knows steps up to {latest}; upgrade ContextFS"
            )
        return [m for m in MIGRATIONS if m[0] > applied]

    # -- objects -------------------------------------------------------------

    def get_object(self, oid: bytes) -> StoredObject | None:
        """Return the object stored under ``oid``, or None if absent."""
        with self._guard() as conn:
            row = conn.execute(f"{_SELECT_ROWS} WHERE id = ?", (oid,)).fetchone()
        if row is None:
            return None
        if row[3] == RAW:
            return StoredObject(row[1], row[2])
        return self.get_objects([oid]).get(oid)

    def get_objects(self, oids: Sequence[bytes]) -> dict[bytes, StoredObject]:
        """Return the present objects among ``oids`` (absent ids are left out)."""
        unique = list(dict.fromkeys(oids))
        try:
            found = self._decoded_rows(unique)
        except CorruptObjectError:
            if self.in_transaction():
                raise
            # A collection may have re-encoded a chain between the reads of a delta
            # and of its base: read both again in one snapshot before calling it damage.
            with self.read_snapshot():
                found = self._decoded_rows(unique)
        return {oid: found[oid] for oid in unique if oid in found}

    def _decoded_rows(self, oids: list[bytes]) -> dict[bytes, StoredObject]:
        rows = self._select_in(f"{_SELECT_ROWS} WHERE id IN", oids)
        return self._codec.objects(rows, self._rows)

    def _rows(self, oids: list[bytes]) -> dict[bytes, StoredRow]:
        """The stored rows of ``oids``, as kept (compressed, or deltas)."""
        rows = self._select_in(f"{_SELECT_ROWS} WHERE id IN", oids)
        return {row[0]: StoredRow(row[1], row[2], row[3], row[4]) for row in rows}

    def has_objects(self, oids: Sequence[bytes]) -> set[bytes]:
        """Return the subset of ``oids`` that is stored."""
        rows = self._select_in("SELECT id FROM objects WHERE id IN", list(dict.fromkeys(oids)))
        return {row[0] for row in rows}

    def _select_in(self, select: str, oids: list[bytes]) -> list[Any]:
        """Run ``select ... IN (?, ...)`` over ``oids`` in chunks of bound parameters."""
        rows: list[Any] = []
        with self._guard() as conn:
            for start in range(0, len(oids), _CHUNK):
                chunk = oids[start : start + _CHUNK]
                rows += conn.execute(f"{select} ({','.join('?' * len(chunk))})", chunk)
        return rows

    def put_objects(self, objects: Iterable[tuple[bytes, str, bytes]]) -> None:
        """Store ``(id, kind, data)`` triples; ids already present are skipped.

        Raises:
            InvalidInputError: the batch holds a malformed triple; nothing is stored.
            StoreError: SQLite failed; nothing is stored.
        """
        rows = checked_objects(objects)
        if not rows:
            return
        # Inserting in key order touches each B-tree page once instead of at random.
        rows.sort(key=itemgetter(0))
        sample = self._learner.offer(self._codec, rows)
        with self._write() as conn:
            if sample:
                self._auto_train(conn, sample)
            encode = self._codec.encode
            conn.executemany(
                "INSERT OR IGNORE INTO objects (id, kind, codec, data) VALUES (?, ?, ?, ?)",
                [(oid, kind, *encode(kind, data)) for oid, kind, data in rows],
            )

    def _auto_train(self, conn: sqlite3.Connection, sample: list[bytes]) -> None:
        """Learn the first atom dictionary from atoms written, unless it did not pay before."""
        if conn.execute("SELECT 1 FROM meta WHERE key = ?", (_UNPAID,)).fetchone():
            return
        if not self._adopt_dictionary(conn, "atom", sample, first=True):
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, 'yes')", (_UNPAID,))

    def _adopt_dictionary(
        self, conn: sqlite3.Connection, kind: str, sample: list[bytes], *, first: bool = False
    ) -> bool:
        """Train a dictionary for ``kind`` on ``sample``; store it and use it if it pays.

        Runs in the write transaction. The dictionaries are read again first,
        so one trained meanwhile by another connection is used, never clashed
        with; with ``first``, such a dictionary is kept instead of training.
        """
        self._codec = self._read_codec(conn)
        if first and self._codec.dictionary_for(kind) is not None:
            return True
        trained = self._codec.train(kind, *split_sample(sample))
        if trained is None:
            return False
        dict_id, dictionary = trained
        conn.execute(
            "INSERT INTO dictionaries (id, kind, data) VALUES (?, ?, ?)",
            (dict_id, kind, dictionary),
        )
        self._codec.add_dictionary(dict_id, kind, dictionary)
        return True

    def find_ids(
        self, hex_prefix: str, limit: int, kinds: Collection[str] | None = None
    ) -> list[bytes]:
        """Return up to ``limit`` sorted ids whose hex spelling starts with ``hex_prefix``.

        Raises:
            InvalidInputError: ``hex_prefix`` is not 0-64 lowercase hex digits.
        """
        check_hex_prefix(hex_prefix)
        if limit <= 0:
            return []
        low, high = id_range(hex_prefix)
        limit = min(limit, _MAX_LIMIT)
        if kinds is None:
            sql = FIND_IDS_TO_END_SQL if high is None else FIND_IDS_SQL
            params: tuple[object, ...] = ()
        else:
            unknown = set(kinds) - OBJECT_KINDS
            if unknown:
                raise InvalidInputError(f"unknown object kind(s): {sorted(unknown)!r}")
            template = FIND_KIND_IDS_TO_END_SQL if high is None else FIND_KIND_IDS_SQL
            params = tuple(sorted(kinds))
            sql = template.format(", ".join("?" * len(params)))  # placeholders only
        bounds = (low,) if high is None else (low, high)
        with self._guard() as conn:
            cursor = conn.execute(sql, (*bounds, *params, limit))
            return [row[0] for row in cursor]

    def iter_objects(self, kind: str | None = None) -> Iterator[tuple[bytes, str, bytes]]:
        """Yield every stored ``(id, kind, data)``, optionally of one kind, paged.

        Objects stored whole come by id; then those stored as deltas, each after
        its base, so that each is decoded once (``codec.walk_deltas``).
        """
        select = (
            f"SELECT id, kind, data, codec, base FROM objects WHERE id > ? AND codec != {DELTA}"
        )
        pairs = "SELECT id, base FROM objects WHERE codec = ?"
        if kind is None:
            yield from self._decoded(self._pages(select, ()))
            with self._guard() as conn:
                found = conn.execute(pairs, (DELTA,)).fetchall()
        else:
            yield from self._decoded(self._pages(select + " AND kind = ?", (kind,)))
            with self._guard() as conn:
                found = conn.execute(pairs + " AND kind = ?", (DELTA, kind)).fetchall()
        if found:
            yield from walk_deltas(self._codec, found, self._rows, self.get_objects)

    def _decoded(self, rows: Iterable[Any]) -> Iterator[tuple[bytes, str, bytes]]:
        """Decode ``(id, kind, data, codec, base)`` rows a page at a time, in order."""
        page: list[Any] = []
        for row in rows:
            page.append(row)
            if len(page) >= _PAGE:
                yield from self._flush(page)
        yield from self._flush(page)

    def _flush(self, page: list[Any]) -> Iterator[tuple[bytes, str, bytes]]:
        found = self._codec.objects(page, self._rows)
        for oid, *_ in page:
            yield oid, found[oid].kind, found[oid].data
        page.clear()

    def _pages(self, select: str, params: tuple[object, ...]) -> Iterator[Any]:
        """Rows of ``select`` (its first column the id, its first parameter after it), by id.

        Reads page by page after the last id seen, so no statement stays open between
        yields and other threads can use the store while the caller iterates.
        """
        sql = select + " ORDER BY id LIMIT ?"
        last = b""
        while True:
            with self._guard() as conn:
                page = conn.execute(sql, (last, *params, _PAGE)).fetchall()
            yield from page
            if len(page) < _PAGE:
                return
            last = page[-1][0]

    def count_objects(self) -> int:
        """Return how many objects are stored."""
        with self._guard() as conn:
            (count,) = conn.execute("SELECT count(*) FROM objects").fetchone()
        return int(count)

    def object_sizes(self) -> Iterator[tuple[bytes, str, int]]:
        """Yield every stored ``(id, kind, size)``, by id, a page at a time, without the data."""
        return self._pages("SELECT id, kind, length(data) FROM objects WHERE id > ?", ())

    def delete_objects(self, oids: Sequence[bytes]) -> int:
        """Delete the objects ``oids``; return how many were stored, joining the transaction."""
        deleted = 0
        with self.transaction(), self._write() as conn:
            self._detach_deltas(oids)
            for start in range(0, len(oids), _PAGE):
                chunk = list(oids[start : start + _PAGE])
                marks = ",".join("?" * len(chunk))
                deleted += conn.execute(
                    f"DELETE FROM objects WHERE id IN ({marks})", chunk
                ).rowcount
        return deleted

    def reflog_since(self, at: int) -> list[ReflogEntry]:
        """Return every ref's entries made at ``at`` (µs) or later, oldest first."""
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT ref, old, new, who, at, why FROM reflog WHERE at >= ? ORDER BY seq", (at,)
            ).fetchall()
        return [ReflogEntry(*row) for row in rows]

    def expire_reflog(self, before: int) -> int:
        """Delete the entries made before ``before`` (µs); return how many."""
        with self._write() as conn:
            return int(conn.execute("DELETE FROM reflog WHERE at < ?", (before,)).rowcount)

    def erase_object(self, oid: bytes) -> bool:
        """Replace object ``oid``'s data with an empty blob (kind kept); False if absent.

        Turns on ``secure_delete`` for this connection first (and leaves it on),
        so SQLite zeroes the old bytes in the page instead of leaving them in its
        free space. Copies can survive in the write-ahead log and in pages freed
        earlier until :meth:`compact` runs.

        Raises:
            StoreError: SQLite failed; nothing changed.
        """
        with self.transaction(), self._write() as conn:
            conn.execute("PRAGMA secure_delete = ON")
            self._detach_deltas([oid])
            cursor = conn.execute(
                "UPDATE objects SET data = ?, codec = 0, base = NULL WHERE id = ?", (b"", oid)
            )
            return cursor.rowcount == 1

    # -- packing (contextfs gc) ---------------------------------------------------------

    def _detach_deltas(self, oids: Sequence[bytes]) -> None:
        """Keep whole every delta built on one of ``oids`` (about to go) and not among them."""
        going = set(oids)
        with self._guard() as conn:  # one pass over the deltas: no index to keep up on writes
            rows = conn.execute("SELECT id, base FROM objects WHERE codec = ?", (DELTA,))
            dependents = [oid for oid, base in rows if base in going and oid not in going]
        if dependents:
            self.set_delta_bases([(oid, None) for oid in dependents])

    def set_delta_bases(self, plan: Sequence[tuple[bytes, bytes | None]]) -> int:
        """Keep each object of ``plan`` as a delta against its base, or whole (None), in order.

        A delta that is not smaller than the object compressed whole is not kept.
        The caller orders ``plan`` so that no chain loops or grows beyond
        :data:`~contextfs.store.codec.MAX_CHAIN` (a base is planned before the
        deltas built on it). Returns how many objects changed encoding.
        """
        changed = 0
        codec = self._codec
        with self._write() as conn:
            for start in range(0, len(plan), _CHUNK):
                chunk = plan[start : start + _CHUNK]
                current = self._rows([oid for oid, _ in chunk])
                todo = changes(chunk, current)
                named = [oid for oid, _ in todo] + [base for _, base in todo if base is not None]
                updates = codec.rewrites(todo, current, self.get_objects(named))
                conn.executemany(
                    "UPDATE objects SET codec = ?, data = ?, base = ? WHERE id = ?", updates
                )
                changed += len(updates)
        return changed

    def train_dictionary(self, kind: str) -> bool:
        """Train a zstd dictionary on a sample of the store's ``kind`` objects; keep it if it pays.

        Adopting it recompresses every whole object of the kind with it, inside
        the open transaction (or one of its own).
        """
        with self._write() as conn:
            # Ids are uniform hashes: the rows after a random id are a random sample.
            sql = "SELECT id FROM objects WHERE kind = ? AND id {} ? ORDER BY id LIMIT ?"
            start = os.urandom(32)
            ids = [row[0] for row in conn.execute(sql.format(">="), (kind, start, MAX_SAMPLES))]
            if len(ids) < MAX_SAMPLES:
                more = conn.execute(sql.format("<"), (kind, start, MAX_SAMPLES - len(ids)))
                ids += [row[0] for row in more]
            sample = [stored.data for stored in self.get_objects(ids).values() if stored.data]
            if not self._adopt_dictionary(conn, kind, sample):
                return False
            page = (
                "SELECT id FROM objects WHERE kind = ? AND codec != ? AND id > ?"
                " ORDER BY id LIMIT ?"
            )
            last = b""
            while True:
                ids = [row[0] for row in conn.execute(page, (kind, DELTA, last, _PAGE))]
                if not ids:
                    return True
                last = ids[-1]
                conn.executemany(
                    "UPDATE objects SET codec = ?, data = ? WHERE id = ?",
                    [
                        (*self._codec.encode(kind, stored.data), oid)
                        for oid, stored in self.get_objects(ids).items()
                        if stored.data
                    ],
                )

    def in_transaction(self) -> bool:
        """Whether a transaction is open on this store object (VACUUM must wait for its end)."""
        with self._guard() as conn:
            return bool(self._depth or conn.in_transaction)

    def compact(self) -> None:
        """Rewrite the database so no erased bytes survive in the file, its log or free pages.

        Merges the full-text index's segments (FTS5 ``optimize`` drops the
        tombstoned postings of forgotten atoms), copies the write-ahead log into
        the database and truncates it, rebuilds the file with ``VACUUM`` (which
        copies only live rows, so free pages and slack vanish), and empties the
        log again. Costs time proportional to the whole store.

        Raises:
            StoreError: called inside a transaction, another connection kept the
                log from being emptied, or SQLite failed.
        """
        with self._guard() as conn:
            if self._depth or conn.in_transaction:
                raise StoreError(f"store {str(self._path)!r}: cannot compact inside a transaction")
            conn.execute("PRAGMA secure_delete = ON")
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'search_fts'").fetchone():
                conn.execute("INSERT INTO search_fts (search_fts) VALUES ('optimize')")
            self._checkpoint(conn)
            conn.execute("VACUUM")
            self._checkpoint(conn)

    def ready_to_compact(self) -> bool:
        """Whether no other connection holds the log now: a purge checks before it starts.

        Empties the write-ahead log as a side effect (harmless: a checkpoint).

        Raises:
            ReadOnlyStoreError: the store is read-only here (it could never compact).
        """
        if self.read_only is not None:
            raise ReadOnlyStoreError(
                f"store {str(self._path)!r} is read-only here ({self.read_only});"
                " nothing was written"
            )
        with self._guard() as conn:
            if self._depth or conn.in_transaction:
                return False
            conn.execute(f"PRAGMA busy_timeout = {min(self._busy_ms, _READY_WAIT_MS)}")
            try:
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        return not busy

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        """Copy the whole write-ahead log into the database and truncate it to zero bytes."""
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise StoreError(
                f"store {str(self._path)!r}: another connection is using the database,"
                " so its write-ahead log could not be emptied; retry when it is idle"
            )

    # -- refs ------------------------------------------------------------------

    def read_ref(self, name: str) -> str | None:
        """Return the ref's value, or None if it does not exist."""
        with self._guard() as conn:
            row = conn.execute("SELECT value FROM refs WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_ref_if_equals(self, name: str, old: str | None, new: str | None) -> bool:
        """Move ``name`` from ``old`` to ``new`` atomically; see the port for the contract.

        Each case is one conditional statement under the write lock, so the compare
        and the swap cannot be separated by another process.
        """
        with self._write() as conn:
            if old is None and new is None:
                row = conn.execute("SELECT 1 FROM refs WHERE name = ?", (name,)).fetchone()
                return row is None
            if old is None:
                sql = "INSERT INTO refs (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"
                cursor = conn.execute(sql, (name, new))
            elif new is None:
                cursor = conn.execute("DELETE FROM refs WHERE name = ? AND value = ?", (name, old))
            else:
                sql = "UPDATE refs SET value = ? WHERE name = ? AND value = ?"
                cursor = conn.execute(sql, (new, name, old))
            return cursor.rowcount == 1

    def list_refs(self, prefix: str = "") -> dict[str, str]:
        """Return every ref whose name starts with ``prefix``, sorted by name.

        Names starting with ``prefix`` are one contiguous run in SQLite's binary
        (code point) order, so this reads from ``prefix`` and stops at the first
        name past it; no LIKE, whose wildcards a name could contain.
        """
        refs: dict[str, str] = {}
        with self._guard() as conn:
            cursor = conn.execute(
                "SELECT name, value FROM refs WHERE name >= ? ORDER BY name", (prefix,)
            )
            for name, value in cursor:
                if not name.startswith(prefix):
                    break
                refs[name] = value
            cursor.close()
        return refs

    # -- tokens ------------------------------------------------------------------

    def add_token(self, record: TokenRecord) -> None:
        """Keep ``record``, joining the open transaction.

        Raises:
            InvalidInputError: a token of that name exists (revoked ones too).
        """
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM tokens WHERE name = ?", (record.name,)).fetchone():
                raise InvalidInputError(f"a token named {record.name!r} exists already")
            conn.execute(
                f"INSERT INTO tokens ({_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                token_row(record),
            )

    def list_tokens(self) -> list[TokenRecord]:
        """Every token, revoked and expired ones too, by name."""
        with self._guard() as conn:
            rows = conn.execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens ORDER BY name").fetchall()
        return [token_record(row) for row in rows]

    def find_token(self, digest: str) -> TokenRecord | None:
        """The token whose secret hashes to ``digest``, or None."""
        with self._guard() as conn:
            row = conn.execute(
                f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE digest = ?", (digest,)
            ).fetchone()
        return None if row is None else token_record(row)

    def revoke_token(self, name: str, at: int) -> bool:
        """Mark token ``name`` revoked at ``at`` (µs); False if none is live by that name."""
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE tokens SET revoked = ? WHERE name = ? AND revoked IS NULL", (at, name)
            )
        return cursor.rowcount > 0

    # -- transactions ----------------------------------------------------------

    def append_reflog(self, entries: Sequence[ReflogEntry]) -> None:
        """Append ``entries`` in order, joining the open transaction."""
        rows = [(e.ref, e.old, e.new, e.who, e.at, e.why) for e in entries]
        if rows:
            with self._write() as conn:
                conn.executemany(
                    "INSERT INTO reflog (ref, old, new, who, at, why) VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )

    def read_reflog(self, ref: str, limit: int | None = None) -> list[ReflogEntry]:
        """Return ``ref``'s entries, newest first, at most ``limit``."""
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT ref, old, new, who, at, why FROM reflog WHERE ref = ?"
                " ORDER BY seq DESC LIMIT ?",
                (ref, -1 if limit is None else limit),
            ).fetchall()
        return [ReflogEntry(*row) for row in rows]

    def read_derived(self, name: str) -> bytes | None:
        """Return the derived blob kept under ``name``, or None."""
        with self._guard() as conn:
            if conn.execute(_DERIVED_EXISTS).fetchone() is None:
                return None
            row = conn.execute(
                "SELECT data FROM contextfs_derived WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def write_derived(self, name: str, data: bytes | None) -> None:
        """Keep ``data`` under ``name`` (None forgets it), joining the open transaction.

        Outside a transaction it never waits for another writer: if one holds
        the database, it raises :class:`StoreError` at once (derived data only
        saves work; a reader must not stall on it).
        """
        with self._guard() as conn:
            waits = not self._depth
            if waits:
                conn.execute("PRAGMA busy_timeout = 0")
            try:
                with self._write() as conn:
                    conn.execute(_DERIVED_TABLE)
                    if data is None:
                        conn.execute("DELETE FROM contextfs_derived WHERE name = ?", (name,))
                    else:
                        conn.execute(
                            "INSERT INTO contextfs_derived (name, data) VALUES (?, ?)"
                            " ON CONFLICT (name) DO UPDATE SET data = excluded.data",
                            (name, data),
                        )
            finally:
                if waits:
                    conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")

    def _begin(self) -> None:
        with self._guard() as conn:
            conn.execute("BEGIN IMMEDIATE")

    def _commit(self) -> None:
        with self._guard() as conn:
            try:
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                self._forget_uncommitted(conn)
                raise

    def _abort(self) -> None:
        if self._conn is not None:
            _rollback(self._conn)
            self._forget_uncommitted(self._conn)

    def _forget_uncommitted(self, conn: sqlite3.Connection) -> None:
        """After a rollback: compress with stored dictionaries only, and let a bulk write train."""
        self._learner.reset()
        try:
            self._codec = self._read_codec(conn)
        except sqlite3.Error:
            self._codec = Codec(loader=self._load_dictionary)  # none, until read again

    def close(self) -> None:
        """Close the connection; later calls raise :class:`StoreError`. Safe to call twice."""
        with self._lock:
            conn, self._conn = self._conn, None
            self._depth = 0
            if conn is None:
                return
            try:
                conn.close()
            except sqlite3.Error as exc:
                raise StoreError(_one_line(self._path, exc)) from exc


def _rollback(conn: sqlite3.Connection) -> None:
    """Undo the open transaction, if SQLite has not already undone it after an error."""
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # the original exception is the one worth reporting


#: The ways to open a store that cannot be written, tried in order: read-only with
#: SQLite's shared-memory index (the folder may still be writable), then without
#: any (the file cannot change while we read, as on a read-only mount).
_READ_ONLY_MODES: Final = ("ro", "ro&immutable=1")
#: SQLite's primary result codes that mean "this cannot be written here".
_CANNOT_WRITE: Final = frozenset(
    {
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_PERM,
    }
)


def _cannot_write(exc: sqlite3.Error) -> bool:
    """True for SQLite's refusals to write here (as opposed to a damaged store)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in _CANNOT_WRITE


def _write_refusal(exc: sqlite3.Error) -> str:
    """Why a store cannot be written here, in a few words."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == sqlite3.SQLITE_FULL:
        return "the disk is full"
    if code == sqlite3.SQLITE_IOERR:
        return "SQLite cannot write beside it: a full disk or a read-only folder"
    return "its file or folder cannot be written"


def _has_wal(path: Path) -> bool:
    """True if the store's write-ahead log holds anything."""
    wal = path.with_name(path.name + "-wal")
    try:
        return wal.stat().st_size > 0
    except OSError:
        return False


def _one_line(path: Path, exc: sqlite3.Error) -> str:
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return f"store {str(path)!r}: {detail}"
