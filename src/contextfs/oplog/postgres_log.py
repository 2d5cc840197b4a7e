"""A session's op log in PostgreSQL: one live session shared by agents on many machines.

The same semantics as the file log (:mod:`contextfs.oplog.log`, held by the
contract in :mod:`contextfs.testing.oplog_contract`, written once in
:class:`~.base.BaseOpLog`), kept in four tables of the store's schema
(component ``oplog`` of :meth:`PostgresStore.migrate`):

``oplog_sessions``
    one row per session: its op count, byte length and highest stamp. It is the
    session's lock: every write locks it (``SELECT ... FOR UPDATE``) first.
``oplog_ops``
    one row per op: ``seq`` (1, 2, 3 ... the log order), the canonical line
    (:func:`~.entry.encode_line` without its newline), its op id and stamp,
    and ``end_bytes``, the byte length of the log through this op.
``oplog_held``
    ops received before their causal parents, retried on every ``receive``.
``oplog_checkpoints``
    every checkpoint record (the file log's JSON), numbered per session.

Invariants this module owns:

* Writes to a session are serialised by the lock on its ``oplog_sessions``
  row, held until the transaction commits, by every connection on every
  machine. Under it a local append is re-stamped above the row's highest
  stamp, so local stamps increase strictly in log order (the file log's
  ``flock`` rule), and ``seq`` has no gaps.
* A call returns once its transaction has committed: an acknowledged op is
  durable (with PostgreSQL's default ``synchronous_commit``), and a process
  killed mid-call leaves no trace of it.
* The rows hold exactly the bytes the file log writes, so the same ops in the
  same order have the same op ids, leaf hashes, RFC 6962 roots and checkpoint
  cuts (``log_bytes`` included) on both backends. A :class:`~.base.Cut` is a
  ``seq`` position; its ``bytes`` are that row's ``end_bytes``.
* ``(session, op_id)`` is unique: no op is stored twice whatever races.
* Op and checkpoint rows are only ever inserted, never updated or deleted, so
  paging through ops by ``seq`` up to a cut read earlier is consistent without
  a snapshot.
* Crystallising is excluded across processes by a session-level advisory lock
  keyed on the schema and the session, and within a process by a thread lock
  per store object (an advisory lock is re-entrant within one connection).
  Checkpoints join the store's open transaction, so
  :func:`~.crystallise.commit_oplog` writes the commit, the refs and the
  checkpoint atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import time
import weakref
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Final

import msgspec
import psycopg

from ..errors import CorruptLogError, InvalidInputError, StoreError
from ..store.base import Store
from ..store.postgres import PostgresStore, Step
from .base import (
    BaseOpLog,
    Cut,
    Locked,
    LogVerification,
    Repair,
    Tail,
    decode_checkpoint,
)
from .checks import LineCheck, check_lines
from .entry import (
    OpEntry,
    OpLogCheckpoint,
    check_session_id,
    decode_mapping,
    encode_json,
    encode_line,
    holds_text,
    op_leaf,
    quoted,
    redact_line,
)

#: The op log's schema steps (component ``oplog``). Append only.
MIGRATIONS: Final[tuple[Step, ...]] = (
    (
        1,
        "create op-log sessions, ops, held ops and checkpoints",
        (
            'CREATE TABLE oplog_sessions (session text COLLATE "C" PRIMARY KEY,'
            " ops bigint NOT NULL DEFAULT 0 CHECK (ops >= 0),"
            " log_bytes bigint NOT NULL DEFAULT 0 CHECK (log_bytes >= 0),"
            " max_lamport bigint NOT NULL DEFAULT 0 CHECK (max_lamport >= 0))",
            'CREATE TABLE oplog_ops (session text COLLATE "C" NOT NULL'
            " REFERENCES oplog_sessions (session),"
            " seq bigint NOT NULL CHECK (seq >= 1),"
            " op_id bytea NOT NULL CHECK (octet_length(op_id) = 32),"
            " lamport_ts bigint NOT NULL CHECK (lamport_ts >= 1),"
            " end_bytes bigint NOT NULL,"
            " line bytea NOT NULL,"
            " PRIMARY KEY (session, seq),"
            " UNIQUE (session, op_id))",
            'CREATE TABLE oplog_held (session text COLLATE "C" NOT NULL'
            " REFERENCES oplog_sessions (session),"
            " op_id bytea NOT NULL CHECK (octet_length(op_id) = 32),"
            " line bytea NOT NULL,"
            " PRIMARY KEY (session, op_id))",
            'CREATE TABLE oplog_checkpoints (session text COLLATE "C" NOT NULL'
            " REFERENCES oplog_sessions (session),"
            " number bigint NOT NULL CHECK (number >= 1),"
            " op_count bigint NOT NULL,"
            " record bytea NOT NULL,"
            " PRIMARY KEY (session, number))",
        ),
    ),
)

_PAGE: Final = 2000  # rows per read
_BATCH_ROWS: Final = 1000  # rows per INSERT
_BATCH_BYTES: Final = 8 << 20  # bytes of lines per INSERT
_LOCK_WAIT: Final = (0.002, 0.1)  # first and longest pause between commit-lock attempts
_OP_ID = re.compile(r"[0-9a-f]{64}")

_LOCK_ROW: Final = (
    "SELECT ops, log_bytes, max_lamport FROM oplog_sessions WHERE session = %s FOR UPDATE"
)
_INSERT_OPS: Final = (
    "INSERT INTO oplog_ops (session, seq, op_id, lamport_ts, end_bytes, line)"
    " SELECT %s, * FROM unnest(%s::bigint[], %s::bytea[], %s::bigint[], %s::bigint[], %s::bytea[])"
)

_entry_decoder = msgspec.json.Decoder(OpEntry)


# Stores whose op-log tables are known to be current, and the crystallising
# thread locks of each store's sessions (see commit_lock).
_migrated: weakref.WeakSet[PostgresStore] = weakref.WeakSet()
_commit_locks: weakref.WeakKeyDictionary[PostgresStore, dict[str, threading.RLock]] = (
    weakref.WeakKeyDictionary()
)
_registry_lock = threading.Lock()

Connection = psycopg.Connection[Any]


def ensure_schema(store: PostgresStore) -> None:
    """Create or upgrade the op-log tables in ``store`` (once per store object).

    Raises:
        StoreError: PostgreSQL failed, or a newer ContextFS wrote the tables.
    """
    if store in _migrated:
        return
    store.migrate("oplog", MIGRATIONS)
    with _registry_lock:
        _migrated.add(store)


def sessions_in_store(store: PostgresStore) -> list[str]:
    """Return the sessions with an op log in ``store``'s database, sorted."""
    ensure_schema(store)
    with store.connection() as conn:
        rows = conn.execute("SELECT session FROM oplog_sessions ORDER BY session").fetchall()
    names = []
    for (name,) in rows:
        with contextlib.suppress(InvalidInputError):
            names.append(check_session_id(name))
    return names


