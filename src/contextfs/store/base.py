"""The storage ports: objects by id, refs by compare-and-swap, transactions.

Everything above this layer (history, repository, CLI) talks to a :class:`Store`.
The port is deliberately narrow so a new backend is one module that passes the
shared contract suite in :mod:`contextfs.testing.store_contract`. A store class
names its entry in :mod:`contextfs.backends` in a ``backend`` class attribute.

Invariants every backend keeps:

* Objects are immutable and keyed by their 32-byte id. ``put_objects`` of an id
  already present is a no-op (content addressing makes the bytes equal); the
  store does not re-hash on put -- :mod:`contextfs.model` computes ids and
  ``verify`` re-checks them.
* The one exception to immutability is :meth:`Store.erase_object`, which empties
  an object's bytes (kind and id stay) so :mod:`contextfs.integrity.purge` can
  forget an atom's content while every id that names it still verifies.
* Refs map a name to a string: a 64-hex object id, or ``"ref: <name>"`` for a
  symbolic ref such as ``HEAD``. They move only through
  :meth:`RefStore.set_ref_if_equals`, so two writers never lose an update.
* Inside ``with store.transaction():`` every object put and ref move becomes
  visible together or not at all; transactions nest (inner ones join the
  outermost). A write is durable when the outermost transaction exits.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

#: The kinds of object a store holds; the tag is part of every object's id.
#: ``purge`` records who erased an atom's content, when and why.
OBJECT_KINDS = frozenset({"atom", "molecule", "tree", "commit", "context", "purge"})


class StoredObject(NamedTuple):
    """One object as the store keeps it: its kind tag and canonical bytes."""

    kind: str
    data: bytes


@runtime_checkable
class ObjectStore(Protocol):
    """Content-addressed, immutable objects keyed by 32-byte SHA-256 ids."""

    def get_object(self, oid: bytes) -> StoredObject | None:
        """Return the object stored under ``oid``, or None if absent."""
        ...

    def get_objects(self, oids: Sequence[bytes]) -> dict[bytes, StoredObject]:
        """Return the present objects among ``oids`` (absent ids are left out)."""
        ...

    def has_objects(self, oids: Sequence[bytes]) -> set[bytes]:
        """Return the subset of ``oids`` that is stored."""
        ...

    def put_objects(self, objects: Iterable[tuple[bytes, str, bytes]]) -> None:
        """Store ``(id, kind, data)`` triples; ids already present are skipped."""
        ...

    def find_ids(
        self, hex_prefix: str, limit: int, kinds: Collection[str] | None = None
    ) -> list[bytes]:
        """Return up to ``limit`` ids whose hex spelling starts with ``hex_prefix``.

        ``hex_prefix`` is lowercase hex of any length from 0 to 64. With
        ``kinds``, only objects of those kinds count (so a commit prefix is not
        crowded out by atoms). The result is sorted.
        """
        ...

    def iter_objects(self, kind: str | None = None) -> Iterator[tuple[bytes, str, bytes]]:
        """Yield every stored ``(id, kind, data)``, optionally of one kind, by id."""
        ...

    def count_objects(self) -> int:
        """Return how many objects are stored."""
        ...


@runtime_checkable
class RefStore(Protocol):
    """Named pointers that move by compare-and-swap."""

    def read_ref(self, name: str) -> str | None:
        """Return the ref's value, or None if it does not exist."""
        ...

    def set_ref_if_equals(self, name: str, old: str | None, new: str | None) -> bool:
        """Move ``name`` from ``old`` to ``new`` atomically.

        Args:
            name: the ref to move.
            old: the value the caller last read; None means "must not exist".
            new: the value to store; None deletes the ref.

        Returns:
            True if the ref held ``old`` and now holds ``new``; False (and no
            change) if another writer got there first.
        """
        ...

    def list_refs(self, prefix: str = "") -> dict[str, str]:
        """Return every ref whose name starts with ``prefix``, sorted by name."""
        ...


@runtime_checkable
class Store(ObjectStore, RefStore, Protocol):
    """A complete backend: objects, refs and atomic batches of both."""

    def transaction(self) -> AbstractContextManager[None]:
        """Group writes so they land together, durably, or not at all."""
        ...

    def in_transaction(self) -> bool:
        """Whether a transaction is open on this store object (what it wrote may roll back)."""
        ...

    def erase_object(self, oid: bytes) -> bool:
        """Replace the data of object ``oid`` with empty bytes, keeping its id and kind.

        The only write that changes a stored object: it serves the right to be
        forgotten (:func:`contextfs.integrity.purge.purge_atom`), which records
        the erasure first. Backends overwrite the bytes rather than leave them
        in freed space. Joins the open transaction, like every write.

        Returns:
            True if the object was stored (and is now empty), False if absent.
        """
        ...

    def close(self) -> None:
        """Release the backend's resources; safe to call twice."""
        ...


