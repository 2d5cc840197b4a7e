"""The in-memory reference backend: the :class:`~contextfs.store.base.Store` port in plain dicts.

Every other backend must behave exactly like this one; the shared contract suite in
:mod:`contextfs.testing.store_contract` holds them to it. It is also the fast store
for tests and for throw-away repositories.

Transaction semantics (shared by every backend):

* ``with store.transaction():`` holds the store's lock for its whole body, so other
  threads wait rather than see half a batch.
* Transactions nest by joining: an inner ``transaction()`` is a no-op marker and
  only the outermost exit commits or rolls back. An exception that escapes an inner
  block is just an exception; if the caller catches it inside the outer block, the
  writes made before it stay and commit with the outer block. There are no
  savepoints.
* If the outermost body raises (any ``BaseException``), every object put and ref
  move made inside it is undone, then the exception propagates.
"""

from __future__ import annotations

import string
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from types import TracebackType
from typing import ClassVar, TypeVar

from contextfs.errors import InvalidInputError, StoreError
from contextfs.store.base import OBJECT_KINDS, ReflogEntry, StoredObject
from contextfs.tokens import TokenRecord

_HEX_DIGITS = frozenset(string.hexdigits.lower())

_T = TypeVar("_T")


def checked_objects(objects: Iterable[tuple[bytes, str, bytes]]) -> list[tuple[bytes, str, bytes]]:
    """Materialise and validate a batch for ``put_objects`` before anything is written.

    Shared by every backend so that a bad batch is refused with the same message
    everywhere and changes nothing (DESIGN.md section 11).

    Raises:
        InvalidInputError: an id is not 32 bytes, a kind is unknown or data is not bytes.
    """
    rows: list[tuple[bytes, str, bytes]] = []
    for oid, kind, data in objects:
        if not isinstance(oid, bytes) or len(oid) != 32:
            raise InvalidInputError(f"object id must be 32 bytes, got {oid!r}")
        if kind not in OBJECT_KINDS:
            raise InvalidInputError(f"unknown object kind {kind!r}")
        if not isinstance(data, bytes):
            raise InvalidInputError(f"object data must be bytes, got {type(data).__name__}")
        rows.append((oid, kind, data))
    return rows


def check_hex_prefix(hex_prefix: str) -> None:
    """Refuse a ``find_ids`` prefix that is not 0-64 lowercase hex digits.

    Raises:
        InvalidInputError: the prefix is too long or holds a non-hex character.
    """
    if len(hex_prefix) > 64 or not _HEX_DIGITS.issuperset(hex_prefix):
        raise InvalidInputError(f"id prefix must be 0-64 lowercase hex digits, got {hex_prefix!r}")


