"""A session's op log on disk: append-only, multi-process safe, crash safe, checkable.

Layout, under the repository folder (``.contextfs/``)::

    oplog/<session>/
        ops.jsonl          one op per line, in arrival order (the log itself)
        checkpoint.json    the latest checkpoint (written atomically)
        checkpoints.jsonl  every checkpoint, in order (the log of the log)
        ops.state          a cache of the log's size, op count and highest stamp
        lock, commit.lock  lock files (appends; crystallising into commits)

The seed's defects are fixed here (DESIGN.md sections 2 and 8):

* every append holds an exclusive ``flock`` and a thread lock, writes whole
  lines with one ``write`` on an ``O_APPEND`` file and ``fdatasync``\\ s before it
  returns, so appends from any number of processes and threads never
  interleave, and an acknowledged op survives a crash;
* the stamp of an op appended here is greater than every stamp already in
  the log (an op whose stamp is stale is re-stamped under the lock, and the
  entry as stored is returned), so stamps increase strictly in file order
  for local appends;
* a line left torn by a crash is cut off when the log is next opened and
  reported (:attr:`OpLog.repairs`); a damaged line in the middle is an error
  naming it, never skipped;
* a checkpoint is a *cut*: the first ``op_count`` lines. An op that arrives
  later lands after the cut whatever its stamp, so the next replay has it;
* the log is an RFC 6962 transparency log over its lines: each checkpoint
  records the root and the frontier that extends it, and a consistency proof
  between any two checkpoints shows the log only grew.

What the log promises on top of its files (re-stamping, merging, checkpoints,
transparency) is written once, for this and the PostgreSQL log, in
:class:`~.base.BaseOpLog`; this module implements its storage primitives.
``next_lamport_ts`` and ``replay_since_checkpoint`` read the state cache and
the lines after the cut, never the whole file (the cache is checked against
the file's size, and rebuilt from the file if it is stale or damaged).
POSIX only (``fcntl.flock``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import struct
import threading
import weakref
import zlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import msgspec

from ..discovery import REPO_DIR
from ..errors import CorruptLogError, InvalidInputError, ReadOnlyStoreError, StoreError
from .base import (
    BaseOpLog,
    Cut,
    Locked,
    LogVerification,
    ReceiveResult,
    Repair,
    Tail,
    decode_checkpoint,
)
from .checks import check_lines
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

logger = logging.getLogger(__name__)

OPLOG_DIR = "oplog"
OPS_FILE = "ops.jsonl"
CHECKPOINT_FILE = "checkpoint.json"
HISTORY_FILE = "checkpoints.jsonl"
STATE_FILE = "ops.state"
LOCK_FILE = "lock"
COMMIT_LOCK_FILE = "commit.lock"

_STATE = struct.Struct("<8sQQQI")
_STATE_MAGIC = b"CFSOPLG1"
_CHUNK = 1 << 20


class _Stamp(msgspec.Struct):
    """The two fields a scan needs, decoded without the rest of the line."""

    op_id: str
    lamport_ts: int


_stamp_decoder = msgspec.json.Decoder(_Stamp)
_entry_decoder = msgspec.json.Decoder(OpEntry)


def oplog_root(repo_folder: Path) -> Path:
    """Return the folder holding every session's log in a repository folder."""
    return Path(repo_folder) / OPLOG_DIR


def list_sessions(repo_root: str | os.PathLike[str]) -> list[str]:
    """Return the ids of the sessions with a log under ``repo_root/.contextfs``, sorted."""
    return sessions_in(Path(repo_root) / REPO_DIR)


def sessions_in(repo_folder: Path) -> list[str]:
    """Return the sessions with a log in the repository folder ``repo_folder``, sorted."""
    folder = oplog_root(repo_folder)
    if not folder.is_dir():
        return []
    names = []
    for child in folder.iterdir():
        with contextlib.suppress(InvalidInputError):
            if child.is_dir() and (child / OPS_FILE).exists():
                names.append(check_session_id(child.name))
    return sorted(names)


