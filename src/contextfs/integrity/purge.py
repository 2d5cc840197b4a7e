"""Purging an atom's content: the right to be forgotten, without breaking history.

Invariants this module owns (DESIGN.md section 6):

* Commits and tree nodes hold atom *ids*, never atom content, so emptying an
  atom object's bytes leaves every commit id and snapshot root verifiable.
* A purge is recorded before anything is forgotten: a ``purge`` object whose
  canonical body is ``[atom_id: bin32, author: str, reason: str, when: int]``
  (``when`` in microseconds since the epoch, UTC) and whose id is
  ``SHA-256("purge" || 0x00 || body)``, named by the ref
  ``refs/purges/<atom id hex>``. ``contextfs verify`` tells a purged atom (empty,
  with a record) from a damaged one (empty, without).
* The record, the erasure (:meth:`Store.erase_object`) and the removal from the
  full-text index land in one transaction; then, for SQLite, the file is
  compacted (:meth:`SqliteStore.compact`) so no copy of the text survives in
  the database, its write-ahead log or its free pages.

What a purge cannot reach: text the caller also wrote into an entry's
``abstract``, ``overview``, ``source`` or tags (those are part of tree nodes,
so of every root), copies outside the store (backups, exports, the file
system's own remnants), and the purge record's ``reason``, which is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ..errors import (
    ContextFSError,
    CorruptObjectError,
    InvalidInputError,
    NothingToDoError,
    StoreError,
    UnknownRevisionError,
)
from ..history.commits import check_author
from ..model import canonical
from ..model.canonical import check_text
from ..model.ids import ObjectId, from_hex, object_digest, to_hex
from ..model.objects import ATOM, decode_atom
from ..search.base import SearchIndex
from ..search.vectors import VectorIndex
from ..store.base import ServerStore, Store

PURGE: Final = "purge"
#: Every purge record is named by ``refs/purges/<atom id hex>``.
PURGES: Final = "refs/purges/"
MAX_REASON_LENGTH: Final = 10_000
_INT64: Final = range(-(2**63), 2**63)


class PurgeError(ContextFSError):
    """An atom could not be purged; nothing was changed."""


class UnknownAtomError(PurgeError, UnknownRevisionError):
    """No object is stored under the id to purge."""


class NotAnAtomError(PurgeError, InvalidInputError):
    """The id to purge names an object that is not an atom."""


class AlreadyPurgedError(PurgeError, NothingToDoError):
    """The atom's content was already purged."""


class PurgeBlockedError(PurgeError, StoreError):
    """The atom's content is held somewhere a purge cannot erase, or is damaged."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PurgeRecord:
    """Who erased which atom's content, when (µs since the epoch, UTC) and why."""

    atom_id: bytes
    author: str
    reason: str
    when: int

    def __post_init__(self) -> None:
        if not isinstance(self.atom_id, bytes) or len(self.atom_id) != 32:
            raise InvalidInputError(f"atom id must be 32 bytes, got {self.atom_id!r}")
        check_author(self.author)
        if not isinstance(self.reason, str) or len(self.reason) > MAX_REASON_LENGTH:
            raise InvalidInputError(
                f"purge reason must be text of at most {MAX_REASON_LENGTH} characters,"
                f" got {self.reason!r}"
            )
        check_text(self.reason, "purge reason")
        if isinstance(self.when, bool) or not isinstance(self.when, int) or self.when not in _INT64:
            raise InvalidInputError(
                f"purge time must be an integer of microseconds, got {self.when!r}"
            )

    def encode(self) -> bytes:
        """Return the record's canonical bytes: ``[atom_id, author, reason, when]``."""
        return canonical.encode([self.atom_id, self.author, self.reason, self.when])

    @property
    def digest(self) -> bytes:
        """The raw 32-byte id of the record."""
        return object_digest(PURGE, self.encode())

    @property
    def id(self) -> ObjectId:
        """The record's full id."""
        return to_hex(self.digest)