class MemoryStore:
    """A :class:`~contextfs.store.base.Store` held in dicts, guarded by one re-entrant lock.

    Nothing survives the process; :meth:`close` only makes later calls fail, as a
    closed file would.
    """

    #: Its entry in the backend registry (:mod:`contextfs.backends`).
    backend: ClassVar[str] = "memory"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._objects: dict[bytes, StoredObject] = {}
        self._refs: dict[str, str] = {}
        self._derived: dict[str, bytes] = {}
        self._reflog: list[ReflogEntry] = []
        self._tokens: dict[str, TokenRecord] = {}
        self._depth = 0
        # Undo steps of the open transaction, replayed in reverse on rollback.
        self._journal: list[Callable[[], object]] = []
        self._closed = False
        # Objects that live and roll back with this store, such as its search index.
        self._extensions: dict[type, object] = {}

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("memory store is closed")

    # -- objects -------------------------------------------------------------

    def get_object(self, oid: bytes) -> StoredObject | None:
        """Return the object stored under ``oid``, or None if absent."""
        with self._lock:
            self._check_open()
            return self._objects.get(oid)

    def get_objects(self, oids: Sequence[bytes]) -> dict[bytes, StoredObject]:
        """Return the present objects among ``oids`` (absent ids are left out)."""
        with self._lock:
            self._check_open()
            found: dict[bytes, StoredObject] = {}
            for oid in oids:
                obj = self._objects.get(oid)
                if obj is not None:
                    found[oid] = obj
            return found

    def has_objects(self, oids: Sequence[bytes]) -> set[bytes]:
        """Return the subset of ``oids`` that is stored."""
        with self._lock:
            self._check_open()
            return {oid for oid in oids if oid in self._objects}

    def put_objects(self, objects: Iterable[tuple[bytes, str, bytes]]) -> None:
        """Store ``(id, kind, data)`` triples; ids already present are skipped.

        Raises:
            InvalidInputError: the batch holds a malformed triple; nothing is stored.
        """
        rows = checked_objects(objects)
        with self._lock:
            self._check_open()
            for oid, kind, data in rows:
                if oid in self._objects:
                    continue
                self._objects[oid] = StoredObject(kind, data)
                if self._depth:
                    self._journal.append(partial(self._objects.pop, oid, None))

    def find_ids(
        self, hex_prefix: str, limit: int, kinds: Collection[str] | None = None
    ) -> list[bytes]:
        """Return up to ``limit`` sorted ids whose hex spelling starts with ``hex_prefix``.

        Raises:
            InvalidInputError: ``hex_prefix`` is not 0-64 lowercase hex digits.
        """
        check_hex_prefix(hex_prefix)
        if kinds is not None and set(kinds) - OBJECT_KINDS:
            unknown = sorted(set(kinds) - OBJECT_KINDS)
            raise InvalidInputError(f"unknown object kind(s): {unknown!r}")
        if limit <= 0:
            return []
        with self._lock:
            self._check_open()
            matches = [
                oid
                for oid, stored in self._objects.items()
                if oid.hex().startswith(hex_prefix) and (kinds is None or stored.kind in kinds)
            ]
        return sorted(matches)[:limit]

    def iter_objects(self, kind: str | None = None) -> Iterator[tuple[bytes, str, bytes]]:
        """Yield every stored ``(id, kind, data)``, optionally of one kind, by id.

        The objects are snapshotted when iteration starts, so writes made while the
        caller iterates neither appear nor break the iteration.
        """
        with self._lock:
            self._check_open()
            items = sorted(self._objects.items())
        for oid, obj in items:
            if kind is None or obj.kind == kind:
                yield oid, obj.kind, obj.data

    def count_objects(self) -> int:
        """Return how many objects are stored."""
        with self._lock:
            self._check_open()
            return len(self._objects)

    def append_reflog(self, entries: Sequence[ReflogEntry]) -> None:
        """Append ``entries`` in order; rolls back with the transaction."""
        with self._lock:
            self._check_open()
            size = len(self._reflog)
            self._reflog.extend(entries)
            if self._depth:
                self._journal.append(partial(self._reflog.__delitem__, slice(size, None)))

    def read_reflog(self, ref: str, limit: int | None = None) -> list[ReflogEntry]:
        """Return ``ref``'s entries, newest first, at most ``limit``."""
        with self._lock:
            self._check_open()
            found = [entry for entry in reversed(self._reflog) if entry.ref == ref]
        return found if limit is None else found[:limit]

    def reflog_since(self, at: int) -> list[ReflogEntry]:
        """Return every ref's entries made at ``at`` (µs) or later, oldest first."""
        with self._lock:
            self._check_open()
            return [entry for entry in self._reflog if entry.at >= at]

    def expire_reflog(self, before: int) -> int:
        """Delete the entries made before ``before`` (µs); return how many."""
        with self._lock:
            self._check_open()
            old = list(self._reflog)
            self._reflog[:] = [entry for entry in old if entry.at >= before]
            if self._depth:
                self._journal.append(partial(self._reflog.__setitem__, slice(None), old))
            return len(old) - len(self._reflog)

    def object_sizes(self) -> Iterator[tuple[bytes, str, int]]:
        """Yield every stored ``(id, kind, size)``, by id."""
        with self._lock:
            self._check_open()
            rows = sorted((oid, obj.kind, len(obj.data)) for oid, obj in self._objects.items())
        yield from rows

    def delete_objects(self, oids: Sequence[bytes]) -> int:
        """Delete the objects ``oids``; return how many were stored (undone by a rollback)."""
        with self._lock:
            self._check_open()
            deleted = 0
            for oid in dict.fromkeys(oids):
                old = self._objects.pop(oid, None)
                if old is not None:
                    deleted += 1
                    if self._depth:
                        self._journal.append(partial(self._objects.__setitem__, oid, old))
            return deleted

    def read_derived(self, name: str) -> bytes | None:
        """Return the derived blob kept under ``name``, or None."""
        with self._lock:
            self._check_open()
            return self._derived.get(name)

    def write_derived(self, name: str, data: bytes | None) -> None:
        """Keep ``data`` under ``name`` (None forgets it); rolls back with the transaction."""
        with self._lock:
            self._check_open()
            old = self._derived.get(name)
            if data is None:
                self._derived.pop(name, None)
            else:
                self._derived[name] = bytes(data)
            if self._depth:
                self._journal.append(partial(self._restore_derived, name, old))

    def _restore_derived(self, name: str, data: bytes | None) -> None:
        if data is None:
            self._derived.pop(name, None)
        else:
            self._derived[name] = data

    def erase_object(self, oid: bytes) -> bool:
        """Replace object ``oid``'s data with empty bytes (kind kept); False if absent.

        Rolls back with the open transaction, like every write.
        """
        with self._lock:
            self._check_open()
            old = self._objects.get(oid)
            if old is None:
                return False
            self._objects[oid] = StoredObject(old.kind, b"")
            if self._depth:
                self._journal.append(partial(self._objects.__setitem__, oid, old))
            return True

    # -- refs ------------------------------------------------------------------

    def read_ref(self, name: str) -> str | None:
        """Return the ref's value, or None if it does not exist."""
        with self._lock:
            self._check_open()
            return self._refs.get(name)

    def set_ref_if_equals(self, name: str, old: str | None, new: str | None) -> bool:
        """Move ``name`` from ``old`` to ``new`` atomically; see the port for the contract."""
        with self._lock:
            self._check_open()
            current = self._refs.get(name)
            if current != old:
                return False
            if new is None:
                self._refs.pop(name, None)
            else:
                self._refs[name] = new
            if self._depth and current != new:
                self._journal.append(partial(self._restore_ref, name, current))
            return True

    def _restore_ref(self, name: str, value: str | None) -> None:
        if value is None:
            self._refs.pop(name, None)
        else:
            self._refs[name] = value

    def list_refs(self, prefix: str = "") -> dict[str, str]:
        """Return every ref whose name starts with ``prefix``, sorted by name."""
        with self._lock:
            self._check_open()
            return {
                name: value for name, value in sorted(self._refs.items()) if name.startswith(prefix)
            }

    # -- tokens ------------------------------------------------------------------

    def add_token(self, record: TokenRecord) -> None:
        """Keep ``record``; rolls back with the transaction.

        Raises:
            InvalidInputError: a token of that name exists (revoked ones too).
        """
        with self._lock:
            self._check_open()
            if record.name in self._tokens:
                raise InvalidInputError(f"a token named {record.name!r} exists already")
            self._tokens[record.name] = record
            if self._depth:
                self._journal.append(partial(self._tokens.pop, record.name))

    def list_tokens(self) -> list[TokenRecord]:
        """Every token, revoked and expired ones too, by name."""
        with self._lock:
            self._check_open()
            return [self._tokens[name] for name in sorted(self._tokens)]

    def find_token(self, digest: str) -> TokenRecord | None:
        """The token whose secret hashes to ``digest``, or None."""
        with self._lock:
            self._check_open()
            return next((t for t in self._tokens.values() if t.digest == digest), None)

    def revoke_token(self, name: str, at: int) -> bool:
        """Mark token ``name`` revoked at ``at`` (µs); False if none is live by that name."""
        with self._lock:
            self._check_open()
            record = self._tokens.get(name)
            if record is None or record.revoked is not None:
                return False
            self._tokens[name] = replace(record, revoked=at)
            if self._depth:
                self._journal.append(partial(self._tokens.__setitem__, name, record))
            return True

    # -- transactions ----------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes so they land together or not at all (see the module docstring)."""
        with self._lock:
            self._check_open()
            self._depth += 1
            try:
                yield
            except BaseException:
                if self._depth == 1:
                    self._rollback()
                raise
            finally:
                self._depth -= 1
                if not self._depth:
                    self._journal.clear()

    def in_transaction(self) -> bool:
        """Whether a transaction is open on this store object."""
        with self._lock:
            return self._depth > 0

    def on_rollback(self, undo: Callable[[], object]) -> None:
        """Run ``undo`` if the open transaction rolls back.

        State kept beside the store (its search index) registers here so it
        rolls back with the objects. Undo steps run in reverse order of
        registration. Outside a transaction a write is already final, so
        ``undo`` is dropped.
        """
        with self._lock:
            if self._depth:
                self._journal.append(undo)

    def extension(self, kind: type[_T], factory: Callable[[], _T]) -> _T:
        """Return the one ``kind`` object attached to this store, made by ``factory`` on first use.

        Lets a companion such as the search index be found again from the store
        alone, one instance per store object, living exactly as long as it.
        """
        with self._lock:
            found = self._extensions.get(kind)
            if not isinstance(found, kind):
                found = self._extensions[kind] = factory()
            return found

    def _rollback(self) -> None:
        for undo in reversed(self._journal):
            undo()
        self._journal.clear()

    def close(self) -> None:
        """Make later calls raise :class:`StoreError`; safe to call twice."""
        with self._lock:
            self._closed = True