class PostgresOpLog(BaseOpLog[Connection]):
    """The op log of one session, kept in a :class:`PostgresStore`'s database.

    Args:
        store: the store whose database holds the log; it stays the caller's
            (:meth:`close` does not close it).
        session_id: the session (see :func:`~.entry.check_session_id`).

    An instance is safe to share between threads; instances on other
    connections, processes and machines coordinate through the database. Its
    write lock is a write transaction holding the lock on the session's row.

    Raises:
        InvalidInputError: the session id is unsafe.
        StoreError: PostgreSQL failed.
    """

    def __init__(self, store: PostgresStore, session_id: str) -> None:
        self._session_id = check_session_id(session_id)
        self._store = store
        self._mutex = threading.Lock()
        self._clock = 0
        self._lock_key: int | None = None
        ensure_schema(store)

    def __repr__(self) -> str:
        return f"PostgresOpLog({self._store.where!r}, {self._session_id!r})"

    @property
    def repairs(self) -> list[Repair]:
        """Always empty: a transaction that did not commit leaves nothing to repair."""
        return []

    def joins_transactions_of(self, store: Store) -> bool:
        """True when ``store`` is this log's store, so its writes join its transactions."""
        return store is self._store

    def close(self) -> None:
        """Nothing to release (the store is the caller's); safe to call twice."""

    def exists(self) -> bool:
        """True once the session has a row (its first append, receive or checkpoint)."""
        with self._store.connection() as conn:
            row = conn.execute(
                "SELECT 1 FROM oplog_sessions WHERE session = %s", (self._session_id,)
            ).fetchone()
        return row is not None

    # -- the session row: state and lock ----------------------------------------------

    def _head(self) -> Tail:
        """The session row as last committed, without locking it."""
        with self._store.connection() as conn:
            row = conn.execute(
                "SELECT ops, log_bytes, max_lamport FROM oplog_sessions WHERE session = %s",
                (self._session_id,),
            ).fetchone()
        return Tail() if row is None else Tail(int(row[0]), int(row[1]), int(row[2]))

    def _lock(self, conn: Connection) -> Tail:
        """Lock the session row until the transaction ends (creating it); return it.

        Under READ COMMITTED a ``FOR UPDATE`` that waited returns the row as
        the previous holder committed it, so the counters are always current.
        """
        row = conn.execute(_LOCK_ROW, (self._session_id,)).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO oplog_sessions (session) VALUES (%s) ON CONFLICT (session) DO NOTHING",
                (self._session_id,),
            )
            row = conn.execute(_LOCK_ROW, (self._session_id,)).fetchone()
        if row is None:  # pragma: no cover - the row was just made, and rows are never deleted
            raise CorruptLogError(f"op log {self._session_id}: its session row vanished")
        return Tail(int(row[0]), int(row[1]), int(row[2]))

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[Locked[Connection]]:
        """A write transaction holding the session row's lock (see :meth:`_lock`)."""
        with self._store.connection(write=True) as conn:
            yield Locked(conn, self._lock(conn))

    # -- clocks -----------------------------------------------------------------------

    def next_lamport_ts(self) -> int:
        """Return the next Lamport stamp: one more than any this log or instance has seen.

        One indexed read. Another writer may take the same stamp first;
        :meth:`append` then re-stamps.
        """
        top = self._head().max_lamport
        with self._mutex:
            self._clock = max(self._clock, top) + 1
            return self._clock

    # -- writing (primitives of BaseOpLog) ----------------------------------------------

    def _stamps(self, locked: Locked[Connection] | None, op_ids: Collection[str]) -> dict[str, int]:
        if locked is not None:
            return self._lookup(locked.handle, op_ids)
        with self._store.connection() as conn:
            return self._lookup(conn, op_ids)

    def _lookup(self, conn: Connection, op_ids: Iterable[str]) -> dict[str, int]:
        """Return ``{op_id: lamport_ts}`` for those of ``op_ids`` in the log."""
        wanted = [bytes.fromhex(i) for i in set(op_ids) if _OP_ID.fullmatch(i)]
        found: dict[str, int] = {}
        for start in range(0, len(wanted), _BATCH_ROWS):
            rows = conn.execute(
                "SELECT op_id, lamport_ts FROM oplog_ops WHERE session = %s AND op_id = ANY(%s)",
                (self._session_id, wanted[start : start + _BATCH_ROWS]),
            ).fetchall()
            found.update((bytes(oid).hex(), int(ts)) for oid, ts in rows)
        return found

    def _write(self, locked: Locked[Connection], entries: Sequence[OpEntry]) -> None:
        """Insert ``entries`` after ``locked.tail`` and move the session row."""
        conn, tail = locked.handle, locked.tail
        rows: list[tuple[int, bytes, int, int, bytes]] = []
        for entry in entries:
            line = encode_line(entry)[:-1]
            tail.ops += 1
            tail.bytes += len(line) + 1
            tail.max_lamport = max(tail.max_lamport, entry["lamport_ts"])
            rows.append(
                (tail.ops, bytes.fromhex(entry["op_id"]), entry["lamport_ts"], tail.bytes, line)
            )
        for chunk in _batches(rows):
            conn.execute(_INSERT_OPS, (self._session_id, *map(list, zip(*chunk, strict=True))))
        conn.execute(
            "UPDATE oplog_sessions SET ops = %s, log_bytes = %s, max_lamport = %s"
            " WHERE session = %s",
            (tail.ops, tail.bytes, tail.max_lamport, self._session_id),
        )

    def _redact(self, locked: Locked[Connection], text: str, *, dry_run: bool) -> int:
        """Update the rows holding ``text`` to their redacted lines; delete held ones.

        In the write lock's transaction: every row changes, or none.
        """
        conn, needle = locked.handle, quoted(text)
        held = conn.execute(
            "SELECT op_id, line FROM oplog_held WHERE session = %s AND position(%s in line) > 0",
            (self._session_id, needle),
        ).fetchall()
        gone = [oid for oid, line in held if holds_text(decode_mapping(bytes(line)), text)]
        if gone and not dry_run:
            conn.execute(
                "DELETE FROM oplog_held WHERE session = %s AND op_id = ANY(%s)",
                (self._session_id, gone),
            )
        rows = conn.execute(
            "SELECT seq, line FROM oplog_ops WHERE session = %s AND position(%s in line) > 0",
            (self._session_id, needle),
        ).fetchall()
        changed = 0
        for seq, line in rows:
            if holds_text(decode_mapping(bytes(line)), text):
                redacted = redact_line(bytes(line))
                if not dry_run:
                    conn.execute(
                        "UPDATE oplog_ops SET line = %s WHERE session = %s AND seq = %s",
                        (redacted, self._session_id, seq),
                    )
                changed += 1
        return changed

    def _read_held(self, locked: Locked[Connection]) -> dict[str, OpEntry]:
        """Held ops are rows of ``oplog_held``, shared by every handle on the session."""
        conn = locked.handle
        rows = conn.execute(
            "SELECT line FROM oplog_held WHERE session = %s ORDER BY op_id", (self._session_id,)
        ).fetchall()
        held = {}
        for (line,) in rows:
            entry = self._decode(bytes(line), "oplog_held")
            held[entry["op_id"]] = entry
        return held

    def _hold(
        self, locked: Locked[Connection], before: set[str], waiting: Sequence[OpEntry]
    ) -> None:
        conn = locked.handle
        now = {e["op_id"]: e for e in waiting}
        gone = [bytes.fromhex(op_id) for op_id in before - now.keys()]
        if gone:
            conn.execute(
                "DELETE FROM oplog_held WHERE session = %s AND op_id = ANY(%s)",
                (self._session_id, gone),
            )
        new = [e for op_id, e in now.items() if op_id not in before]
        for start in range(0, len(new), _BATCH_ROWS):
            chunk = new[start : start + _BATCH_ROWS]
            conn.execute(
                "INSERT INTO oplog_held (session, op_id, line)"
                " SELECT %s, * FROM unnest(%s::bytea[], %s::bytea[])"
                " ON CONFLICT DO NOTHING",
                (
                    self._session_id,
                    [bytes.fromhex(e["op_id"]) for e in chunk],
                    [encode_line(e)[:-1] for e in chunk],
                ),
            )

    # -- reading ----------------------------------------------------------------------

    def _lines(self, first: int, last: int) -> Iterator[tuple[int, bytes]]:
        """Yield ``(seq, line)`` for the rows with ``first < seq <= last``, by ``seq``.

        A page at a time, so no cursor stays open between yields and other
        threads can use the store meanwhile; rows are never changed, so the
        pages agree.
        """
        after = first
        while after < last:
            with self._store.connection() as conn:
                rows = conn.execute(
                    "SELECT seq, line FROM oplog_ops WHERE session = %s AND seq > %s"
                    " AND seq <= %s ORDER BY seq LIMIT %s",
                    (self._session_id, after, last, _PAGE),
                ).fetchall()
            if not rows:
                return
            for seq, line in rows:
                yield int(seq), bytes(line)
            after = int(rows[-1][0])

    def _read(self, start: Cut, end: Cut) -> list[OpEntry]:
        """Decode the ops after ``start`` through ``end`` (checked when appended).

        Raises:
            CorruptLogError: a row is missing or does not decode.
        """
        result = []
        expected = start.ops
        for seq, line in self._lines(start.ops, end.ops):
            expected += 1
            if seq != expected:
                raise self._corrupt(expected, "the op is missing")
            result.append(self._decode(line, f"line {seq}"))
        if expected < end.ops:
            raise self._corrupt(expected + 1, "the op is missing")
        return result

    def _decode(self, line: bytes, where: str) -> OpEntry:
        try:
            return _entry_decoder.decode(line)
        except msgspec.DecodeError as exc:
            raise CorruptLogError(
                f"op log {self._session_id}: {where}: not a well-formed op ({exc})"
            ) from None

    def _corrupt(self, number: int, why: str) -> CorruptLogError:
        return CorruptLogError(f"op log {self._session_id}: line {number}: {why}")

    def _position(self, cut: Cut) -> int:
        """Rows are read by ``seq``."""
        return cut.ops

    def _snapshot(self) -> AbstractContextManager[None]:
        return self._store.read_snapshot()

    def end(self) -> Cut:
        """The cut at the log's current end."""
        tail = self._head()
        return Cut(tail.ops, tail.bytes)

    def cut_after(self, start: Cut, count: int) -> Cut:
        """Return the cut ``count`` ops after ``start``.

        Raises:
            InvalidInputError: the log has fewer ops after ``start``.
        """
        if count == 0:
            return Cut(start.ops, start.bytes)
        with self._store.connection() as conn:
            row = (
                conn.execute(
                    "SELECT end_bytes FROM oplog_ops WHERE session = %s AND seq = %s",
                    (self._session_id, start.ops + count),
                ).fetchone()
                if count > 0 and start.ops >= 0
                else None
            )
        if row is None:
            raise InvalidInputError(f"the log has fewer than {count} ops after op {start.ops}")
        return Cut(start.ops + count, int(row[0]))

    # -- checkpoints ------------------------------------------------------------------

    def read_checkpoint(self) -> OpLogCheckpoint | None:
        """Return the latest checkpoint, or None if the session has none.

        Raises:
            CorruptLogError: the record is damaged.
        """
        with self._store.connection() as conn:
            row = conn.execute(
                "SELECT number, record FROM oplog_checkpoints WHERE session = %s"
                " ORDER BY number DESC LIMIT 1",
                (self._session_id,),
            ).fetchone()
        return None if row is None else self._checkpoint_of(int(row[0]), bytes(row[1]))

    def checkpoints(self) -> list[OpLogCheckpoint]:
        """Return every checkpoint written, oldest first."""
        with self._store.connection() as conn:
            rows = conn.execute(
                "SELECT number, record FROM oplog_checkpoints WHERE session = %s ORDER BY number",
                (self._session_id,),
            ).fetchall()
        return [self._checkpoint_of(int(n), bytes(record)) for n, record in rows]

    def _checkpoint_of(self, number: int, data: bytes) -> OpLogCheckpoint:
        try:
            return decode_checkpoint(data, self._session_id)
        except InvalidInputError as exc:
            raise CorruptLogError(
                f"op log {self._session_id}: checkpoint {number}: {exc}"
            ) from None

    def _checkpoint_leaves(self, start: Cut, end: Cut) -> tuple[list[bytes], int]:
        actual = self.cut_after(Cut(0, 0), end.ops).bytes if end.ops else 0
        if actual != end.bytes:
            raise InvalidInputError(
                f"checkpoint cut at op {end.ops} says byte {end.bytes}; the op ends at {actual}"
            )
        hashes = []
        top = 0
        for _, entry_line in self._lines(start.ops, end.ops):
            hashes.append(op_leaf(entry_line))
            top = max(top, self._decode(entry_line, "checkpoint")["lamport_ts"])
        if len(hashes) != end.ops - start.ops:
            raise self._corrupt(start.ops + len(hashes) + 1, "the op is missing")
        return hashes, top

    def _store_checkpoint(self, locked: Locked[Connection], record: OpLogCheckpoint) -> None:
        """Insert the record as the next of the session's, in the caller's transaction."""
        locked.handle.execute(
            "INSERT INTO oplog_checkpoints (session, number, op_count, record)"
            " SELECT %s, coalesce(max(number), 0) + 1, %s, %s FROM oplog_checkpoints"
            " WHERE session = %s",
            (self._session_id, record["op_count"], encode_json(record), self._session_id),
        )

    # -- crystallising ----------------------------------------------------------------

    @contextlib.contextmanager
    def commit_lock(self) -> Iterator[None]:
        """Serialise crystallising this session into commits, across processes and machines.

        A session-level advisory lock excludes other connections; it is
        re-entrant within one connection, so a thread lock per store object
        and session excludes this process's other threads. The lock is taken
        by polling, so waiting never holds the store's connection from other
        threads.
        """
        with _thread_lock(self._store, self._session_id):
            key = self._advisory_key()
            pause = _LOCK_WAIT[0]
            while True:
                with self._store.connection() as conn:
                    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                if row is not None and row[0]:
                    break
                time.sleep(pause)
                pause = min(pause * 2, _LOCK_WAIT[1])
            try:
                yield
            except BaseException:
                # Unlocking fails only if the connection is gone (which frees the
                # lock) or a caller's transaction was aborted; the error that got
                # us here is the one worth reporting.
                with contextlib.suppress(StoreError):
                    self._unlock(key)
                raise
            self._unlock(key)

    def _unlock(self, key: int) -> None:
        with self._store.connection() as conn:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def _advisory_key(self) -> int:
        """A 64-bit lock key for this schema's session: advisory locks span the database."""
        if self._lock_key is None:
            with self._store.connection() as conn:
                row = conn.execute("SELECT current_schema()").fetchone()
            name = f"contextfs oplog commit\0{row[0] if row else ''}\0{self._session_id}"
            digest = hashlib.sha256(name.encode()).digest()
            self._lock_key = int.from_bytes(digest[:8], "big", signed=True)
        return self._lock_key

    # -- transparency -----------------------------------------------------------------

    def _leaf_hashes(self, end: Cut, size: int | None) -> list[bytes]:
        last = end.ops if size is None else size
        return [op_leaf(line) for _, line in self._lines(0, last)]

    def verify(self, *, trusted: tuple[int, str] | None = None) -> LogVerification:
        """Check the whole log: every row, op id, parent and checkpoint, in one snapshot.

        Besides what the file log checks (each op's id against its content,
        causal order, each checkpoint's cut and root, consistency proofs
        between checkpoints and to ``trusted``), each row's columns must agree
        with its line and the session row with the log.
        """
        with self._snapshot():
            head = self._head()
            rows = list(self._rows())
            records = self._checkpoint_rows()
        found = check_lines((number, row[4]) for number, row in enumerate(rows, 1))
        problems = found.problems
        for number, (seq, op_id, stamp, end_bytes, _) in enumerate(rows, 1):
            problems += _row_problems(number, seq, op_id, stamp, end_bytes, found)
        top = max((s for _, s in found.stamps), default=0)
        if (head.ops, head.bytes, head.max_lamport) != (len(rows), found.offsets[-1], top):
            problems.append(
                f"the session row says {head.ops} ops, {head.bytes} bytes, highest stamp"
                f" {head.max_lamport}; the log holds {len(rows)}, {found.offsets[-1]}, {top}"
            )
        checkpoints: list[OpLogCheckpoint] = []
        for position, (number, count, data) in enumerate(records, 1):
            try:
                record = decode_checkpoint(data, self._session_id)
            except InvalidInputError as exc:
                problems.append(f"checkpoint {number}: {exc}")
                continue
            if number != position or count != record["op_count"]:
                problems.append(f"checkpoint {number}: its row does not match its record")
            checkpoints.append(record)
        return self._verdict(found, checkpoints, trusted, len(records))

    def _rows(self) -> Iterator[tuple[int, str, int, int, bytes]]:
        """Every row as ``(seq, op_id, lamport_ts, end_bytes, line)``, by ``seq``."""
        after = 0
        while True:
            with self._store.connection() as conn:
                page = conn.execute(
                    "SELECT seq, op_id, lamport_ts, end_bytes, line FROM oplog_ops"
                    " WHERE session = %s AND seq > %s ORDER BY seq LIMIT %s",
                    (self._session_id, after, _PAGE),
                ).fetchall()
            for seq, op_id, stamp, end_bytes, line in page:
                yield int(seq), bytes(op_id).hex(), int(stamp), int(end_bytes), bytes(line)
            if len(page) < _PAGE:
                return
            after = int(page[-1][0])

    def _checkpoint_rows(self) -> list[tuple[int, int, bytes]]:
        with self._store.connection() as conn:
            rows = conn.execute(
                "SELECT number, op_count, record FROM oplog_checkpoints WHERE session = %s"
                " ORDER BY number",
                (self._session_id,),
            ).fetchall()
        return [(int(n), int(count), bytes(record)) for n, count, record in rows]


