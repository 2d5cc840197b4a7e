"""The PostgreSQL backend: the :class:`~contextfs.store.base.Store` port over one database.

For teams whose agents run on many machines: every machine points at one
server, and refs still move by compare-and-swap, so no writer loses an update.

Invariants this module owns:

* One psycopg connection per store object, in autocommit mode, so every
  transaction is explicit (``BEGIN`` ... ``COMMIT``). Threads share it under one
  re-entrant lock; an open transaction holds that lock for its whole body.
* Transactions run at ``READ COMMITTED``. That is enough for compare-and-swap:
  ``UPDATE refs ... WHERE name = $1 AND value = $2`` waits for a concurrent
  writer's row lock and then re-checks the condition against the committed row,
  so of two racing writers exactly one sees its old value and wins.
* Tables live in the first schema of the connection's ``search_path``, so one
  database can hold several stores (``?options=-csearch_path%3Dteam_a``).
* Refs are shared by every client except a workspace's own: opened with a
  ``workspace``, the names in :data:`WORKSPACE_REFS` (``HEAD``, the stage and
  merge state) are kept under ``workspaces/<workspace>/``, so each checkout
  has its own current branch and stage, as each git clone has. A new
  workspace's ``HEAD`` starts as the store's own.
* Every component (the store, full-text search, the op log) creates its tables
  through :meth:`PostgresStore.migrate`: numbered steps, applied in order under
  an advisory lock and recorded in ``schema_migrations``. Released steps are
  never edited.
* SQL text never contains caller data: values travel as parameters only.
* :class:`psycopg.Error` never escapes; it becomes a one-line :class:`StoreError`
  that names the server without its password.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from types import TracebackType
from typing import Any, ClassVar, Final

try:
    import psycopg
    from psycopg import sql
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the PostgreSQL backend needs psycopg 3; install it with:"
        " pip install 'contextfs-vcs[postgres]'"
    ) from exc

from contextfs.errors import (
    ConcurrentUpdateError,
    CorruptObjectError,
    InvalidInputError,
    StoreError,
)
from contextfs.store.base import OBJECT_KINDS, ReflogEntry, StoredObject, WorkspaceInfo
from contextfs.store.codec import (
    DELTA,
    MAX_SAMPLES,
    Codec,
    Learner,
    Row,
    StoredRow,
    changes,
    split_sample,
    walk_deltas,
)
from contextfs.store.memory import check_hex_prefix, checked_objects
from contextfs.store.nesting import NestedTransactions
from contextfs.store.sqlite import id_range
from contextfs.store.urls import check_postgres_url, is_postgres_url, redact_url
from contextfs.tokens import TokenRecord, token_record, token_row

#: The columns of ``tokens``, in the order of :func:`~contextfs.tokens.token_row`.
_TOKEN_COLUMNS: Final = "name, digest, scope, branches, created, expires, revoked, created_by"

#: The value of ``meta.format``; bumped only for changes old code must not read.
FORMAT: Final = "1"

#: The advisory lock write transactions share and garbage collection takes alone, one per
#: schema (stores in one database do not wait for each other's collections).
_GC_LOCK_KEY: Final = "hashtext('contextfs-gc:' || current_schema())"
#: How long a write of derived data waits for another writer of the same row.
DERIVED_LOCK_TIMEOUT: Final = "100ms"

#: A migration step: ``(step, name, statements)``.
Step = tuple[int, str, tuple[str, ...]]

#: The store's own schema steps (component ``store``). Append only.
MIGRATIONS: Final[tuple[Step, ...]] = (
    (
        1,
        "create objects, refs and meta",
        (
            "CREATE TABLE objects ("
            " id bytea PRIMARY KEY CHECK (octet_length(id) = 32),"
            " kind text NOT NULL, data bytea NOT NULL)",
            # Objects by kind, for iter_objects(kind) and find_ids(kinds=...).
            "CREATE INDEX objects_kind_id ON objects (kind, id)",
            # "C" collation: names sort by code point, as in SQLite and the memory store.
            'CREATE TABLE refs (name text COLLATE "C" PRIMARY KEY, value text NOT NULL)',
            "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)",
            "INSERT INTO meta (key, value) VALUES ('format', '1')",  # must equal FORMAT
        ),
    ),
    (
        2,
        "create the reflog",
        (
            # Every move of HEAD and the branches, appended with the move (git's reflog);
            # a workspace's HEAD is logged under its stored (prefixed) name.
            'CREATE TABLE reflog (seq bigserial PRIMARY KEY, ref text COLLATE "C" NOT NULL,'
            " old text, new text, who text NOT NULL, at bigint NOT NULL, why text NOT NULL)",
            "CREATE INDEX reflog_by_ref ON reflog (ref, seq)",
        ),
    ),
    (
        3,
        "compress objects",
        (
            # How each object is kept (contextfs.store.codec): 0 raw, as every object
            # stored before this step; 1 a zstd frame; 2 a zstd delta against base.
            "ALTER TABLE objects ADD COLUMN codec smallint NOT NULL DEFAULT 0",
            "ALTER TABLE objects ADD COLUMN base bytea",
            # Compressed already: PostgreSQL's own compression would only cost time.
            "ALTER TABLE objects ALTER COLUMN data SET STORAGE EXTERNAL",
            # zstd dictionaries trained from the store's own objects, by the id their
            # frames name; appended only, so every frame ever written stays readable.
            "CREATE TABLE dictionaries (id bigint PRIMARY KEY, kind text NOT NULL,"
            " data bytea NOT NULL)",
        ),
    ),
    (
        4,
        "record workspaces",
        (
            # Where each workspace is checked out, so workspaces whose folder is gone
            # can be found and pruned (git's worktree prune).
            'CREATE TABLE workspaces (name text COLLATE "C" PRIMARY KEY, folder text NOT NULL,'
            " machine text NOT NULL, made timestamptz NOT NULL DEFAULT now())",
        ),
    ),
    (
        5,
        "keep access tokens",
        (
            # Scoped tokens of `contextfs token` (contextfs.tokens), shared by every server
            # on this store: only the SHA-256 of each secret, its scope (1 read, 2 write,
            # 3 admin), branch glob and times (µs).
            'CREATE TABLE tokens (name text COLLATE "C" PRIMARY KEY, digest text UNIQUE NOT NULL,'
            " scope smallint NOT NULL, branches text, created bigint NOT NULL,"
            " expires bigint, revoked bigint, created_by text NOT NULL)",
        ),
    ),
)

_CREATE_MIGRATIONS_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " component text NOT NULL, step integer NOT NULL, name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (component, step))"
)

#: Any constant works: it only has to be the same in every ContextFS process.
_MIGRATION_LOCK: Final = 0x636F6E74657874  # "context"

#: Refs private to a workspace (one checkout): what git keeps in a clone, not on the server.
WORKSPACE_REFS: Final = frozenset({"HEAD", "STAGE", "STAGE_BASE", "MERGE_HEAD", "MERGE_STATE"})
#: Where workspaces' private refs live.
WORKSPACES: Final = "workspaces/"

_WORKSPACE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

#: Objects stored whole, from an id on (a page of iter_objects).
_WHOLE_ROWS: Final = (
    f"SELECT id, kind, data, codec, base FROM objects WHERE id > %s AND codec <> {DELTA}"
)
#: The ``meta`` key that says a bulk write's atoms made no dictionary worth keeping.
_UNPAID: Final = "atom_dictionary_unpaid"

_CHUNK: Final = 1000  # ids per ``= ANY(%s)`` lookup or insert batch
_PAGE: Final = 1000  # rows per iter_objects page
_MAX_LIMIT: Final = 2**62


class PostgresStore(NestedTransactions):
    """A :class:`~contextfs.store.base.Store` in a PostgreSQL database; build it with :meth:`open`.

    Several store objects, threads, processes and machines may share one
    database: refs move by compare-and-swap, so no update is lost.
    """

    #: Its entry in the backend registry (:mod:`contextfs.backends`).
    backend: ClassVar[str] = "postgresql"

    def __init__(
        self, connection: psycopg.Connection[Any], url: str, workspace: str | None = None
    ) -> None:
        """Wrap an open autocommit connection; use :meth:`open` instead."""
        self._conn: psycopg.Connection[Any] | None = connection
        self._where = redact_url(url)
        self.url = url
        self.workspace = workspace
        self._lock = threading.RLock()
        self._depth = 0
        self._codec = Codec(loader=self._load_dictionary)  # dictionaries read by _configure
        self._learner = Learner()  # the atoms to train the store's first dictionary on

    @classmethod
    def open(
        cls,
        url: str,
        *,
        create: bool = False,
        workspace: str | None = None,
        connect_timeout: float = 10.0,
    ) -> PostgresStore:
        """Connect to ``url`` and (with ``create``) make or migrate the schema.

        Args:
            url: a libpq URL, ``postgresql://user@host:port/dbname``.
            create: create the tables if the database holds none yet; without
                it the store must exist already (pending steps are still applied).
            workspace: keep ``HEAD``, the stage and merge state private to this
                name (1-64 of ``A-Z a-z 0-9 _ -``); None shares the store's own.
            connect_timeout: seconds to wait for the server.

        Raises:
            StoreError: the server cannot be reached, refuses the login, the
                database holds no ContextFS store (without ``create``) or
                another program's tables, or a newer ContextFS wrote it.
        """
        if not is_postgres_url(url):
            raise InvalidInputError(f"not a PostgreSQL URL: {redact_url(url)!r}")
        check_postgres_url(url)
        if workspace is not None and not _WORKSPACE_NAME.fullmatch(workspace):
            raise InvalidInputError(f"workspace must be 1-64 of A-Z a-z 0-9 _ -, got {workspace!r}")
        try:
            conn = psycopg.connect(
                url, autocommit=True, connect_timeout=max(1, round(connect_timeout))
            )
        except psycopg.Error as exc:
            raise StoreError(_one_line(redact_url(url), exc)) from None
        store = cls(conn, url, workspace)
        try:
            store._configure(create)
            store._start_workspace()
        except BaseException:
            conn.close()
            raise
        return store

    def __repr__(self) -> str:
        return f"PostgresStore({self._where!r})"

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def where(self) -> str:
        """The server and database, without a password, for messages."""
        return self._where

    # -- plumbing --------------------------------------------------------------

    @contextmanager
    def _guard(self) -> Iterator[psycopg.Connection[Any]]:
        """Hold the lock, check the store is open, and translate psycopg's errors."""
        with self._lock:
            if self._conn is None:
                raise StoreError(f"store {self._where!r} is closed")
            try:
                yield self._conn
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as exc:
                # Two writers collided; PostgreSQL rolled one back. Retrying is the fix.
                raise ConcurrentUpdateError(_one_line(self._where, exc)) from None
            except psycopg.Error as exc:
                raise StoreError(_one_line(self._where, exc)) from None

    @contextmanager
    def connection(self, *, write: bool = False) -> Iterator[psycopg.Connection[Any]]:
        """Lend the connection to a component that keeps its tables here (search, op log).

        With ``write`` the body runs inside a transaction (joining the open one),
        so its statements commit or roll back with the store's own writes.

        Raises:
            StoreError: the store is closed, or PostgreSQL failed.
        """
        if write:
            with self.transaction(), self._guard() as conn:
                yield conn
        else:
            with self._guard() as conn:
                yield conn

    @contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """Make every read in the body see one committed state (``REPEATABLE READ``).

        A long scan such as ``verify`` never sees half of a concurrent commit,
        and writers are not blocked. Inside an open transaction it joins it.
        The body must not write.
        """
        with self._lock:
            if self._depth:
                yield
                return
            with self._guard() as conn:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            self._depth = 1
            try:
                yield
            finally:
                self._depth = 0
                with self._guard() as conn:
                    _rollback(conn)

    def _configure(self, create: bool) -> None:
        with self._guard() as conn:
            row = conn.execute("SHOW server_encoding").fetchone()
            if row is None or str(row[0]).upper() not in ("UTF8", "UTF-8"):
                found = None if row is None else row[0]
                raise StoreError(
                    f"{self._where!r} uses encoding {found!r}; ContextFS needs a UTF8"
                    " database (createdb --encoding=UTF8)"
                )
            exists = _table_exists(conn, "schema_migrations")
            if not exists:
                if not create:
                    raise StoreError(f"no ContextFS store in {self._where!r}")
                if _table_exists(conn, "objects") or _table_exists(conn, "refs"):
                    raise StoreError(
                        f"{self._where!r} already has tables named objects or refs that"
                        " ContextFS did not make; use another database or schema"
                    )
        self.migrate("store", MIGRATIONS)
        with self._guard() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        if row is None or row[0] != FORMAT:
            found = None if row is None else row[0]
            raise StoreError(f"store {self._where!r} has format {found!r}, expected {FORMAT!r}")
        self._codec = self._read_codec()

    def _read_codec(self) -> Codec:
        """A codec with every dictionary the store holds."""
        with self._guard() as conn:
            rows = conn.execute("SELECT id, kind, data FROM dictionaries").fetchall()
        return Codec([(int(i), str(k), bytes(d)) for i, k, d in rows], loader=self._load_dictionary)

    def _load_dictionary(self, dict_id: int) -> tuple[str, bytes] | None:
        """Read one dictionary (trained by another connection since this one opened)."""
        with self._guard() as conn:
            row = conn.execute(
                "SELECT kind, data FROM dictionaries WHERE id = %s", (dict_id,)
            ).fetchone()
        return None if row is None else (str(row[0]), bytes(row[1]))

    def _start_workspace(self) -> None:
        """Give a new workspace the store's own ``HEAD`` (its default branch)."""
        if self.workspace is None or self.read_ref("HEAD") is not None:
            return
        with self._guard() as conn:
            row = conn.execute("SELECT value FROM refs WHERE name = 'HEAD'").fetchone()
        if row is not None:
            self.set_ref_if_equals("HEAD", None, str(row[0]))  # False: a twin got there first

    def _ref_name(self, name: str) -> str:
        """The stored name of ref ``name``: a workspace's private refs live under its prefix."""
        if self.workspace is not None and name in WORKSPACE_REFS:
            return f"{WORKSPACES}{self.workspace}/{name}"
        return name

    def migrate(self, component: str, steps: Sequence[Step]) -> None:
        """Apply ``component``'s schema steps that are not recorded yet, in order.

        Each component (``store``, ``search``, ``oplog``) owns its steps. The
        check runs without a lock first, so opening an up-to-date store never
        waits; pending steps run in one transaction under an advisory lock, so
        two processes opening a new store at once apply them exactly once.

        Raises:
            StoreError: the database records a step this version does not know
                (a newer ContextFS wrote it), or PostgreSQL failed.
        """
        if not self._pending(component, steps):
            return
        with self._lock:
            if self._depth:
                # Inside a caller's transaction: migrate on a connection of its own, so
                # a rollback of the caller's work never takes the new tables with it.
                try:
                    with (
                        psycopg.connect(self.url, autocommit=True) as side,
                        side.transaction(),
                    ):
                        _apply_steps(side, component, self._pending(component, steps))
                except psycopg.Error as exc:
                    raise StoreError(_one_line(self._where, exc)) from None
                return
            with self.transaction(), self._guard() as conn:
                _apply_steps(conn, component, self._pending(component, steps))

    def _pending(self, component: str, steps: Sequence[Step]) -> list[Step]:
        with self._guard() as conn:
            if not _table_exists(conn, "schema_migrations"):
                return list(steps)
            row = conn.execute(
                "SELECT coalesce(max(step), 0) FROM schema_migrations WHERE component = %s",
                (component,),
            ).fetchone()
        applied = int(row[0]) if row else 0
        latest = steps[-1][0] if steps else 0
        if applied > latest:
            raise StoreError(
                f"store {self._where!r} has {component} schema step {applied}, but this version"
                f" of ContextFS knows steps up to {latest}; upgrade ContextFS"
            )
        return [s for s in steps if s[0] > applied]

    # -- objects -------------------------------------------------------------

    def get_object(self, oid: bytes) -> StoredObject | None:
        """Return the object stored under ``oid``, or None if absent."""
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
        rows = [(oid, *row) for oid, row in self._rows(oids).items()]
        return self._codec.objects(rows, self._rows)

    def _rows(self, oids: list[bytes]) -> dict[bytes, StoredRow]:
        """The stored rows of ``oids``, as kept (compressed, or deltas)."""
        found: dict[bytes, StoredRow] = {}
        with self._guard() as conn:
            for start in range(0, len(oids), _CHUNK):
                chunk = oids[start : start + _CHUNK]
                cursor = conn.execute(
                    "SELECT id, kind, data, codec, base FROM objects WHERE id = ANY(%s)",
                    (chunk,),
                )
                for oid, kind, data, codec, base in cursor:
                    found[bytes(oid)] = _row(kind, data, codec, base)
        return found

    def has_objects(self, oids: Sequence[bytes]) -> set[bytes]:
        """Return the subset of ``oids`` that is stored."""
        unique = list(dict.fromkeys(oids))
        present: set[bytes] = set()
        with self._guard() as conn:
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                cursor = conn.execute("SELECT id FROM objects WHERE id = ANY(%s)", (chunk,))
                present.update(bytes(row[0]) for row in cursor)
        return present

    def put_objects(self, objects: Iterable[tuple[bytes, str, bytes]]) -> None:
        """Store ``(id, kind, data)`` triples; ids already present are skipped.

        One ``INSERT ... SELECT FROM unnest(...)`` per thousand rows, in id
        order, so concurrent writers of overlapping batches take row locks in
        the same order and cannot deadlock.

        Raises:
            InvalidInputError: the batch holds a malformed triple; nothing is stored.
            StoreError: PostgreSQL failed; nothing is stored.
        """
        rows = checked_objects(objects)
        if not rows:
            return
        first: dict[bytes, tuple[bytes, str, bytes]] = {}
        for row in rows:
            first.setdefault(row[0], row)  # the first of repeated ids wins, as everywhere
        rows = sorted(first.values(), key=itemgetter(0))
        sample = self._learner.offer(self._codec, rows)
        with self.transaction(), self._guard() as conn:
            if sample:
                self._auto_train(sample)
            encode = self._codec.encode
            for start in range(0, len(rows), _CHUNK):
                chunk = rows[start : start + _CHUNK]
                encoded = [encode(kind, data) for _, kind, data in chunk]
                conn.execute(
                    "INSERT INTO objects (id, kind, codec, data)"
                    " SELECT * FROM unnest(%s::bytea[], %s::text[], %s::smallint[], %s::bytea[])"
                    " ON CONFLICT (id) DO NOTHING",
                    (
                        [r[0] for r in chunk],
                        [r[1] for r in chunk],
                        [codec for codec, _ in encoded],
                        [data for _, data in encoded],
                    ),
                )

    def find_ids(
        self, hex_prefix: str, limit: int, kinds: Collection[str] | None = None
    ) -> list[bytes]:
        """Return up to ``limit`` sorted ids whose hex spelling starts with ``hex_prefix``.

        bytea compares bytewise, so the ids with a prefix are one primary-key range.

        Raises:
            InvalidInputError: ``hex_prefix`` is not 0-64 lowercase hex digits, or
                a kind is unknown.
        """
        check_hex_prefix(hex_prefix)
        if limit <= 0:
            return []
        low, high = id_range(hex_prefix)
        sql = "SELECT id FROM objects WHERE id >= %s"
        params: list[object] = [low]
        if high is not None:
            sql += " AND id < %s"
            params.append(high)
        if kinds is not None:
            unknown = set(kinds) - OBJECT_KINDS
            if unknown:
                raise InvalidInputError(f"unknown object kind(s): {sorted(unknown)!r}")
            sql += " AND kind = ANY(%s)"
            params.append(sorted(kinds))
        sql += " ORDER BY id LIMIT %s"
        params.append(min(limit, _MAX_LIMIT))
        with self._guard() as conn:
            return [bytes(row[0]) for row in conn.execute(sql, params)]

    def iter_objects(self, kind: str | None = None) -> Iterator[tuple[bytes, str, bytes]]:
        """Yield every stored ``(id, kind, data)``, optionally of one kind, paged.

        Objects stored whole come by id; then those stored as deltas, each after
        its base, so that each is decoded once (``codec.walk_deltas``).
        """
        select = (
            f"SELECT id, kind, data, codec, base FROM objects WHERE id > %s AND codec <> {DELTA}"
        )
        pairs = "SELECT id, base FROM objects WHERE codec = %s"
        params: tuple[object, ...] = ()
        if kind is not None:
            select, params = select + " AND kind = %s", (kind,)
            pairs += " AND kind = %s"
        page: list[Row] = []
        for oid, found, data, codec, base in self._pages(select, params):
            page.append((bytes(oid), *_row(found, data, codec, base)))
            if len(page) >= _PAGE:
                yield from self._decoded(page)
        yield from self._decoded(page)
        with self._guard() as conn:
            deltas = [
                (bytes(oid), bytes(base))
                for oid, base in conn.execute(pairs, (DELTA, *params)).fetchall()
            ]
        if deltas:
            yield from walk_deltas(self._codec, deltas, self._rows, self.get_objects)

    def _decoded(self, page: list[Row]) -> Iterator[tuple[bytes, str, bytes]]:
        found = self._codec.objects(page, self._rows)
        for oid, *_ in page:
            yield oid, found[oid].kind, found[oid].data
        page.clear()

    def _pages(self, select: str, params: tuple[object, ...]) -> Iterator[Any]:
        """Rows of ``select`` (its first column the id, its first parameter after it), by id.

        Reads page by page after the last id seen, so no cursor stays open
        between yields and other threads can use the store meanwhile.
        """
        sql = select + " ORDER BY id LIMIT %s"
        last = b""
        while True:
            with self._guard() as conn:
                page = conn.execute(sql, (last, *params, _PAGE)).fetchall()
            yield from page
            if len(page) < _PAGE:
                return
            last = bytes(page[-1][0])

    def object_sizes(self) -> Iterator[tuple[bytes, str, int]]:
        """Yield every stored ``(id, kind, size)``, by id, a page at a time, without the data."""
        select = "SELECT id, kind, octet_length(data) FROM objects WHERE id > %s"
        for oid, kind, size in self._pages(select, ()):
            yield bytes(oid), str(kind), int(size)

    def delete_objects(self, oids: Sequence[bytes]) -> int:
        """Delete the objects ``oids``; return how many were stored, joining the transaction."""
        deleted = 0
        with self.transaction(), self._guard() as conn:
            self._detach_deltas(oids)
            for start in range(0, len(oids), _PAGE):
                chunk = list(oids[start : start + _PAGE])
                cursor = conn.execute("DELETE FROM objects WHERE id = ANY(%s)", (chunk,))
                deleted += cursor.rowcount
        return deleted

    # -- workspaces -------------------------------------------------------------

    def register_workspace(self, folder: str, machine: str) -> None:
        """Record where this handle's workspace is checked out (replacing an older record).

        Raises:
            InvalidInputError: the store was opened without a workspace.
        """
        if self.workspace is None:
            raise InvalidInputError("only a workspace can record where it is checked out")
        with self.transaction(), self._guard() as conn:
            conn.execute(
                "INSERT INTO workspaces (name, folder, machine) VALUES (%s, %s, %s)"
                " ON CONFLICT (name) DO UPDATE SET folder = EXCLUDED.folder,"
                " machine = EXCLUDED.machine",
                (self.workspace, folder, machine),
            )

    def workspaces(self) -> list[WorkspaceInfo]:
        """Every workspace the store holds private refs or a record for, by name."""
        found: dict[str, WorkspaceInfo] = {}
        with self._guard() as conn:
            for name, folder, machine in conn.execute(
                "SELECT name, folder, machine FROM workspaces ORDER BY name"
            ):
                found[name] = WorkspaceInfo(name, folder, machine, {})
            refs = conn.execute(
                "SELECT name, value FROM refs WHERE starts_with(name, %s) ORDER BY name",
                (WORKSPACES,),
            ).fetchall()
        for full, value in refs:
            name, _, short = full[len(WORKSPACES) :].partition("/")
            info = found.setdefault(name, WorkspaceInfo(name, None, None, {}))
            info.refs[short] = value
        return sorted(found.values(), key=lambda info: info.name)

    def drop_workspace(self, name: str) -> bool:
        """Delete workspace ``name``'s private refs and record, in one transaction.

        Its stage and anything only it reached become garbage for the next gc.

        Raises:
            InvalidInputError: ``name`` is not a workspace name, or it is this
                handle's own workspace.
        """
        if not _WORKSPACE_NAME.fullmatch(name):
            raise InvalidInputError(f"workspace must be 1-64 of A-Z a-z 0-9 _ -, got {name!r}")
        if name == self.workspace:
            raise InvalidInputError(f"workspace {name!r} is the one in use here")
        with self.transaction(), self._guard() as conn:
            refs = conn.execute(
                "DELETE FROM refs WHERE starts_with(name, %s)", (f"{WORKSPACES}{name}/",)
            ).rowcount
            record = conn.execute("DELETE FROM workspaces WHERE name = %s", (name,)).rowcount
            conn.execute("DELETE FROM reflog WHERE starts_with(ref, %s)", (f"{WORKSPACES}{name}/",))
        return bool(refs or record)

    def lock_for_collection(self) -> None:
        """Wait for every write transaction to end and keep new ones waiting until this one ends.

        Garbage collection (:mod:`contextfs.integrity.gc`) calls it first in its
        transaction. Each transaction of this store's schema holds a shared
        advisory lock from its start; this takes it exclusively, so no writer is
        ever half way through while objects are collected, and there is one
        lock to wait for (two table locks taken in different orders deadlock).
        """
        with self._guard() as conn:
            if not self._depth:
                raise StoreError(f"store {self._where!r}: lock inside a transaction")
            conn.execute(f"SELECT pg_advisory_xact_lock({_GC_LOCK_KEY})")

    def count_objects(self) -> int:
        """Return how many objects are stored."""
        with self._guard() as conn:
            row = conn.execute("SELECT count(*) FROM objects").fetchone()
        return int(row[0]) if row else 0

    def erase_object(self, oid: bytes) -> bool:
        """Replace object ``oid``'s data with empty bytes (kind kept); False if absent.

        PostgreSQL keeps the old row version until vacuum reclaims it;
        :meth:`compact` rewrites the table so no copy survives.
        """
        with self.transaction(), self._guard() as conn:
            self._detach_deltas([oid])
            cursor = conn.execute(
                "UPDATE objects SET data = %s, codec = 0, base = NULL WHERE id = %s", (b"", oid)
            )
            return cursor.rowcount == 1

    # -- packing (contextfs gc) ---------------------------------------------------------

    def _detach_deltas(self, oids: Sequence[bytes]) -> None:
        """Keep whole every delta built on one of ``oids`` (about to go) and not among them."""
        going = set(oids)
        with self._guard() as conn:  # one pass over the deltas: no index to keep up on writes
            rows = conn.execute("SELECT id, base FROM objects WHERE codec = %s", (DELTA,))
            dependents = [
                bytes(oid) for oid, base in rows if bytes(base) in going and bytes(oid) not in going
            ]
        if dependents:
            self.set_delta_bases([(oid, None) for oid in dependents])

    def set_delta_bases(self, plan: Sequence[tuple[bytes, bytes | None]]) -> int:
        """Keep each object of ``plan`` as a delta against its base, or whole (None), in order.

        As :meth:`contextfs.store.sqlite.SqliteStore.set_delta_bases`.
        """
        changed = 0
        with self.transaction():
            for start in range(0, len(plan), _CHUNK):
                chunk = plan[start : start + _CHUNK]
                current = self._rows([oid for oid, _ in chunk])
                todo = changes(chunk, current)
                named = [oid for oid, _ in todo] + [base for _, base in todo if base is not None]
                updates = self._codec.rewrites(todo, current, self.get_objects(named))
                with self._guard() as conn, conn.cursor() as cursor:
                    cursor.executemany(
                        "UPDATE objects SET codec = %s, data = %s, base = %s WHERE id = %s",
                        updates,
                    )
                changed += len(updates)
        return changed

    def _auto_train(self, sample: list[bytes]) -> None:
        """Learn the first atom dictionary from atoms written, unless it did not pay before."""
        with self._guard() as conn:
            if conn.execute("SELECT 1 FROM meta WHERE key = %s", (_UNPAID,)).fetchone():
                return
        if not self._adopt_dictionary("atom", sample, first=True):
            with self._guard() as conn:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES (%s, 'yes') ON CONFLICT DO NOTHING",
                    (_UNPAID,),
                )

    def _adopt_dictionary(self, kind: str, sample: list[bytes], *, first: bool = False) -> bool:
        """Train a dictionary for ``kind`` on ``sample``; store it and use it if it pays.

        As in :class:`~contextfs.store.sqlite.SqliteStore`; a dictionary another
        transaction stored meanwhile under the same id wins, and is used.
        """
        self._codec = self._read_codec()
        if first and self._codec.dictionary_for(kind) is not None:
            return True
        trained = self._codec.train(kind, *split_sample(sample))
        if trained is None:
            return False
        dict_id, dictionary = trained
        with self._guard() as conn:
            stored = conn.execute(
                "INSERT INTO dictionaries (id, kind, data) VALUES (%s, %s, %s)"
                " ON CONFLICT (id) DO NOTHING",
                (dict_id, kind, dictionary),
            ).rowcount
        if not stored:
            self._codec = self._read_codec()
            return first and self._codec.dictionary_for(kind) is not None
        self._codec.add_dictionary(dict_id, kind, dictionary)
        return True

    def train_dictionary(self, kind: str) -> bool:
        """Train a zstd dictionary on a sample of the store's ``kind`` objects; keep it if it pays.

        As :meth:`contextfs.store.sqlite.SqliteStore.train_dictionary`.
        """
        with self.transaction():
            sql = "SELECT id FROM objects WHERE kind = %s AND id {} %s ORDER BY id LIMIT %s"
            start = os.urandom(32)  # ids are uniform hashes: what follows is a random sample
            with self._guard() as conn:
                rows = conn.execute(sql.format(">="), (kind, start, MAX_SAMPLES)).fetchall()
                if len(rows) < MAX_SAMPLES:
                    more = (kind, start, MAX_SAMPLES - len(rows))
                    rows += conn.execute(sql.format("<"), more).fetchall()
            ids = [bytes(row[0]) for row in rows]
            sample = [stored.data for stored in self.get_objects(ids).values() if stored.data]
            if not self._adopt_dictionary(kind, sample):
                return False
            page = (
                "SELECT id FROM objects WHERE kind = %s AND codec <> %s AND id > %s"
                " ORDER BY id LIMIT %s"
            )
            last = b""
            while True:
                with self._guard() as conn:
                    ids = [bytes(r[0]) for r in conn.execute(page, (kind, DELTA, last, _PAGE))]
                if not ids:
                    return True
                last = ids[-1]
                updates = [
                    (*self._codec.encode(kind, stored.data), oid)
                    for oid, stored in self.get_objects(ids).items()
                    if stored.data
                ]
                with self._guard() as conn, conn.cursor() as cursor:
                    cursor.executemany(
                        "UPDATE objects SET codec = %s, data = %s WHERE id = %s", updates
                    )

    def append_reflog(self, entries: Sequence[ReflogEntry]) -> None:
        """Append ``entries`` in order, joining the open transaction."""
        if not entries:
            return
        with self.transaction(), self._guard() as conn, conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO reflog (ref, old, new, who, at, why) VALUES (%s, %s, %s, %s, %s, %s)",
                [(self._ref_name(e.ref), e.old, e.new, e.who, e.at, e.why) for e in entries],
            )

    def read_reflog(self, ref: str, limit: int | None = None) -> list[ReflogEntry]:
        """Return ``ref``'s entries, newest first, at most ``limit``."""
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT old, new, who, at, why FROM reflog WHERE ref = %s"
                " ORDER BY seq DESC LIMIT %s",
                (self._ref_name(ref), limit),
            ).fetchall()
        return [ReflogEntry(ref, *row) for row in rows]

    def reflog_since(self, at: int) -> list[ReflogEntry]:
        """Return every ref's entries made at ``at`` (µs) or later, oldest first.

        Names are as stored: a workspace's HEAD is ``workspaces/<name>/HEAD``.
        """
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT ref, old, new, who, at, why FROM reflog WHERE at >= %s ORDER BY seq",
                (at,),
            ).fetchall()
        return [ReflogEntry(*row) for row in rows]

    def expire_reflog(self, before: int) -> int:
        """Delete the entries made before ``before`` (µs); return how many."""
        with self.transaction(), self._guard() as conn:
            return int(conn.execute("DELETE FROM reflog WHERE at < %s", (before,)).rowcount)

    def read_derived(self, name: str) -> bytes | None:
        """Return the derived blob kept under ``name``, or None."""
        with self._guard() as conn:
            found = conn.execute("SELECT to_regclass('contextfs_derived')").fetchone()
            if found is None or found[0] is None:  # none written yet (a read-only role never does)
                return None
            row = conn.execute(
                "SELECT data FROM contextfs_derived WHERE name = %s", (name,)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def write_derived(self, name: str, data: bytes | None) -> None:
        """Keep ``data`` under ``name`` (None forgets it), joining the open transaction.

        Waits at most :data:`DERIVED_LOCK_TIMEOUT` for another writer of the
        same row, then raises :class:`StoreError` (derived data only saves work).
        The table is made by the first write, not by a schema step.
        """
        with self.transaction(), self._guard() as conn:
            setting = conn.execute("SELECT current_setting('lock_timeout')").fetchone()
            before = "0" if setting is None else str(setting[0])
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (DERIVED_LOCK_TIMEOUT,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS contextfs_derived"
                " (name text PRIMARY KEY, data bytea NOT NULL)"
            )
            if data is None:
                conn.execute("DELETE FROM contextfs_derived WHERE name = %s", (name,))
            else:
                conn.execute(
                    "INSERT INTO contextfs_derived (name, data) VALUES (%s, %s)"
                    " ON CONFLICT (name) DO UPDATE SET data = excluded.data",
                    (name, data),
                )
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (before,))

    def in_transaction(self) -> bool:
        """Whether a transaction is open on this store object."""
        with self._lock:
            return self._depth > 0

    def ready_to_compact(self) -> bool:
        """Always: ``VACUUM FULL`` waits for the readers it must exclude."""
        return not self.in_transaction()

    def compact(self) -> None:
        """Rewrite every table of the store (``VACUUM FULL``) so erased bytes leave the files.

        Covers the store's schema only (objects, refs and the search and op-log
        tables), each rewritten under an exclusive lock for its duration.

        Raises:
            StoreError: called inside a transaction, or PostgreSQL failed.
        """
        with self._guard() as conn:
            if self._depth:
                raise StoreError(f"store {self._where!r}: cannot compact inside a transaction")
            tables = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                " ORDER BY tablename"
            ).fetchall()
            for (table,) in tables:
                conn.execute(sql.SQL("VACUUM FULL {}").format(sql.Identifier(table)))

    # -- refs ------------------------------------------------------------------

    def read_ref(self, name: str) -> str | None:
        """Return the ref's value, or None if it does not exist."""
        with self._guard() as conn:
            row = conn.execute(
                "SELECT value FROM refs WHERE name = %s", (self._ref_name(name),)
            ).fetchone()
        return None if row is None else str(row[0])

    def set_ref_if_equals(self, name: str, old: str | None, new: str | None) -> bool:
        """Move ``name`` from ``old`` to ``new`` atomically; see the port for the contract.

        Each case is one conditional statement; PostgreSQL re-checks its
        condition after waiting for a concurrent writer of the same row.
        """
        name = self._ref_name(name)
        with self.transaction(), self._guard() as conn:
            if old is None and new is None:
                row = conn.execute("SELECT 1 FROM refs WHERE name = %s", (name,)).fetchone()
                return row is None
            if old is None:
                cursor = conn.execute(
                    "INSERT INTO refs (name, value) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                    (name, new),
                )
            elif new is None:
                cursor = conn.execute(
                    "DELETE FROM refs WHERE name = %s AND value = %s", (name, old)
                )
            else:
                cursor = conn.execute(
                    "UPDATE refs SET value = %s WHERE name = %s AND value = %s", (new, name, old)
                )
            return cursor.rowcount == 1

    def list_refs(self, prefix: str = "") -> dict[str, str]:
        """Return every ref whose name starts with ``prefix``, sorted by name.

        Reads the ``"C"``-collated range from ``prefix`` and stops at the first
        name past it; no LIKE, whose wildcards a name could contain. In a
        workspace, its private refs appear under their short names (hiding
        the store's own), and other workspaces' are left out.
        """
        refs: dict[str, str] = {}
        with self._guard() as conn:
            cursor = conn.execute(
                "SELECT name, value FROM refs WHERE name >= %s ORDER BY name", (prefix,)
            )
            for name, value in cursor:
                if not name.startswith(prefix):
                    break
                refs[name] = value
        if self.workspace is None:
            return refs
        own = {name: self.read_ref(name) for name in WORKSPACE_REFS if name.startswith(prefix)}
        shared = {
            name: value
            for name, value in refs.items()
            if not name.startswith(WORKSPACES) and name not in WORKSPACE_REFS
        }
        shared.update((name, value) for name, value in own.items() if value is not None)
        return dict(sorted(shared.items()))

    # -- tokens ------------------------------------------------------------------

    def add_token(self, record: TokenRecord) -> None:
        """Keep ``record``, joining the open transaction.

        Raises:
            InvalidInputError: a token of that name exists (revoked ones too).
        """
        with self.transaction(), self._guard() as conn:
            done = conn.execute(
                f"INSERT INTO tokens ({_TOKEN_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (name) DO NOTHING",
                token_row(record),
            )
            if done.rowcount == 0:
                raise InvalidInputError(f"a token named {record.name!r} exists already")

    def list_tokens(self) -> list[TokenRecord]:
        """Every token, revoked and expired ones too, by name."""
        with self._guard() as conn:
            rows = conn.execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens ORDER BY name").fetchall()
        return [token_record(row) for row in rows]

    def find_token(self, digest: str) -> TokenRecord | None:
        """The token whose secret hashes to ``digest``, or None."""
        with self._guard() as conn:
            row = conn.execute(
                f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE digest = %s", (digest,)
            ).fetchone()
        return None if row is None else token_record(row)

    def revoke_token(self, name: str, at: int) -> bool:
        """Mark token ``name`` revoked at ``at`` (µs); False if none is live by that name."""
        with self.transaction(), self._guard() as conn:
            cursor = conn.execute(
                "UPDATE tokens SET revoked = %s WHERE name = %s AND revoked IS NULL", (at, name)
            )
        return cursor.rowcount > 0

    # -- transactions ----------------------------------------------------------

    def _begin(self) -> None:
        with self._guard() as conn:
            conn.execute("BEGIN")
            # Every write transaction shares this lock; garbage collection takes it alone.
            conn.execute(f"SELECT pg_advisory_xact_lock_shared({_GC_LOCK_KEY})")

    def _commit(self) -> None:
        with self._guard() as conn:
            try:
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                self._forget_uncommitted()
                raise

    def _abort(self) -> None:
        if self._conn is not None:
            _rollback(self._conn)
            self._forget_uncommitted()

    def _forget_uncommitted(self) -> None:
        """After a rollback: compress with stored dictionaries only, and let a bulk write train."""
        self._learner.reset()
        try:
            self._codec = self._read_codec()
        except StoreError:
            self._codec = Codec(loader=self._load_dictionary)  # none, until read again

    def close(self) -> None:
        """Close the connection; later calls raise :class:`StoreError`. Safe to call twice."""
        with self._lock:
            conn, self._conn = self._conn, None
            self._depth = 0
            if conn is not None:
                conn.close()