@dataclass(frozen=True, slots=True)
class ReflogEntry:
    """One move of a ref, as the reflog keeps it (git's reflog line).

    Attributes:
        ref: The ref that moved (``HEAD``, ``refs/heads/...``, ``refs/remotes/...``).
        old: The commit id it held, or None (created).
        new: The commit id it holds now, or None (deleted).
        who: Who moved it.
        at: When, in microseconds since the epoch.
        why: What moved it (``commit: ...``, ``reset: moving to ...``).
    """

    ref: str
    old: str | None
    new: str | None
    who: str
    at: int
    why: str


@runtime_checkable
class ReflogStore(Protocol):
    """What a store adds to remember every move of HEAD and the branches.

    Entries are appended in the same transaction as the move they record, so
    a reflog never disagrees with the refs; they are read newest first.
    """

    def append_reflog(self, entries: Sequence[ReflogEntry]) -> None:
        """Append ``entries`` in order, joining the open transaction."""
        ...

    def read_reflog(self, ref: str, limit: int | None = None) -> list[ReflogEntry]:
        """Return ``ref``'s entries, newest first, at most ``limit``."""
        ...

    def reflog_since(self, at: int) -> list[ReflogEntry]:
        """Return every ref's entries made at ``at`` (µs) or later, oldest first."""
        ...

    def expire_reflog(self, before: int) -> int:
        """Delete the entries made before ``before`` (µs); return how many (in the transaction)."""
        ...


@runtime_checkable
class CollectableStore(Protocol):
    """What a store adds so garbage collection can list and delete objects.

    :mod:`contextfs.integrity.gc` decides what is unreachable; the store only
    lists sizes without reading the bytes and deletes rows it is given.
    """

    def object_sizes(self) -> Iterator[tuple[bytes, str, int]]:
        """Yield every stored ``(id, kind, size in bytes)``, by id, without reading the data."""
        ...

    def delete_objects(self, oids: Sequence[bytes]) -> int:
        """Delete the objects ``oids`` (absent ones skipped) in the transaction; return how many."""
        ...


@dataclass(frozen=True, slots=True)
class WorkspaceInfo:
    """A checkout's workspace in a shared store: its private refs, and where it was made.

    Attributes:
        name: The workspace's name (its folder's ``config.json`` names it).
        folder: The checkout folder it was made for, or None if not recorded
            (workspaces made before ContextFS recorded them).
        machine: The machine that folder is on (its host name), or None.
        refs: Its private refs (``HEAD``, ``STAGE``, ...), by short name.
    """

    name: str
    folder: str | None
    machine: str | None
    refs: dict[str, str]


@runtime_checkable
class WorkspaceStore(Protocol):
    """What a store shared by many checkouts adds: the workspaces it keeps, and dropping one."""

    workspace: str | None

    def register_workspace(self, folder: str, machine: str) -> None:
        """Record where this handle's workspace is checked out (a workspace handle only)."""
        ...

    def workspaces(self) -> list[WorkspaceInfo]:
        """Every workspace the store holds refs or a record for, by name."""
        ...

    def drop_workspace(self, name: str) -> bool:
        """Delete a workspace's private refs and record; False if it had none."""
        ...


@runtime_checkable
class PackedStore(Protocol):
    """What a store adds so ``contextfs gc`` can repack it (:mod:`contextfs.store.codec`).

    :mod:`contextfs.integrity.repack` decides which tree nodes become deltas;
    the store encodes them and trains its compression dictionaries.
    """

    def set_delta_bases(self, plan: Sequence[tuple[bytes, bytes | None]]) -> int:
        """Keep each ``(object, base)`` as a delta against base (None: whole); return changes.

        The plan lists bases before the deltas built on them; a delta no
        smaller than the whole object is not kept.
        """
        ...

    def train_dictionary(self, kind: str) -> bool:
        """Train a compression dictionary on the store's ``kind`` objects; keep it if it pays."""
        ...


@runtime_checkable
class DerivedStore(Protocol):
    """What a store adds to keep derived data: named blobs any process can rebuild.

    Derived data (a snapshot's columns, :mod:`contextfs.history.columns`) only
    saves work: it is not history, clones and fetches leave it behind,
    ``verify`` does not check it, and its readers check what they read. A
    write replaces the blob whole and joins the open transaction.
    """

    def read_derived(self, name: str) -> bytes | None:
        """Return the blob kept under ``name``, or None."""
        ...

    def write_derived(self, name: str, data: bytes | None) -> None:
        """Keep ``data`` under ``name`` (None forgets it)."""
        ...


@runtime_checkable
class ServerStore(Protocol):
    """What a store on disk or on a server adds: consistent reads and compaction.

    :mod:`contextfs.integrity` uses it to verify one committed state while
    writers carry on, and to make purged bytes unrecoverable.
    """

    def read_snapshot(self) -> AbstractContextManager[None]:
        """Make every read in the body see one committed state, without blocking writers."""
        ...

    def in_transaction(self) -> bool:
        """Whether a transaction is open on this store object."""
        ...

    def compact(self) -> None:
        """Rewrite storage so no erased bytes survive; refused inside a transaction."""
        ...

    def ready_to_compact(self) -> bool:
        """Whether :meth:`compact` could run now (no other connection holds the store's log)."""
        ...