def decode_purge_record(data: bytes) -> PurgeRecord:
    """Decode a stored purge record, checking every field.

    Raises:
        CorruptObjectError: the bytes are not a canonical purge record.
    """
    value: Any = canonical.decode(data, kind=PURGE)
    if not isinstance(value, list) or len(value) != 4:
        raise CorruptObjectError("purge record does not have four fields")
    atom_id, author, reason, when = value
    try:
        return PurgeRecord(atom_id=atom_id, author=author, reason=reason, when=when)
    except InvalidInputError as exc:
        raise CorruptObjectError(f"purge record is malformed: {exc}") from None


def purge_ref(atom_id: bytes) -> str:
    """Return the ref that names ``atom_id``'s purge record."""
    return PURGES + atom_id.hex()


def read_purge_record(store: Store, atom_id: bytes) -> PurgeRecord | None:
    """Return the purge record of ``atom_id``, or None if it was never purged.

    Raises:
        CorruptObjectError: the ref names something that is not a valid record
            of that atom (``contextfs verify`` names it too).
    """
    value = store.read_ref(purge_ref(atom_id))
    if value is None:
        return None
    return _load_record(store, purge_ref(atom_id), value, atom_id)


def purged_atoms(store: Store) -> dict[bytes, PurgeRecord]:
    """Return every purged atom's record, by atom id (read from ``refs/purges/*``).

    Raises:
        CorruptObjectError: a purge ref is malformed or names a bad record.
    """
    records: dict[bytes, PurgeRecord] = {}
    for name, value in store.list_refs(PURGES).items():
        try:
            atom_id = from_hex(name[len(PURGES) :])
        except InvalidInputError:
            raise CorruptObjectError(f"ref {name} does not name an atom id") from None
        records[atom_id] = _load_record(store, name, value, atom_id)
    return records


def _load_record(store: Store, name: str, value: str, atom_id: bytes) -> PurgeRecord:
    try:
        oid = from_hex(value)
    except InvalidInputError:
        raise CorruptObjectError(f"ref {name} holds {value!r}, not an object id") from None
    stored = store.get_object(oid)
    if stored is None or stored.kind != PURGE:
        what = "missing" if stored is None else f"a {stored.kind}"
        raise CorruptObjectError(f"ref {name} points at {value}, which is {what}")
    record = decode_purge_record(stored.data)
    if object_digest(PURGE, stored.data) != oid or record.atom_id != atom_id:
        raise CorruptObjectError(f"purge record {value} does not match ref {name}")
    return record