class OpLog(BaseOpLog[int]):
    """The append-only log of one live collaboration session.

    Args:
        repo_root: the directory holding ``.contextfs/`` (the seed's meaning);
            use :meth:`in_folder` to name the repository folder itself.
        session_id: the session (see :func:`~.entry.check_session_id`).

    The session folder is created on the first append. An instance is safe to
    share between threads; separate instances and processes coordinate through
    the lock file. Its write lock holds the log file's descriptor (``O_APPEND``).
    """

    def __init__(self, repo_root: str | os.PathLike[str], session_id: str) -> None:
        self._setup(Path(repo_root) / REPO_DIR, session_id)

    @classmethod
    def in_folder(cls, repo_folder: str | os.PathLike[str], session_id: str) -> OpLog:
        """Open the session's log in the repository folder ``repo_folder`` (``.contextfs``)."""
        log = cls.__new__(cls)
        log._setup(Path(repo_folder), session_id)
        return log

    def _setup(self, repo_folder: Path, session_id: str) -> None:
        self._session_id = check_session_id(session_id)
        self.folder = oplog_root(repo_folder) / session_id
        self._ops_path = self.folder / OPS_FILE
        self._state_path = self.folder / STATE_FILE
        self._checkpoint_path = self.folder / CHECKPOINT_FILE
        self._history_path = self.folder / HISTORY_FILE
        self._mutex = threading.RLock()
        self._opened = False
        self._clock = 0
        self._index: dict[str, int] = {}
        self._index_bytes = 0
        self._held: dict[str, OpEntry] = {}
        # (size, mtime, tail) of the file as last read: one tuple, swapped whole.
        self._seen: tuple[int, int, Tail] = (-1, -1, Tail())
        self._repairs: list[Repair] = []
        self._files = _Descriptors()
        weakref.finalize(self, self._files.close)

    @property
    def repairs(self) -> list[Repair]:
        """Torn lines cut off when this log was opened (each also logged as a warning).

        Reading it opens the log, so it reports what a crash left.
        """
        self._ensure_open()
        return list(self._repairs)

    def close(self) -> None:
        """Close the files this instance keeps open; safe to call twice."""
        with self._mutex:
            self._files.close()

    def __repr__(self) -> str:
        return f"OpLog({str(self.folder)!r})"

    # -- locking and opening ----------------------------------------------------------

    def exists(self) -> bool:
        """True once the session has a log file."""
        return self._ops_path.exists()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[Locked[int]]:
        """Hold the session's exclusive lock; yield the log file's descriptor and its end.

        The descriptor (``O_APPEND``) and the lock file's stay open between
        calls (reopened if the file was replaced) and are closed by
        :meth:`close` or when the instance is collected. A torn tail is cut
        off before the body runs (:meth:`_sync`).
        """
        with self._mutex:
            self._make_folder()
            files = self._files
            files.lock = _reopen(self.folder / LOCK_FILE, files.lock, os.O_RDWR | os.O_CREAT)
            fcntl.flock(files.lock, fcntl.LOCK_EX)
            try:
                created = not self._ops_path.exists()
                flags = os.O_RDWR | os.O_APPEND | os.O_CREAT
                files.ops = _reopen(self._ops_path, files.ops, flags)
                if created:
                    _fsync_dir(self.folder)
                try:
                    yield Locked(files.ops, self._sync(files.ops))
                except BaseException:
                    if created:
                        self._forget_if_empty(files)
                    raise
            finally:
                fcntl.flock(files.lock, fcntl.LOCK_UN)

    def _forget_if_empty(self, files: _Descriptors) -> None:
        """Remove the log file this failed call created, if nothing was written to it.

        A first append that fails (a bad parent) must not leave an empty
        session behind. Called under the lock; the lock file stays, so a
        process waiting for it still excludes every other.
        """
        if files.ops >= 0 and os.fstat(files.ops).st_size == 0:
            with contextlib.suppress(OSError):
                self._ops_path.unlink()
                _fsync_dir(self.folder)

    @contextlib.contextmanager
    def commit_lock(self) -> Iterator[None]:
        """Serialise crystallising this session into commits, across processes."""
        self._make_folder()
        with open(self.folder / COMMIT_LOCK_FILE, "a+b", buffering=0) as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _make_folder(self) -> None:
        if self.folder.is_dir():
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno in _CANNOT_WRITE:
                raise ReadOnlyStoreError(
                    f"the op log of session {self._session_id!r} cannot be written here"
                    f" ({exc.strerror}); nothing was written"
                ) from None
            raise StoreError(f"cannot create the op-log folder: {exc.strerror}") from None
        _fsync_dir(self.folder.parent)

    def _ensure_open(self) -> None:
        """On first use: cut off a torn tail left by a crash, and report it."""
        if self._opened:
            return
        with self._mutex:
            if self._opened:
                return
            if self._ops_path.exists() or self._history_path.exists():
                with self._locked():
                    self._repair_history()
            self._opened = True

    # -- the tail state -------------------------------------------------------------

    def _sync(self, fd: int) -> Tail:
        """Return the log's complete part, repairing a torn tail (call under the lock)."""
        status = os.fstat(fd)
        size = status.st_size
        tail, stale = self._read_state(size, status.st_mtime_ns)
        if tail.bytes < size:
            # Under the lock nobody is mid-append: an unterminated line is torn.
            dropped = size - tail.bytes
            os.ftruncate(fd, tail.bytes)
            os.fsync(fd)
            repair = Repair(OPS_FILE, tail.ops + 1, dropped)
            self._repairs.append(repair)
            logger.warning(
                "op log %s: cut off a torn last line (line %d, %d bytes) left by a crash",
                self._session_id,
                repair.line,
                dropped,
            )
            stale = True
        if stale:
            self._write_state(tail)
        return tail

    def _read_state(self, size: int, changed: int = -1) -> tuple[Tail, bool]:
        """Return the complete part of a log of ``size`` bytes, and whether the cache was stale.

        ``changed`` (the file's mtime in ns) lets this instance reuse what it
        last read when the file has not been written since.
        """
        seen_size, seen_changed, seen = self._seen
        if changed >= 0 and (seen_size, seen_changed) == (size, changed):
            return _copy(seen), False
        tail = Tail()
        with contextlib.suppress(OSError):
            raw = self._state_path.read_bytes()
            if len(raw) == _STATE.size:
                magic, nbytes, ops, top, crc = _STATE.unpack(raw)
                if magic == _STATE_MAGIC and crc == zlib.crc32(raw[:-4]) and nbytes <= size:
                    tail = Tail(ops=ops, bytes=nbytes, max_lamport=top)
        stale = tail.bytes < size
        if stale:
            for _, line in self._lines(tail.bytes, size, tail.ops):
                stamp = self._stamp_of(line, tail.ops + 1)
                tail.ops += 1
                tail.bytes += len(line) + 1
                tail.max_lamport = max(tail.max_lamport, stamp.lamport_ts)
        if changed >= 0 and tail.bytes == size:
            self._seen = (size, changed, _copy(tail))
        return tail, stale

    def _write_state(self, tail: Tail) -> None:
        body = _STATE.pack(_STATE_MAGIC, tail.bytes, tail.ops, tail.max_lamport, 0)[:-4]
        data = body + struct.pack("<I", zlib.crc32(body))
        # A cache: no fsync, since a stale or torn copy is detected and rebuilt.
        fd = os.open(self._state_path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, data, 0)
        finally:
            os.close(fd)

    def _stamp_of(self, line: bytes, number: int) -> _Stamp:
        try:
            stamp = _stamp_decoder.decode(line)
        except msgspec.DecodeError as exc:
            raise self._corrupt(number, f"not a well-formed op ({exc})") from None
        if stamp.lamport_ts < 1:
            raise self._corrupt(number, "lamport_ts must be at least 1")
        return stamp

    def _corrupt(self, number: int, why: str, file: str = OPS_FILE) -> CorruptLogError:
        return CorruptLogError(f"op log {self._session_id}: {file} line {number}: {why}")

    def _lines(self, start: int, end: int, first: int) -> Iterator[tuple[int, bytes]]:
        """Yield ``(line number, line)`` for the complete lines in bytes [start, end)."""
        yield from _read_lines(self._ops_path, start, end, first)

    def _current(self) -> Tail:
        """The complete part of the log right now, without taking the lock."""
        self._ensure_open()
        try:
            status = self._ops_path.stat()
        except FileNotFoundError:
            return Tail()
        return self._read_state(status.st_size, status.st_mtime_ns)[0]

    # -- clocks ---------------------------------------------------------------------

    def next_lamport_ts(self) -> int:
        """Return the next Lamport stamp: one more than any this log or instance has seen.

        Cheap on any size of log (it reads the state cache). Another process
        may take the same stamp first; :meth:`append` then re-stamps.
        """
        with self._mutex:
            self._clock = max(self._clock, self._current().max_lamport) + 1
            return self._clock

    # -- writing (primitives of BaseOpLog) ----------------------------------------------

    def _write_lock(self) -> AbstractContextManager[Locked[int]]:
        """Open the log (see :meth:`_ensure_open`), then hold its lock (see :meth:`_locked`)."""
        self._ensure_open()
        return self._locked()

    def _write(self, locked: Locked[int], entries: Sequence[OpEntry]) -> None:
        """Write whole lines and fdatasync; on failure cut back so nothing is half-written."""
        fd, tail = locked.handle, locked.tail
        data = b"".join(encode_line(entry) for entry in entries)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fdatasync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, tail.bytes)
                os.fsync(fd)
            raise StoreError(
                f"cannot append to op log {self._session_id}: {exc.strerror}"
            ) from None
        if self._index_bytes == tail.bytes:
            for entry in entries:
                self._index[entry["op_id"]] = entry["lamport_ts"]
            self._index_bytes += len(data)
        tail.bytes += len(data)
        tail.ops += len(entries)
        tail.max_lamport = max([tail.max_lamport, *(e["lamport_ts"] for e in entries)])
        self._write_state(tail)
        status = os.fstat(fd)
        if status.st_size == tail.bytes:
            self._seen = (tail.bytes, status.st_mtime_ns, _copy(tail))

    def _stamps(self, locked: Locked[int] | None, op_ids: Collection[str]) -> Mapping[str, int]:
        """The op id -> stamp index of the whole log, brought up to date when needed."""
        if locked is None:
            with self._mutex:
                self._update_index(self._current())
        elif op_ids:
            self._update_index(locked.tail)
        return self._index

    def _update_index(self, tail: Tail) -> None:
        """Bring the op id -> stamp index up to ``tail`` (reads only what is new)."""
        if self._index_bytes > tail.bytes:  # the file was cut back: start again
            self._index, self._index_bytes = {}, 0
        if self._index_bytes < tail.bytes:
            first = len(self._index)
            for number, line in self._lines(self._index_bytes, tail.bytes, first):
                stamp = self._stamp_of(line, number)
                self._index[stamp.op_id] = stamp.lamport_ts
                self._index_bytes += len(line) + 1

    def _redact(self, locked: Locked[int], text: str, *, dry_run: bool) -> int:
        """Rewrite ``ops.jsonl`` with the ops holding ``text`` redacted, then rename it over.

        The new file is written beside the old one, flushed and renamed into
        place (a crash leaves one or the other, whole); every line keeps its
        length, so no cut, checkpoint or cached offset moves.
        """
        needle = quoted(text)
        fd, size = locked.handle, locked.tail.bytes
        lines = os.pread(fd, size, 0).split(b"\n")[:-1] if size else []
        changed = 0
        for number, line in enumerate(lines):
            if needle in line and holds_text(decode_mapping(line), text):
                lines[number] = redact_line(line)
                changed += 1
        if dry_run:
            return changed
        self._held = {k: v for k, v in self._held.items() if not holds_text(v, text)}
        if not changed:
            return 0
        data = b"".join(line + b"\n" for line in lines)
        fresh = self.folder / (OPS_FILE + ".redacting")
        try:
            with open(fresh, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(fresh, self._ops_path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                fresh.unlink()
            raise StoreError(f"cannot redact op log {self._session_id}: {exc.strerror}") from None
        _fsync_dir(self.folder)
        return changed

    def _read_held(self, locked: Locked[int]) -> dict[str, OpEntry]:
        """Ops received before their parents are held by this instance, in memory."""
        return self._held

    def _hold(self, locked: Locked[int], before: set[str], waiting: Sequence[OpEntry]) -> None:
        self._held = {entry["op_id"]: entry for entry in waiting}

    # -- reading ----------------------------------------------------------------------

    def _read(self, start: Cut, end: Cut) -> list[OpEntry]:
        """Decode lines this log wrote (checked when appended) with a typed decoder.

        The shape of every field is checked in C; ``verify`` re-checks op ids.
        """
        result = []
        for number, line in self._lines(start.bytes, end.bytes, start.ops):
            try:
                result.append(_entry_decoder.decode(line))
            except msgspec.DecodeError as exc:
                raise self._corrupt(number, f"not a well-formed op ({exc})") from None
        return result

    def _position(self, cut: Cut) -> int:
        """The file is read by byte offset."""
        return cut.bytes

    def _snapshot(self) -> AbstractContextManager[None]:
        """Reads between cuts see only complete lines, which never change: nothing to do."""
        return contextlib.nullcontext()

    def end(self) -> Cut:
        """The cut at the log's current end."""
        tail = self._current()
        return Cut(tail.ops, tail.bytes)

    def cut_after(self, start: Cut, count: int) -> Cut:
        """Return the cut ``count`` ops after ``start``.

        Raises:
            InvalidInputError: the log has fewer ops after ``start``.
        """
        end = self._current()
        cut = Cut(start.ops, start.bytes)
        for _, line in self._lines(start.bytes, end.bytes, start.ops):
            if cut.ops == start.ops + count:
                break
            cut = Cut(cut.ops + 1, cut.bytes + len(line) + 1)
        if cut.ops != start.ops + count:
            raise InvalidInputError(f"the log has fewer than {count} ops after op {start.ops}")
        return cut

    # -- checkpoints ------------------------------------------------------------------

    def read_checkpoint(self) -> OpLogCheckpoint | None:
        """Return the latest checkpoint, or None if the session has none.

        Raises:
            CorruptLogError: the checkpoint file is damaged.
        """
        self._ensure_open()
        try:
            data = self._checkpoint_path.read_bytes()
        except FileNotFoundError:
            return None
        return self._decode_checkpoint(data, CHECKPOINT_FILE, 1)

    def checkpoints(self) -> list[OpLogCheckpoint]:
        """Return every checkpoint written, oldest first."""
        self._ensure_open()
        if not self._history_path.exists():
            return []
        size = self._history_path.stat().st_size
        return [
            self._decode_checkpoint(line, HISTORY_FILE, number)
            for number, line in _read_lines(self._history_path, 0, size, 0)
        ]

    def _checkpoint_leaves(self, start: Cut, end: Cut) -> tuple[list[bytes], int]:
        hashes = []
        top = 0
        count = start.ops
        for number, line in self._lines(start.bytes, end.bytes, start.ops):
            hashes.append(op_leaf(line))
            top = max(top, self._stamp_of(line, number).lamport_ts)
            count += 1
        if count != end.ops:
            raise InvalidInputError(f"checkpoint cut says {end.ops} ops but its bytes hold {count}")
        return hashes, top

    def _store_checkpoint(self, locked: Locked[int], record: OpLogCheckpoint) -> None:
        """Append to the history, then replace checkpoint.json (both durably)."""
        line = encode_json(record) + b"\n"
        created = not self._history_path.exists()
        with open(self._history_path, "ab", buffering=0) as history:
            history.write(line)
            os.fsync(history.fileno())
        if created:
            _fsync_dir(self.folder)
        _write_atomic(self._checkpoint_path, encode_json(record) + b"\n")

    def _repair_history(self) -> None:
        """After a crash between the two checkpoint writes, finish the second one."""
        if not self._history_path.exists():
            return
        size = self._history_path.stat().st_size
        data = _tail_bytes(self._history_path, size)
        complete = data.rfind(b"\n") + 1
        if complete < len(data):
            dropped = len(data) - complete
            with open(self._history_path, "r+b") as history:
                history.truncate(size - dropped)
                os.fsync(history.fileno())
            self._repairs.append(Repair(HISTORY_FILE, 0, dropped))
            logger.warning("op log %s: cut off a torn checkpoint record", self._session_id)
            data = data[:complete]
        last = data[data.rfind(b"\n", 0, len(data) - 1) + 1 :].rstrip(b"\n")
        if not last:
            return
        current = None
        with contextlib.suppress(FileNotFoundError):
            current = self._checkpoint_path.read_bytes().rstrip(b"\n")
        if current != last:
            self._decode_checkpoint(last, HISTORY_FILE, 0)
            _write_atomic(self._checkpoint_path, last + b"\n")
            logger.warning("op log %s: restored checkpoint.json from its history", self._session_id)

    def _decode_checkpoint(self, data: bytes, file: str, number: int) -> OpLogCheckpoint:
        try:
            return decode_checkpoint(data, self._session_id)
        except InvalidInputError as exc:
            raise self._corrupt(number, str(exc), file) from None

    # -- transparency -----------------------------------------------------------------

    def _leaf_hashes(self, end: Cut, size: int | None) -> list[bytes]:
        hashes: list[bytes] = []
        for _, line in self._lines(0, end.bytes, 0):
            if size is not None and len(hashes) == size:
                break
            hashes.append(op_leaf(line))
        return hashes

    def verify(self, *, trusted: tuple[int, str] | None = None) -> LogVerification:
        """Check the whole log: every line, op id, parent and checkpoint.

        Each checkpoint's root must match the log's prefix, each one must be
        provably consistent with the one before (an RFC 6962 consistency
        proof, built here and checked as a stranger would), and ``trusted``, a
        ``(size, root)`` remembered from earlier, must be consistent with the
        log now.
        """
        self._ensure_open()
        end = self._current() if self._ops_path.exists() else Tail()
        found = check_lines(self._lines(0, end.bytes, 0))
        records = self.checkpoints()
        latest = self.read_checkpoint()
        late = []
        if records and latest != records[-1]:
            late.append("checkpoint.json is not the last checkpoint in checkpoints.jsonl")
        return self._verdict(found, records, trusted, len(records), late)


# -- helpers ------------------------------------------------------------------------


#: The errors of a folder that cannot be written here (a read-only mount, permissions).
_CANNOT_WRITE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


class _Descriptors:
    """The raw descriptors an OpLog keeps open between calls."""

    def __init__(self) -> None:
        self.lock = -1
        self.ops = -1

    def close(self) -> None:
        for fd in (self.lock, self.ops):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.lock = self.ops = -1


def _copy(tail: Tail) -> Tail:
    """A copy of ``tail`` (``dataclasses.replace`` costs microseconds on every append)."""
    return Tail(tail.ops, tail.bytes, tail.max_lamport)


def _reopen(path: Path, fd: int, flags: int) -> int:
    """Return ``fd`` if it is still ``path``'s file, else a new descriptor for ``path``."""
    if fd >= 0:
        try:
            held, named = os.fstat(fd), os.stat(path)
            if (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)
    return os.open(path, flags, 0o644)


def _read_lines(path: Path, start: int, end: int, first: int) -> Iterator[tuple[int, bytes]]:
    """Yield ``(number, line)`` for complete lines in bytes [start, end) of ``path``.

    Numbering starts at ``first + 1``; an unterminated last piece is not a line.
    """
    if end <= start:
        return
    number = first
    with open(path, "rb") as handle:
        handle.seek(start)
        left = end - start
        carry = b""
        while left > 0:
            chunk = handle.read(min(_CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            pieces = (carry + chunk).split(b"\n")
            carry = pieces.pop()
            for piece in pieces:
                number += 1
                yield number, piece


def _tail_bytes(path: Path, size: int, limit: int = 1 << 20) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(max(0, size - limit))
        return handle.read()


def _write_atomic(path: Path, data: bytes) -> None:
    scratch = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(scratch, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(scratch, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            scratch.unlink()
        raise StoreError(f"cannot write {path.name}: {exc.strerror}") from None
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


__all__ = [
    "CorruptLogError",
    "Cut",
    "LogVerification",
    "OpLog",
    "ReceiveResult",
    "Repair",
    "list_sessions",
]