# -- helpers ------------------------------------------------------------------------


def _row_problems(
    number: int, seq: int, op_id: str, stamp: int, end_bytes: int, found: LineCheck
) -> Iterator[str]:
    """What is wrong with row ``number``'s columns against its line."""
    if seq != number:
        yield f"line {number}: the row is at position {seq}"
    line_id, line_stamp = found.stamps[number - 1]
    if line_id and (op_id, stamp) != (line_id, line_stamp):
        yield f"line {number}: the row's op_id or lamport_ts column differs from its line"
    if end_bytes != found.offsets[number]:
        yield f"line {number}: the row says the log is {end_bytes} bytes long here"


def _batches(
    rows: Sequence[tuple[int, bytes, int, int, bytes]],
) -> Iterator[Sequence[tuple[int, bytes, int, int, bytes]]]:
    """Split rows into INSERTs of at most _BATCH_ROWS rows and about _BATCH_BYTES bytes."""
    start = size = 0
    for index, row in enumerate(rows):
        if index > start and (index - start >= _BATCH_ROWS or size + len(row[4]) > _BATCH_BYTES):
            yield rows[start:index]
            start, size = index, 0
        size += len(row[4])
    if start < len(rows):
        yield rows[start:]


def _thread_lock(store: PostgresStore, session: str) -> threading.RLock:
    """The crystallising lock of ``session`` shared by every handle on ``store``."""
    with _registry_lock:
        locks = _commit_locks.setdefault(store, {})
        return locks.setdefault(session, threading.RLock())


__all__ = ["MIGRATIONS", "PostgresOpLog", "ensure_schema", "sessions_in_store"]