def purge_atom(
    store: Store,
    atom_id: bytes,
    *,
    author: str,
    reason: str,
    when: int,
    index: SearchIndex | None,
    vectors: VectorIndex | None = None,
    compact: bool = True,
) -> PurgeRecord:
    """Erase an atom's content from the store for good, recording who did it, when and why.

    In one transaction: writes the :class:`PurgeRecord` and ``refs/purges/<id>``,
    empties the atom object (its id and kind stay, so every tree and commit
    naming it still verifies) and removes its words from the full-text index.
    Then, with ``compact`` and a store on disk or a server, rewrites its storage so no
    copy of the text survives anywhere in it (see :func:`compact_store`; pass
    ``compact=False`` to purge several atoms and compact once at the end).

    Args:
        store: the store holding the atom; not inside an open transaction when
            ``compact`` is set.
        atom_id: the atom's full 32-byte id.
        author: who asked for the purge (non-empty, one line).
        reason: why; kept in the record, so it must not repeat the content.
        when: the time of the purge, in microseconds since the epoch (UTC).
        index: the full-text index beside the store
            (:func:`contextfs.backends.search_index_for`), or None if it has none.
        vectors: the vector index beside the store
            (:func:`contextfs.backends.vector_index_for`): every embedder's vector
            of the atom is deleted with its text (a vector leaks what it embeds).
        compact: compact a SQLite store after the purge commits.

    Returns:
        The record, as stored.

    Raises:
        InvalidInputError: ``atom_id``, ``author``, ``reason`` or ``when`` is malformed.
        PurgeError: ``compact`` was asked for inside an open transaction.
        UnknownAtomError: nothing is stored under ``atom_id``.
        NotAnAtomError: the object is not an atom.
        AlreadyPurgedError: the atom was purged before.
        PurgeBlockedError: the atom's bytes are damaged, or a ``context`` object
            holds a copy of its content.
        StoreError: the store failed (nothing changed), or compaction failed
            after the purge committed (run :func:`compact_store` again).
    """
    record = PurgeRecord(atom_id=atom_id, author=author, reason=reason, when=when)
    name, spelled = purge_ref(atom_id), atom_id.hex()
    if compact and isinstance(store, ServerStore) and store.in_transaction():
        # VACUUM cannot run until the caller's transaction ends.
        raise PurgeError(
            "cannot purge and compact inside a transaction;"
            " pass compact=False and call compact_store() after it commits"
        )
    with store.transaction():
        content = purgeable_text(store, atom_id)
        earlier = read_purge_record(store, atom_id)
        if earlier is not None:  # recorded (a purge received first), text arrived after
            record = earlier
        else:
            store.put_objects([(record.digest, PURGE, record.encode())])
            if not store.set_ref_if_equals(name, None, record.id):
                raise AlreadyPurgedError(f"atom {spelled} is already purged")
        store.erase_object(atom_id)
        if index is not None:
            index.forget(atom_id, content)
        if vectors is not None:
            vectors.forget(atom_id)
    if compact:
        compact_store(store)
    return record


def purgeable_text(store: Store, atom_id: bytes) -> str:
    """The text a purge of ``atom_id`` would erase, once every reason to refuse it is ruled out.

    Raises:
        UnknownAtomError: nothing is stored under ``atom_id``.
        NotAnAtomError: the object is not an atom.
        AlreadyPurgedError: the atom was purged before.
        PurgeBlockedError: its bytes are damaged, or a ``context`` object holds a copy.
    """
    spelled = atom_id.hex()
    stored = store.get_object(atom_id)
    if stored is None:
        raise UnknownAtomError(f"no atom {spelled} to purge")
    if stored.kind != ATOM:
        raise NotAnAtomError(f"{spelled} is a {stored.kind}, not an atom")
    if store.read_ref(purge_ref(atom_id)) is not None and not stored.data:
        raise AlreadyPurgedError(f"atom {spelled} is already purged")
    if not stored.data:
        raise PurgeBlockedError(f"atom {spelled} has no content left to purge (it is damaged)")
    try:
        _, content = decode_atom(stored.data)
    except CorruptObjectError as exc:
        raise PurgeBlockedError(f"atom {spelled} cannot be purged: {exc}") from None
    _refuse_copies(store, canonical.encode(content), spelled)
    return content


def _refuse_copies(store: Store, encoded: bytes, spelled: str) -> None:
    """Refuse a purge while a ``context`` object embeds the content (it cannot be erased).

    Contexts (the seed's ``ContextStore``) carry their atoms inline and are
    named by a hash over them, so erasing the text there would break their ids.
    """
    holders = [oid.hex() for oid, _, data in store.iter_objects("context") if encoded in data]
    if holders:
        raise PurgeBlockedError(
            f"atom {spelled} cannot be purged: its content is also held by"
            f" context object(s) {', '.join(holders)}"
        )


def compact_store(store: Store) -> None:
    """Make erased bytes unrecoverable from the store's files; a no-op for in-memory stores.

    For a :class:`SqliteStore` this is :meth:`SqliteStore.compact`: merge the
    full-text index, checkpoint and truncate the write-ahead log, ``VACUUM``;
    for a PostgreSQL store, ``VACUUM FULL`` of each of its tables.

    Raises:
        StoreError: inside a transaction, another connection held the log, or
            the database failed.
    """
    if isinstance(store, ServerStore):
        store.compact()
