"""Reading what the store holds: commits, memories, snapshots and the changes between them.

:class:`ObjectReader` answers every question about objects by id or by
snapshot tree; it never resolves a revision name (that is
:class:`~contextfs.services.refs.Refs`) and never writes. Commits are
immutable, so decoded ones are cached (bounded).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence

from ..errors import (
    AmbiguousRevisionError,
    CorruptObjectError,
    MissingObjectError,
    UnknownRevisionError,
)
from ..history.commits import COMMIT, Commit, decode_commit
from ..history.graph import walk
from ..history.merge import changed_fields
from ..history.tree import EMPTY_TREE_ID, item_key
from ..integrity.purge import purge_ref
from ..model.context import CompressedContext
from ..model.ids import (
    ID_HEX_LENGTH,
    MIN_PREFIX_LENGTH,
    ObjectId,
    from_hex,
    is_hex_prefix,
    short,
    to_hex,
)
from ..model.objects import (
    ATOM,
    MOLECULE,
    AtomEntry,
    MemoryAtom,
    MemoryMolecule,
    SnapshotEntry,
    decode_atom,
    decode_entry,
    decode_molecule,
)
from ..model.types import TypeSignature
from ..records import Change, CommitInfo, ConflictInfo, Memory
from .storage import Storage

#: How a purged atom shows when the caller asks to see it.
PURGED_TYPE = TypeSignature("Purged")
PURGED_TEXT = "[purged]"
#: Decoded commits kept per reader (oldest dropped first).
COMMIT_CACHE_SIZE = 16384

#: What an id prefix may name when the caller means a memory.
MEMORY_KINDS = (ATOM, MOLECULE)


class ObjectReader:
    """Commits, memories and snapshots by id; cached where objects are immutable."""

    def __init__(self, storage: Storage) -> None:
        self.store = storage.store
        self.trees = storage.trees
        self._commits: dict[bytes, Commit] = {}
        self._commits_lock = threading.Lock()

    # -- commits ---------------------------------------------------------------------

    def commit(self, oid: bytes) -> Commit:
        """Return the commit ``oid`` (raw id).

        Raises:
            MissingObjectError: no object has that id.
            CorruptObjectError: the object is not a commit.
        """
        with self._commits_lock:
            commit = self._commits.get(oid)
        if commit is not None:
            return commit
        stored = self.store.get_object(oid)
        if stored is None:
            raise MissingObjectError(f"commit {oid.hex()} is missing")
        if stored.kind != COMMIT:
            raise CorruptObjectError(f"{oid.hex()} is a {stored.kind}, not a commit")
        commit = decode_commit(stored.data)
        with self._commits_lock:
            if len(self._commits) >= COMMIT_CACHE_SIZE:
                self._commits.pop(next(iter(self._commits)))
            self._commits[oid] = commit
        return commit

    def tree_at(self, base: bytes) -> bytes:
        """The snapshot of a commit, or the empty tree when ``base`` is its id (unborn)."""
        return EMPTY_TREE_ID if base == EMPTY_TREE_ID else self.commit(base).tree

    def log(self, starts: Sequence[bytes], *, limit: int | None = None) -> Iterator[CommitInfo]:
        """Yield commits reachable from ``starts``, newest generation first."""
        for count, (oid, commit) in enumerate(walk(self.commit, starts)):
            if limit is not None and count >= limit:
                return
            yield CommitInfo(to_hex(oid), commit)

    def show(self, oid: bytes) -> tuple[CommitInfo, list[Change]]:
        """Return a commit and the changes it made against its first parent."""
        commit = self.commit(oid)
        base = self.commit(commit.parents[0]).tree if commit.parents else EMPTY_TREE_ID
        return CommitInfo(to_hex(oid), commit), self.changes(base, commit.tree)

    def compressed(self, oid: bytes) -> CompressedContext:
        """Return a commit's change as the seed's ``CompressedContext``.

        ``base_hash`` is the first parent's id (None for a root commit); the
        delta holds the added or changed atoms (with their entries), the added
        molecules, and the ids removed. Expanding it with
        ``ExpanderFunctor(repo)`` gives the commit's own snapshot.
        """
        info, changes = self.show(oid)
        commit = info.commit
        atoms = [c.new for c in changes if isinstance(c.new, MemoryAtom)]
        molecules = [c.new for c in changes if isinstance(c.new, MemoryMolecule)]
        removed: set[str] = {c.id for c in changes if c.status == "removed"}
        return CompressedContext(
            info.parents[0] if info.parents else None,
            atoms,
            molecules,
            removed,
            {"commit": info.id, "message": commit.message, "author": commit.author},
        )

    # -- memories --------------------------------------------------------------------

    def memories(self, entries: Iterable[SnapshotEntry]) -> list[Memory]:
        """Load the atoms and molecules ``entries`` name, in order, each with its entry."""
        entries = list(entries)
        atom_ids = [e.key for e in entries if isinstance(e, AtomEntry)]
        molecules = {e.key: self.molecule(e.key) for e in entries if not isinstance(e, AtomEntry)}
        bodies = self._atom_bodies(atom_ids)
        result: list[Memory] = []
        for entry in entries:
            if isinstance(entry, AtomEntry):
                type_sig, content = bodies[entry.key]
                result.append(MemoryAtom.from_entry(type_sig, content, entry))
            else:
                result.append(molecules[entry.key])
        return result

    def items(self, items: Iterable[bytes]) -> list[Memory]:
        """Load the memories that encoded snapshot items name, in order."""
        return self.memories(decode_entry(item) for item in items)

    def molecule(self, oid: bytes) -> MemoryMolecule:
        """Return molecule ``oid`` with its atoms loaded."""
        stored = self.store.get_object(oid)
        if stored is None or stored.kind != MOLECULE:
            raise MissingObjectError(f"molecule {oid.hex()} is missing")
        molecule = decode_molecule(stored.data)
        bodies = self._atom_bodies(list(molecule.atom_ids))
        atoms = tuple(MemoryAtom(bodies[a][1], bodies[a][0]) for a in molecule.atom_ids)
        return MemoryMolecule(
            atoms, dict(molecule.relations), molecule.molecule_type, molecule.metadata
        )

    def molecules_in(self, tree: bytes) -> list[MemoryMolecule]:
        """Return the molecules of snapshot ``tree``, reading only the paths that hold one."""
        return [self.molecule(item_key(item)) for item in self.trees.molecule_items(tree)]

    def is_purged(self, atom_id: bytes | str) -> bool:
        """Return True if the atom's content was purged (and the purge recorded)."""
        oid = atom_id if isinstance(atom_id, bytes) else from_hex(atom_id)
        return self.store.read_ref(purge_ref(oid)) is not None

    def is_placeholder(self, atom: MemoryAtom) -> bool:
        """Whether ``atom`` is the stand-in shown for a purged atom's content."""
        return (
            atom.content == PURGED_TEXT
            and atom.type_sig == PURGED_TYPE
            and self.is_purged(atom.digest)
        )

    def _atom_bodies(self, atom_ids: list[bytes]) -> dict[bytes, tuple[TypeSignature, str]]:
        found = self.store.get_objects(atom_ids)
        bodies = {}
        for oid in atom_ids:
            stored = found.get(oid)
            if stored is None:
                raise MissingObjectError(f"atom {oid.hex()} is missing")
            if not stored.data and self.is_purged(oid):
                bodies[oid] = (PURGED_TYPE, PURGED_TEXT)
            else:
                bodies[oid] = decode_atom(stored.data)
        return bodies

    # -- ids -------------------------------------------------------------------------

    def unique(self, prefix: str, kinds: tuple[str, ...], what: str) -> bytes:
        """Return the one stored id of ``kinds`` that starts with hex ``prefix``.

        Raises:
            UnknownRevisionError: nothing matches (``what`` names the thing sought).
            AmbiguousRevisionError: several objects match.
        """
        if len(prefix) < MIN_PREFIX_LENGTH or not is_hex_prefix(prefix):
            raise UnknownRevisionError(f"unknown {what}")
        matches = self.store.find_ids(prefix, 2, kinds)
        if not matches:
            raise UnknownRevisionError(f"unknown {what}")
        if len(matches) > 1:
            names = ", ".join(short(m) for m in matches) + ", ..."
            raise AmbiguousRevisionError(f"{what} is ambiguous: it matches {names}")
        return matches[0]

    def memory_key(self, ref: str, kinds: tuple[str, ...] = MEMORY_KINDS) -> bytes:
        """Return the id a full 64-hex id names as is, or a unique stored prefix resolves to.

        A full id is taken without a lookup, so callers can ask about objects
        the store never held (a non-membership proof, a stage miss).
        """
        prefix = ref.lower()
        if len(prefix) == ID_HEX_LENGTH and is_hex_prefix(prefix):
            return bytes.fromhex(prefix)
        what = "atom" if kinds == (ATOM,) else "memory"
        return self.unique(prefix, kinds, f"{what} {ref!r}")

    def memory_id(self, ref: str) -> ObjectId:
        """Return the full id of the stored atom or molecule whose id starts with ``ref``.

        Raises:
            UnknownRevisionError: nothing matches.
            AmbiguousRevisionError: several memories match.
        """
        return to_hex(self.memory_key(ref))

    # -- snapshots -------------------------------------------------------------------

    def snapshot(self, tree: bytes) -> list[Memory]:
        """Return every memory of snapshot ``tree``, in id order."""
        return self.items(self.trees.items(tree))

    def count(self, tree: bytes) -> int:
        """Return how many entries snapshot ``tree`` holds."""
        return self.trees.count(tree)

    def get(self, ref: str, tree: bytes, where: str) -> Memory:
        """Return the stored memory whose id starts with ``ref``, as ``tree`` holds it.

        Raises:
            UnknownRevisionError: no stored memory matches, or ``tree`` (named
                ``where`` in the message) does not hold it.
        """
        key = self.unique(ref.lower(), MEMORY_KINDS, f"memory {ref!r}")
        found = self.trees.get(tree, key)
        if found is None:
            raise UnknownRevisionError(f"memory {ref!r} is not in {where!r}")
        return self.items([found])[0]

    def changes(self, old_tree: bytes, new_tree: bytes) -> list[Change]:
        """Return the entries that differ from snapshot ``old_tree`` to ``new_tree``."""
        raw = list(self.trees.diff(old_tree, new_tree))
        items = [i for _, a, b in raw for i in (a, b) if i is not None]
        by_item = dict(zip(items, self.items(items), strict=True))
        changes = []
        for key, a, b in raw:
            old_memory = by_item[a] if a is not None else None
            new_memory = by_item[b] if b is not None else None
            if a is None:
                changes.append(Change("added", to_hex(key), None, new_memory))
            elif b is None:
                changes.append(Change("removed", to_hex(key), old_memory, None))
            else:
                changes.append(
                    Change("changed", to_hex(key), old_memory, new_memory, changed_fields(a, b))
                )
        return changes

    def conflict(
        self, key: bytes, base: bytes | None, ours: bytes | None, theirs: bytes | None
    ) -> ConflictInfo:
        """Load the three sides of a conflict on entry ``key`` (encoded items, or None)."""
        sides = [decode_entry(item) if item is not None else None for item in (base, ours, theirs)]
        loaded = iter(self.memories(s for s in sides if s is not None))
        memories = [next(loaded) if s is not None else None for s in sides]
        return ConflictInfo(to_hex(key), *memories)


__all__ = ["MEMORY_KINDS", "PURGED_TEXT", "PURGED_TYPE", "ObjectReader"]