def _row(kind: str, data: bytes, codec: int, base: bytes | None) -> StoredRow:
    """A row as psycopg returns it (bytea may come as memoryview), as the codec takes it."""
    return StoredRow(str(kind), bytes(data), int(codec), None if base is None else bytes(base))


def _apply_steps(conn: psycopg.Connection[Any], component: str, steps: Sequence[Step]) -> None:
    """Run ``steps`` under the migration lock, recording each; re-checks what is applied."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
    conn.execute(_CREATE_MIGRATIONS_TABLE)
    row = conn.execute(
        "SELECT coalesce(max(step), 0) FROM schema_migrations WHERE component = %s",
        (component,),
    ).fetchone()
    applied = int(row[0]) if row else 0
    for step, name, statements in steps:
        if step <= applied:
            continue  # another process applied it while we waited for the lock
        for statement in statements:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations (component, step, name) VALUES (%s, %s, %s)",
            (component, step, name),
        )


def _table_exists(conn: psycopg.Connection[Any], name: str) -> bool:
    """Whether ``name`` resolves through the search_path (the store's schema) to a table."""
    row = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
    return row is not None and row[0] is not None


def _rollback(conn: psycopg.Connection[Any]) -> None:
    """Undo the open transaction; the original exception is the one worth reporting."""
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
    except psycopg.Error:
        pass


def _one_line(where: str, exc: psycopg.Error) -> str:
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return f"store {where!r}: {detail}"
