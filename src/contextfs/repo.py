"""The Repository: the one facade that the CLI, servers and users call.

A repository is a :class:`~contextfs.store.base.Store` plus these refs:

* ``HEAD``: ``ref: refs/heads/<branch>``, or a commit id when detached;
* ``refs/heads/*`` and ``refs/tags/*``: commit ids;
* ``STAGE``: the snapshot tree being prepared for the next commit (absent when
  it equals HEAD's snapshot);
* ``MERGE_HEAD`` and ``MERGE_STATE``: the commit being merged in and a tree of
  its unresolved conflicts, while a merge is stopped on conflicts.

Every mutation reads and writes inside one store transaction and moves refs
by compare-and-swap, so a crash leaves either the old state or the new one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from .discovery import DATABASE, REPO_DIR, find_repository
from .errors import (
    AmbiguousRevisionError,
    ConcurrentUpdateError,
    CorruptObjectError,
    InvalidInputError,
    MergeConflictError,
    MissingObjectError,
    NothingToDoError,
    RepositoryExistsError,
    StoreError,
    UncommittedChangesError,
    UnknownRevisionError,
)
from .expand.context import CompressedContext, ExpandedContext
from .expand.expander import compaction_key
from .expand.lattice import RelevanceLattice
from .expand.query import ContextQuery
from .expand.ranking import match_scores, phrase_text
from .expand.receipt import Receipt, ReceiptVerification, build_receipt, verify_receipt
from .expand.render import Format, check_format, fit
from .expand.stream import ExpansionChunk, iter_chunks
from .expand.tokens import Tokenizer, default_tokenizer
from .history import refs as refnames
from .history.commits import COMMIT, Commit, check_author, check_message, decode_commit
from .history.graph import is_ancestor, merge_bases, walk
from .history.merge import changed_fields, decode_conflict, encode_conflict, merge_trees
from .history.revisions import parse_revision
from .history.tree import (
    EMPTY_TREE_DATA,
    EMPTY_TREE_ID,
    TREE,
    Scorer,
    SnapshotTrees,
    by_relevance,
    item_key,
    recency_scorer,
)
from .integrity.fsck import VerifyReport, verify_store
from .integrity.proofs import Proof
from .integrity.proofs import prove as prove_key
from .integrity.purge import PurgeRecord, purge_atom, purge_ref
from .model import canonical
from .model.canonical import Metadata
from .model.ids import (
    ID_HEX_LENGTH,
    MIN_PREFIX_LENGTH,
    ObjectId,
    from_hex,
    is_hex_prefix,
    short,
    to_hex,
)
from .model.objects import (
    ATOM,
    MOLECULE,
    AtomEntry,
    MemoryAtom,
    MemoryMolecule,
    MoleculeEntry,
    SnapshotEntry,
    check_relevance,
    check_tags,
    decode_atom,
    decode_entry,
    decode_molecule,
    is_molecule_item,
)
from .model.timeutil import from_micros, now_micros
from .model.types import TypeSignature
from .records import (
    Change,
    CommitInfo,
    ConflictInfo,
    Memory,
    MergeResult,
    PromptContext,
    SearchHit,
    Status,
)
from .search import SearchIndex, search_index_for
from .search.query import Mode, parse_query
from .store.base import Store
from .store.memory import MemoryStore
from .store.sqlite import SqliteStore

DEFAULT_AUTHOR = "anonymous"
#: How a purged atom shows when the caller asks to see it.
PURGED_TYPE = TypeSignature("Purged")
PURGED_TEXT = "[purged]"
#: ``context`` gives up packing after this many atoms in a row did not fit.
DEFAULT_PATIENCE = 64
#: Atoms read from the store at a time while streaming a ranked snapshot.
RANKED_BATCH = 64
#: The molecule type and relation that store a snapshot's relevance lattice.
LATTICE_TYPE = TypeSignature("RelevanceLattice")
LATTICE_RELATION = "more_relevant"
#: Decoded commits kept per repository object (oldest dropped first).
COMMIT_CACHE_SIZE = 16384

Side = Literal["ours", "theirs"]
ProgressCallback = Callable[[int], None]


_UNSET: object = object()
_ENTRY_FIELDS = ("relevance", "timestamp", "source", "tags", "abstract", "overview")


class Repository:
    """Version control for an agent's memory: stage, commit, branch, merge, expand."""

    def __init__(self, store: Store, *, path: Path | None = None) -> None:
        self.store = store
        self.path = path
        self.trees = SnapshotTrees(store)
        self._commits: dict[bytes, Commit] = {}
        self._commits_lock = threading.Lock()

    # -- opening ------------------------------------------------------------

    @classmethod
    def init(
        cls, path: str | os.PathLike[str] = ".", *, branch: str = refnames.DEFAULT_BRANCH
    ) -> Repository:
        """Create a repository in ``path/.contextfs`` and return it open.

        Raises:
            RepositoryExistsError: one is already there.
        """
        refnames.branch_ref(branch)  # refuse a bad name before touching the disk
        folder = Path(path) / REPO_DIR
        database = folder / DATABASE
        if database.exists():
            raise RepositoryExistsError(f"a ContextFS repository already exists in {str(folder)!r}")
        # Build the store under a temporary name and rename it into place, so a
        # crash never leaves a half-initialised repository that blocks `init`.
        scratch = folder / f".{DATABASE}.{os.getpid()}.init"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with cls(SqliteStore.open(scratch, create=True)) as fresh:
                fresh._initialise(branch)
            os.replace(scratch, database)
        except OSError as exc:
            raise StoreError(
                f"cannot create a repository in {str(folder)!r}: {exc.strerror}"
            ) from None
        finally:
            for leftover in (scratch, Path(f"{scratch}-wal"), Path(f"{scratch}-shm")):
                with contextlib.suppress(OSError):
                    leftover.unlink(missing_ok=True)
        return cls(SqliteStore.open(database), path=folder)

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None) -> Repository:
        """Open the repository at or above ``path`` (``CONTEXTFS_DIR`` overrides)."""
        folder = find_repository(path)
        return cls(SqliteStore.open(folder / DATABASE), path=folder)

    @classmethod
    def memory(cls, *, branch: str = refnames.DEFAULT_BRANCH) -> Repository:
        """Return a new repository held in memory only (tests, scratch work)."""
        repo = cls(MemoryStore())
        repo._initialise(branch)
        return repo

    def _initialise(self, branch: str) -> None:
        target = refnames.branch_ref(branch)
        with self.transaction():
            self.store.put_objects([(EMPTY_TREE_ID, TREE, EMPTY_TREE_DATA)])
            if not self.store.set_ref_if_equals(refnames.HEAD, None, refnames.symbolic(target)):
                raise RepositoryExistsError("the store already holds a repository")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group repository calls so they land together, durably, or not at all.

        Every mutating method runs in one already; nest them in an outer one
        to make several calls atomic (``with repo.transaction(): repo.add_atoms(...);
        repo.commit(...)``). Tree nodes written along the way are discarded if
        the block fails, so nothing half-built reaches the store.
        """
        with self.store.transaction():
            try:
                yield
                self.trees.flush()
            except BaseException:
                self.trees.discard()
                raise

    def close(self) -> None:
        """Close the underlying store; safe to call twice."""
        self.store.close()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reading objects ----------------------------------------------------

    def load_commit(self, oid: bytes) -> Commit:
        """Return the commit ``oid`` (raw id); commits are immutable, so they are cached."""
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

    def _load_memories(self, entries: Iterable[SnapshotEntry]) -> list[Memory]:
        entries = list(entries)
        atom_ids = [e.key for e in entries if isinstance(e, AtomEntry)]
        molecules = {
            e.key: self._load_molecule(e.key) for e in entries if not isinstance(e, AtomEntry)
        }
        bodies = self._load_atom_bodies(atom_ids)
        result: list[Memory] = []
        for entry in entries:
            if isinstance(entry, AtomEntry):
                type_sig, content = bodies[entry.key]
                result.append(MemoryAtom.from_entry(type_sig, content, entry))
            else:
                result.append(molecules[entry.key])
        return result

    def _load_atom_bodies(self, atom_ids: list[bytes]) -> dict[bytes, tuple[TypeSignature, str]]:
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

    def is_purged(self, atom_id: bytes | str) -> bool:
        """Return True if the atom's content was purged (and the purge recorded)."""
        oid = atom_id if isinstance(atom_id, bytes) else from_hex(atom_id)
        return self.store.read_ref(purge_ref(oid)) is not None

    def _load_molecule(self, oid: bytes) -> MemoryMolecule:
        stored = self.store.get_object(oid)
        if stored is None or stored.kind != MOLECULE:
            raise MissingObjectError(f"molecule {oid.hex()} is missing")
        molecule = decode_molecule(stored.data)
        bodies = self._load_atom_bodies(list(molecule.atom_ids))
        atoms = tuple(MemoryAtom(bodies[a][1], bodies[a][0]) for a in molecule.atom_ids)
        return MemoryMolecule(
            atoms, dict(molecule.relations), molecule.molecule_type, molecule.metadata
        )

    # -- refs and revisions ---------------------------------------------------

    @property
    def current_branch(self) -> str | None:
        """The checked-out branch's short name, or None when HEAD is detached."""
        target = refnames.symbolic_target(self.store.read_ref(refnames.HEAD))
        return (
            target[len(refnames.HEADS) :] if target and target.startswith(refnames.HEADS) else None
        )

    def _head_ref(self) -> str:
        """Return the ref a commit moves: the current branch's, or HEAD when detached."""
        value = self.store.read_ref(refnames.HEAD)
        if value is None:
            raise CorruptObjectError("HEAD is missing")
        return refnames.symbolic_target(value) or refnames.HEAD

    def _head(self) -> bytes | None:
        value = self.store.read_ref(self._head_ref())
        return from_hex(value) if value is not None else None

    def head(self) -> ObjectId | None:
        """The commit HEAD points at, or None before the first commit."""
        oid = self._head()
        return to_hex(oid) if oid is not None else None

    def resolve(self, revision: str) -> ObjectId:
        """Return the full id of the commit ``revision`` names.

        Accepts ``HEAD``, branch and tag names, ``refs/...`` names, any unique
        id prefix of at least four hex digits, and ``~n`` / ``^n`` suffixes.

        Raises:
            UnknownRevisionError: nothing matches.
            AmbiguousRevisionError: an id prefix matches several commits.
        """
        return to_hex(self._resolve(revision))

    def _resolve(self, revision: str) -> bytes:
        base, steps = parse_revision(revision)
        oid = self._resolve_base(base, revision)
        for op, number in steps:
            commit = self.load_commit(oid)
            if op == "~":
                for _ in range(number):
                    if not commit.parents:
                        raise UnknownRevisionError(f"revision {revision!r} goes past a root commit")
                    oid = commit.parents[0]
                    commit = self.load_commit(oid)
            elif number:
                if number > len(commit.parents):
                    raise UnknownRevisionError(
                        f"revision {revision!r}: {short(oid)} has {len(commit.parents)} parent(s)"
                    )
                oid = commit.parents[number - 1]
        return oid

    def _resolve_base(self, name: str, revision: str) -> bytes:
        if name == refnames.HEAD:
            oid = self._head()
            if oid is None:
                raise UnknownRevisionError("HEAD has no commits yet")
            return oid
        # git's order: the name as given, then tags, then branches.
        for ref in (
            (name, refnames.TAGS + name, refnames.HEADS + name)
            if not name.startswith("refs/")
            else (name,)
        ):
            value = self.store.read_ref(ref) if ref.startswith("refs/") else None
            if value is not None:
                return from_hex(value)
        return self._resolve_prefix(name.lower(), (COMMIT,), f"revision {revision!r}")

    def _resolve_prefix(self, prefix: str, kinds: tuple[str, ...], what: str) -> bytes:
        if len(prefix) < MIN_PREFIX_LENGTH or not is_hex_prefix(prefix):
            raise UnknownRevisionError(f"unknown {what}")
        matches = self.store.find_ids(prefix, 2, kinds)
        if not matches:
            raise UnknownRevisionError(f"unknown {what}")
        if len(matches) > 1:
            names = ", ".join(short(m) for m in matches) + ", ..."
            raise AmbiguousRevisionError(f"{what} is ambiguous: it matches {names}")
        return matches[0]

    def branches(self) -> dict[str, ObjectId]:
        """Return every branch's name and commit."""
        return {
            name[len(refnames.HEADS) :]: ObjectId(value)
            for name, value in self.store.list_refs(refnames.HEADS).items()
        }

    def tags(self) -> dict[str, ObjectId]:
        """Return every tag's name and commit."""
        return {
            name[len(refnames.TAGS) :]: ObjectId(value)
            for name, value in self.store.list_refs(refnames.TAGS).items()
        }

    def create_branch(
        self, name: str, start: str = refnames.HEAD, *, force: bool = False
    ) -> ObjectId:
        """Create branch ``name`` at ``start``; ``force`` moves an existing one."""
        ref = refnames.branch_ref(name)
        target = self.resolve(start)
        with self.transaction():
            old = self.store.read_ref(ref)
            if old is not None and not force:
                raise InvalidInputError(f"branch {name!r} already exists")
            if force and old is not None and self.current_branch == name:
                raise InvalidInputError(f"cannot force-move the checked-out branch {name!r}")
            self._move_ref(ref, old, target)
        return target

    def delete_branch(self, name: str, *, force: bool = False) -> ObjectId:
        """Delete branch ``name``; unless ``force``, only if merged into HEAD."""
        ref = refnames.branch_ref(name)
        with self.transaction():
            value = self.store.read_ref(ref)
            if value is None:
                raise UnknownRevisionError(f"no branch named {name!r}")
            if self.current_branch == name:
                raise InvalidInputError(f"cannot delete the checked-out branch {name!r}")
            head = self._head()
            if not force and (
                head is None or not is_ancestor(self.load_commit, from_hex(value), head)
            ):
                raise UncommittedChangesError(
                    f"branch {name!r} is not merged into HEAD; use force to delete it"
                )
            self._move_ref(ref, value, None)
        return ObjectId(value)

    def create_tag(self, name: str, revision: str = refnames.HEAD) -> ObjectId:
        """Tag the commit ``revision`` as ``name`` (tags never move)."""
        ref = refnames.tag_ref(name)
        target = self.resolve(revision)
        if not self.store.set_ref_if_equals(ref, None, target):
            raise InvalidInputError(f"tag {name!r} already exists")
        return target

    def delete_tag(self, name: str) -> ObjectId:
        """Delete tag ``name``."""
        ref = refnames.tag_ref(name)
        value = self.store.read_ref(ref)
        if value is None or not self.store.set_ref_if_equals(ref, value, None):
            raise UnknownRevisionError(f"no tag named {name!r}")
        return ObjectId(value)

    def update_ref(self, name: str, new: str | None, expected_old: str | None) -> None:
        """Move ref ``name`` from ``expected_old`` to ``new`` (both full ids or None).

        Raises:
            ConcurrentUpdateError: the ref did not hold ``expected_old``.
        """
        if not (
            name.startswith((refnames.HEADS, refnames.TAGS))
            and refnames.check_short_name(name.split("/", 2)[2])
        ):
            raise InvalidInputError(f"not a branch or tag ref: {name!r}")
        for value in (new, expected_old):
            if value is not None:
                from_hex(value)
        self._move_ref(name, expected_old, new)

    def _move_ref(self, name: str, old: str | None, new: str | None) -> None:
        if not self.store.set_ref_if_equals(name, old, new):
            expected = short(old) if old else "nothing"
            raise ConcurrentUpdateError(
                f"{name} was updated by someone else (expected {expected}); re-read and try again"
            )

    # -- the stage ----------------------------------------------------------

    def _head_tree(self) -> bytes:
        head = self._head()
        return self.load_commit(head).tree if head is not None else EMPTY_TREE_ID

    def _stage_tree(self) -> tuple[bytes, str | None]:
        """Return the stage's tree and the STAGE ref's raw value (None = same as HEAD)."""
        value = self.store.read_ref(refnames.STAGE)
        return (from_hex(value) if value is not None else self._head_tree()), value

    def _write_stage(
        self, changes: Mapping[bytes, bytes | None], objects: list[tuple[bytes, str, bytes]]
    ) -> None:
        """Apply ``changes`` to the stage; call inside :meth:`transaction`."""
        tree, old_value = self._stage_tree()
        new_tree = self.trees.update(tree, changes)
        self.store.put_objects(objects)
        atoms = [oid for oid, kind, _ in objects if kind == ATOM]
        if atoms:
            self.search_index.defer(atoms)
        self._set_stage(old_value, new_tree)

    def _set_stage(self, old_value: str | None, tree: bytes) -> None:
        new_value = (
            None
            if tree == self._head_tree() and self.store.read_ref(refnames.MERGE_HEAD) is None
            else to_hex(tree)
        )
        if new_value != old_value:
            self._move_ref(refnames.STAGE, old_value, new_value)

    def add(
        self,
        memory: str | MemoryAtom,
        type_sig: str | TypeSignature = "String",
        *,
        relevance: float = 1.0,
        source: str = "",
        tags: Iterable[str] = (),
        timestamp: int | None = None,
        abstract: str | None = None,
        overview: str | None = None,
    ) -> ObjectId:
        """Stage one memory: text plus its type and entry fields, or a MemoryAtom.

        Adding an atom that is already staged replaces its entry (same type and
        content is the same atom).

        Returns:
            The atom's full id.
        """
        if isinstance(memory, MemoryAtom):
            atom = memory
        else:
            check_relevance(relevance)
            sig = type_sig if isinstance(type_sig, TypeSignature) else TypeSignature.parse(type_sig)
            atom = MemoryAtom(
                memory,
                sig,
                from_micros(timestamp if timestamp is not None else now_micros()),
                source,
                relevance,
                tags=tuple(tags),
                abstract=abstract,
                overview=overview,
            )
        return self.add_atoms([atom])[0]

    def add_atoms(
        self, atoms: Iterable[MemoryAtom], *, progress: ProgressCallback | None = None
    ) -> list[ObjectId]:
        """Stage many atoms in one step (one tree update, one transaction)."""
        return self.stage(add=atoms, progress=progress)[0]

    def stage(
        self,
        *,
        add: Iterable[MemoryAtom] = (),
        remove: Iterable[str] = (),
        progress: ProgressCallback | None = None,
    ) -> tuple[list[ObjectId], list[ObjectId]]:
        """Add and remove memories in one stage update, all or nothing.

        Args:
            add: atoms to stage (an atom already staged gets the new entry).
            remove: id prefixes of staged memories to drop.
            progress: called with the count of atoms prepared, every 1,000.

        Returns:
            The added and the removed ids.

        Raises:
            UnknownRevisionError: a prefix in ``remove`` matches nothing staged.
        """
        changes: dict[bytes, bytes | None] = {}
        objects: list[tuple[bytes, str, bytes]] = []
        added: list[ObjectId] = []
        for count, atom in enumerate(add, 1):
            check_relevance(atom.relevance_score)
            digest = atom.digest
            objects.append((digest, ATOM, atom.body))
            changes[digest] = atom.entry.encode()
            added.append(to_hex(digest))
            if progress is not None and count % 1000 == 0:
                progress(count)
        refs = list(remove)
        with self.transaction():
            removed = [self._staged_key(ref)[0] for ref in refs]
            changes.update(dict.fromkeys(removed))
            self._write_stage(changes, objects)
        return added, [to_hex(key) for key in removed]

    def add_molecule(self, molecule: MemoryMolecule) -> ObjectId:
        """Stage a molecule and every atom in it."""
        objects: list[tuple[bytes, str, bytes]] = [(molecule.digest, MOLECULE, molecule.encode())]
        changes: dict[bytes, bytes | None] = {
            molecule.digest: MoleculeEntry(molecule.digest).encode()
        }
        for atom in molecule.atoms:
            check_relevance(atom.relevance_score)
            objects.append((atom.digest, ATOM, atom.body))
            changes[atom.digest] = atom.entry.encode()
        with self.transaction():
            self._write_stage(changes, objects)
        return molecule.molecule_hash

    def _staged_key(self, ref: str) -> tuple[bytes, bytes]:
        """Resolve an atom or molecule id prefix to a key present in the stage."""
        tree, _ = self._stage_tree()
        prefix = ref.lower()
        if len(prefix) == 64 and is_hex_prefix(prefix):
            key = bytes.fromhex(prefix)
        else:
            key = self._resolve_prefix(prefix, (ATOM, MOLECULE), f"memory {ref!r}")
        item = self.trees.get(tree, key)
        if item is None:
            raise UnknownRevisionError(f"memory {ref!r} is not in the stage")
        return key, item

    def remove(self, *refs: str) -> list[ObjectId]:
        """Unstage the memories whose ids start with ``refs``, all or none.

        Raises:
            UnknownRevisionError: a ref matches nothing in the stage (nothing is removed).
        """
        return self.stage(remove=refs)[1]

    def update_entry(
        self,
        ref: str,
        *,
        relevance: float | object = _UNSET,
        source: str | object = _UNSET,
        tags: Iterable[str] | object = _UNSET,
        abstract: str | object | None = _UNSET,
        overview: str | object | None = _UNSET,
    ) -> ObjectId:
        """Change a staged atom's entry fields; the atom itself is unchanged."""
        fields: dict[str, Any] = {}
        if relevance is not _UNSET:
            fields["relevance"] = check_relevance(relevance)
        if source is not _UNSET:
            if not isinstance(source, str):
                raise InvalidInputError(f"source must be text, got {source!r}")
            fields["source"] = source
        if tags is not _UNSET:
            fields["tags"] = check_tags(tags)  # type: ignore[arg-type]
        for name, value in (("abstract", abstract), ("overview", overview)):
            if value is not _UNSET:
                if value is not None and not isinstance(value, str):
                    raise InvalidInputError(f"{name} must be text or None, got {value!r}")
                fields[name] = value
        with self.transaction():
            key, item = self._staged_key(ref)
            entry = decode_entry(item)
            if not isinstance(entry, AtomEntry):
                raise InvalidInputError(f"{ref!r} is a molecule; molecules have no entry fields")
            self._write_stage({key: dataclasses.replace(entry, **fields).encode()}, [])
        return to_hex(key)

    def status(self) -> Status:
        """Report the branch, HEAD, staged changes and any merge in progress."""
        with self.transaction():  # one consistent view of HEAD, STAGE and the merge
            tree, _ = self._stage_tree()
            merging = self.store.read_ref(refnames.MERGE_HEAD)
            return Status(
                branch=self.current_branch,
                head=self.head(),
                changes=tuple(self._changes(self._head_tree(), tree)),
                merging=ObjectId(merging) if merging else None,
                conflicts=self.conflicts(),
            )

    # -- commits ----------------------------------------------------------

    def commit(
        self,
        message: str,
        *,
        author: str = DEFAULT_AUTHOR,
        allow_empty: bool = False,
        metadata: Metadata | None = None,
        expect_head: str | object | None = _UNSET,
    ) -> ObjectId:
        """Record the stage as a new commit on the current branch.

        Args:
            message: why the memory changed.
            author: who (a person or an agent's actor id).
            allow_empty: commit even when nothing is staged.
            metadata: free JSON-like data recorded in the commit.
            expect_head: if given, commit only if HEAD is still this commit id
                (None: still unborn) -- optimistic concurrency for agents.

        Raises:
            NothingToDoError: nothing is staged and ``allow_empty`` is False.
            MergeConflictError: a merge has unresolved conflicts.
            ConcurrentUpdateError: HEAD is not ``expect_head``.
        """
        check_message(message)
        check_author(author)
        meta = canonical.normalise_metadata(metadata or {})
        with self.transaction():
            ref = self._head_ref()
            old_value = self.store.read_ref(ref)
            if expect_head is not _UNSET and expect_head != old_value:
                raise ConcurrentUpdateError(
                    f"HEAD moved: expected {expect_head!r}, found {old_value!r}"
                )
            tree, stage_value = self._stage_tree()
            parents = [from_hex(old_value)] if old_value else []
            merging = self.store.read_ref(refnames.MERGE_HEAD)
            if merging is not None:
                if self.conflicts():
                    raise MergeConflictError(
                        f"{len(self.conflicts())} conflict(s) unresolved; "
                        "resolve them or abort the merge"
                    )
                parents.append(from_hex(merging))
            elif not allow_empty and tree == self._head_tree():
                raise NothingToDoError("nothing to commit (stage a memory first, or allow empty)")
            new_id = self._write_commit(tree, parents, author, message, meta)
            self._move_ref(ref, old_value, new_id)
            if stage_value is not None:
                self._move_ref(refnames.STAGE, stage_value, None)
            self._clear_merge_state()
        return new_id

    def _write_commit(
        self, tree: bytes, parents: list[bytes], author: str, message: str, metadata: Metadata
    ) -> ObjectId:
        generation = 1 + max((self.load_commit(p).generation for p in parents), default=0)
        commit = Commit(
            tree=tree,
            parents=tuple(parents),
            generation=generation,
            author=author,
            message=message,
            timestamp=now_micros(),
            metadata=metadata,
        )
        self.store.put_objects([(commit.digest, COMMIT, commit.encode())])
        return commit.id

    def log(
        self, revisions: Iterable[str] = (refnames.HEAD,), *, limit: int | None = None
    ) -> Iterator[CommitInfo]:
        """Yield commits reachable from ``revisions``, newest generation first."""
        starts = [self._resolve(rev) for rev in revisions]
        for count, (oid, commit) in enumerate(walk(self.load_commit, starts)):
            if limit is not None and count >= limit:
                return
            yield CommitInfo(to_hex(oid), commit)

    def show(self, revision: str = refnames.HEAD) -> tuple[CommitInfo, list[Change]]:
        """Return a commit and the changes it made against its first parent."""
        oid = self._resolve(revision)
        commit = self.load_commit(oid)
        base = self.load_commit(commit.parents[0]).tree if commit.parents else EMPTY_TREE_ID
        return CommitInfo(to_hex(oid), commit), self._changes(base, commit.tree)

    def compressed(self, revision: str = refnames.HEAD) -> CompressedContext:
        """Return a commit's change as the seed's ``CompressedContext``.

        ``base_hash`` is the first parent's id (None for a root commit); the
        delta holds the added or changed atoms (with their entries), the added
        molecules, and the ids removed. Expanding it with
        ``ExpanderFunctor(repo)`` gives the commit's own snapshot.
        """
        info, changes = self.show(revision)
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

    def diff(self, old: str, new: str | None = None) -> list[Change]:
        """Return the entries that differ from revision ``old`` to ``new`` (None: the stage)."""
        old_tree = self.load_commit(self._resolve(old)).tree
        new_tree = (
            self._stage_tree()[0] if new is None else self.load_commit(self._resolve(new)).tree
        )
        return self._changes(old_tree, new_tree)

    def _changes(self, old_tree: bytes, new_tree: bytes) -> list[Change]:
        raw = list(self.trees.diff(old_tree, new_tree))
        items = [i for _, a, b in raw for i in (a, b) if i is not None]
        by_item = dict(zip(items, self._load_memories(decode_entry(i) for i in items), strict=True))
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

    def ranked_atoms(
        self, revision: str = refnames.HEAD, *, score: Scorer | None = None, batch: int = 64
    ) -> Iterator[MemoryAtom]:
        """Yield ``revision``'s atoms best first, lazily.

        Ranks by ``score(relevance, timestamp)`` (stored relevance by default;
        see :func:`recency_scorer`), then newest, then id. Entries come from a
        best-first walk of the snapshot tree and contents are read ``batch`` at
        a time, so the first atoms of a huge snapshot arrive after a few reads
        and memory stays bounded however far the caller iterates.
        """
        return self._ranked_atoms(self._tree_of(revision), score, batch)

    def snapshot(self, revision: str | None = refnames.HEAD) -> list[Memory]:
        """Return every memory in ``revision`` (None: the stage), in id order."""
        if revision is None:
            tree = self._stage_tree()[0]
        else:
            tree = self.load_commit(self._resolve(revision)).tree
        return self._load_memories(decode_entry(item) for item in self.trees.items(tree))

    def count(self, revision: str | None = refnames.HEAD) -> int:
        """Return how many entries ``revision`` (None: the stage) holds."""
        if revision is None:
            return self.trees.count(self._stage_tree()[0])
        return self.trees.count(self.load_commit(self._resolve(revision)).tree)

    def get(self, ref: str, revision: str | None = None) -> Memory:
        """Return the memory whose id starts with ``ref`` as held in ``revision``.

        ``revision`` None means the stage.
        """
        if revision is None:
            _, item = self._staged_key(ref)
        else:
            tree = self.load_commit(self._resolve(revision)).tree
            prefix = ref.lower()
            key = self._resolve_prefix(prefix, (ATOM, MOLECULE), f"memory {ref!r}")
            found = self.trees.get(tree, key)
            if found is None:
                raise UnknownRevisionError(f"memory {ref!r} is not in {revision!r}")
            item = found
        return self._load_memories([decode_entry(item)])[0]

    @functools.cached_property
    def search_index(self) -> SearchIndex:
        """The full-text index beside this repository's store."""
        return search_index_for(self.store)

    def search(
        self,
        query: str,
        *,
        revision: str = refnames.HEAD,
        limit: int = 10,
        mode: Mode = "any",
        where: ContextQuery | None = None,
        half_life_seconds: float | None = None,
        now: int | None = None,
    ) -> list[SearchHit]:
        """Find ``revision``'s memories matching ``query``, best first.

        Words are matched by full-text search (SQLite FTS5 on disk); each hit
        scores ``relevance x recency x match``, where ``match`` weighs the
        query's phrases by their rarity in this revision (see
        :mod:`contextfs.expand.ranking`), so the answer depends on the revision
        alone. ``where`` filters further (type, relevance, age, tags, source).

        Raises:
            InvalidInputError: the query has no words, or an argument is invalid.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidInputError(f"limit must be a non-negative integer, got {limit!r}")
        moment = now if now is not None else now_micros()
        tree = self._tree_of(revision)
        hits: list[SearchHit] = []
        ranked = self._query_ranked(tree, query, mode, self._scorer(half_life_seconds, moment))
        for atom, score, match in ranked:
            if where is None or where.matches(atom, from_micros(moment)):
                hits.append(SearchHit(atom, score, match))
                if len(hits) >= limit:
                    break
        return hits

    def context(
        self,
        revision: str = refnames.HEAD,
        *,
        budget: int | None = None,
        query: str | None = None,
        mode: Mode = "any",
        format: Format = "lines",
        half_life_seconds: float | None = None,
        now: int | None = None,
        where: ContextQuery | None = None,
        compact: bool = True,
        patience: int | None = DEFAULT_PATIENCE,
        tokenizer: Tokenizer | None = None,
        purged: Literal["omit", "show"] = "omit",
    ) -> PromptContext:
        """Assemble the best prompt ``revision`` can give within ``budget`` tokens.

        Atoms are ranked by stored relevance, times a recency decay with
        ``half_life_seconds``, times the query match with ``query`` (and then
        only matching atoms take part); ``where`` filters; true duplicates
        (same type, same normalised text) are merged when ``compact``; the
        revision's relevance lattice is honoured; then the best atoms whose
        rendered ``format`` fits are packed, skipping any that do not fit and
        giving up after ``patience`` misses in a row. The rendered prompt,
        counted by ``tokenizer``, never exceeds ``budget``.

        The result carries a :class:`~contextfs.expand.receipt.Receipt` from
        which :meth:`verify_receipt` re-derives the prompt byte for byte. The
        cost follows the budget and the query's matches; without a lattice the
        snapshot is read lazily, best first.

        Raises:
            InvalidInputError: an argument is invalid.
        """
        fmt = check_format(format)
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, int) or budget < 0
        ):
            raise InvalidInputError(f"budget must be a non-negative integer, got {budget!r}")
        oid = self._resolve(revision)
        tree = self.load_commit(oid).tree
        moment = now if now is not None else now_micros()
        scorer = self._scorer(half_life_seconds, moment)
        candidates: Iterable[MemoryAtom]
        if query is None:
            candidates = self._ranked_atoms(tree, scorer)
        else:
            candidates = (atom for atom, _, _ in self._query_ranked(tree, query, mode, scorer))
        if where is not None:
            when = from_micros(moment)
            candidates = (atom for atom in candidates if where.matches(atom, when))
        if purged == "omit":
            candidates = (a for a in candidates if not self._is_placeholder(a))
        elif purged != "show":
            raise InvalidInputError(f"purged must be 'omit' or 'show', got {purged!r}")
        if compact:
            candidates = _distinct(candidates)
        molecules = [self._load_molecule(item_key(i)) for i in self.trees.molecule_items(tree)]
        lattice = _lattice_of(molecules)
        if len(lattice):
            ranked = list(candidates)
            by_id: dict[str, MemoryAtom] = {atom.content_hash: atom for atom in ranked}
            candidates = [by_id[i] for i in lattice.order([a.content_hash for a in ranked])]
        counter = tokenizer or default_tokenizer()
        selection = fit(candidates, molecules, fmt, budget, counter, patience=patience)
        receipt = build_receipt(
            selection,
            commit=to_hex(oid),
            snapshot_root=to_hex(tree),
            revision=revision,
            budget=budget,
            query=query,
            half_life_seconds=half_life_seconds,
            now=moment,
            tokenizer=counter.name,
            params={
                "mode": mode,
                "compact": compact,
                "patience": patience,
                "where": _query_params(where),
                "purged": purged,
            },
        )
        return PromptContext(
            selection.text, selection.tokens, selection.atoms, selection.molecules, receipt
        )

    def expand(
        self,
        revision: str = refnames.HEAD,
        *,
        budget: int | None = None,
        query: str | None = None,
        half_life_seconds: float | None = None,
        now: int | None = None,
        where: ContextQuery | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> ExpandedContext:
        """Materialise ``revision`` as the seed's ``ExpandedContext``, ranked and budgeted.

        The same selection as :meth:`context` in the ``lines`` format, so
        ``to_prompt_context()`` of the result is that prompt and never exceeds
        ``budget``. Without a budget every atom is tried (patience is off).
        """
        result = self.context(
            revision,
            budget=budget,
            query=query,
            half_life_seconds=half_life_seconds,
            now=now,
            where=where,
            patience=DEFAULT_PATIENCE if budget is not None else None,
            tokenizer=tokenizer,
        )
        summary: dict[str, int] = {}
        for atom in result.atoms:
            summary[str(atom.type_sig)] = summary.get(str(atom.type_sig), 0) + 1
        return ExpandedContext(
            atoms=list(result.atoms),
            molecules=list(result.molecules),
            expansion_path=[result.receipt.commit],
            total_tokens_estimate=result.tokens,
            type_summary=dict(sorted(summary.items())),
        )

    def prove(self, ref: str | MemoryAtom, revision: str = refnames.HEAD) -> Proof:
        """Prove that a memory is, or is not, in ``revision``.

        Returns a :class:`~contextfs.integrity.proofs.MembershipProof` when it
        is and a :class:`~contextfs.integrity.proofs.NonMembershipProof` when it
        is not; either checks, from the commit's id alone, with
        :func:`contextfs.integrity.proofs.verify` -- a chain of RFC 6962
        inclusion proofs, one per tree level, that any verifier can follow.

        Args:
            ref: the memory (a MemoryAtom, a full id, or a unique prefix of a
                stored atom or molecule id).
            revision: the version to prove it against.
        """
        commit_id = self._resolve(revision)
        stored = self.store.get_object(commit_id)
        if stored is None:
            raise MissingObjectError(f"commit {commit_id.hex()} is missing")
        if isinstance(ref, MemoryAtom):
            key = ref.digest
        else:
            prefix = ref.lower()
            if len(prefix) == ID_HEX_LENGTH and is_hex_prefix(prefix):
                key = bytes.fromhex(prefix)  # never stored: still gets a non-membership proof
            else:
                key = self._resolve_prefix(prefix, (ATOM, MOLECULE), f"memory {ref!r}")
        return prove_key(self.trees, stored.data, key)

    def verify(self) -> VerifyReport:
        """Re-hash every object and check every link and ref; name each problem.

        See :func:`contextfs.integrity.fsck.verify_store`. Purged atoms (with
        their purge records) are listed, not reported as damage.
        """
        return verify_store(self.store)

    def purge(self, ref: str, *, author: str, reason: str = "") -> PurgeRecord:
        """Erase an atom's content from every version, index and free page.

        Every commit id and snapshot root still verifies (they cover the atom's
        id, not its text); expansion leaves the atom out, or shows it as
        ``[purged]`` when asked. The purge is recorded: who, when, which id, why.
        Must not run inside :meth:`transaction` (the store file is compacted).

        Raises:
            PurgeError: the id names no atom, is already purged, or a copy of
                its text is held where it cannot be erased.
        """
        check_author(author)
        prefix = ref.lower()
        if len(prefix) == ID_HEX_LENGTH and is_hex_prefix(prefix):
            oid = bytes.fromhex(prefix)
        else:
            oid = self._resolve_prefix(prefix, (ATOM,), f"atom {ref!r}")
        return purge_atom(self.store, oid, author=author, reason=reason, when=now_micros())

    def verify_receipt(self, receipt: Receipt) -> ReceiptVerification:
        """Re-derive the prompt ``receipt`` describes from this store and compare it.

        Raises:
            InvalidInputError: the receipt names a tokenizer or parameter this
                version cannot reproduce.
        """
        return verify_receipt(receipt, self._derive)

    def _derive(self, receipt: Receipt) -> tuple[str, str]:
        tokenizer = default_tokenizer()
        if receipt.tokenizer != tokenizer.name:
            raise InvalidInputError(f"cannot reproduce tokenizer {receipt.tokenizer!r}")
        params = receipt.params
        result = self.context(
            receipt.commit,
            budget=receipt.budget,
            query=receipt.query,
            mode=params.get("mode", "any"),
            format=receipt.format,
            half_life_seconds=receipt.half_life_seconds,
            now=receipt.now,
            where=_query_from_params(params.get("where")),
            compact=bool(params.get("compact", True)),
            patience=params.get("patience"),
            tokenizer=tokenizer,
            purged=params.get("purged", "omit"),
        )
        return result.receipt.snapshot_root, result.text

    def _is_placeholder(self, atom: MemoryAtom) -> bool:
        return (
            atom.content == PURGED_TEXT
            and atom.type_sig == PURGED_TYPE
            and self.is_purged(atom.digest)
        )

    def _scorer(self, half_life_seconds: float | None, now: int) -> Scorer | None:
        if half_life_seconds is None:
            return None
        return recency_scorer(half_life_seconds, now)

    def _ranked_atoms(
        self, tree: bytes, scorer: Scorer | None, batch: int = RANKED_BATCH
    ) -> Iterator[MemoryAtom]:
        entries = self.trees.ranked(tree, scorer)
        while chunk := [decode_entry(i) for i in itertools.islice(entries, batch)]:
            for memory in self._load_memories(chunk):
                assert isinstance(memory, MemoryAtom)
                yield memory

    def _query_ranked(
        self, tree: bytes, query: str, mode: Mode, scorer: Scorer | None
    ) -> Iterator[tuple[MemoryAtom, float, float]]:
        """Yield the atoms of ``tree`` matching ``query``: ``(atom, score, match)``, best first."""
        if mode not in ("any", "all"):
            raise InvalidInputError(f"mode must be 'any' or 'all', got {mode!r}")
        phrases = parse_query(query).phrases
        items: dict[bytes, bytes | None] = {}
        members: list[set[bytes]] = []
        for phrase in phrases:
            found = set()
            for oid in self.search_index.match_ids(phrase_text(phrase)):
                if oid not in items:
                    items[oid] = self.trees.get(tree, oid)
                if items[oid] is not None:
                    found.add(oid)
            members.append(found)
        matches = match_scores(members, self.trees.count(tree))
        keep = set.intersection(*members) if mode == "all" else set(matches)
        rank = scorer or by_relevance
        scored = []
        for oid in keep:
            entry = decode_entry(items[oid] or b"")
            assert isinstance(entry, AtomEntry)
            score = rank(entry.relevance, entry.timestamp) * matches[oid]
            scored.append((-score, -entry.timestamp, oid, matches[oid], entry))
        scored.sort(key=lambda row: row[:3])
        for start in range(0, len(scored), RANKED_BATCH):
            batch = scored[start : start + RANKED_BATCH]
            atoms = self._load_memories(row[4] for row in batch)
            for row, atom in zip(batch, atoms, strict=True):
                assert isinstance(atom, MemoryAtom)
                yield atom, -row[0], row[3]

    def stream(
        self,
        revision: str = refnames.HEAD,
        *,
        chunk_size: int = 10,
        max_tokens_per_chunk: int = 500,
        relevance_threshold: float = 0.0,
        half_life_seconds: float | None = None,
        tokenizer: Tokenizer | None = None,
        now: datetime | None = None,
    ) -> Iterator[ExpansionChunk]:
        """Stream ``revision``'s atoms best first in chunks that respect both limits, lazily.

        The first chunk costs about ``chunk_size`` atom reads whatever the
        snapshot's size. For an asyncio consumer with backpressure across a
        thread, use :class:`~contextfs.expand.stream.StreamingExpander`.
        """
        return iter_chunks(
            self,
            revision,
            chunk_size=chunk_size,
            max_tokens_per_chunk=max_tokens_per_chunk,
            relevance_threshold=relevance_threshold,
            half_life_seconds=half_life_seconds,
            tokenizer=tokenizer,
            now=now,
        )

    def molecules(self, revision: str | None = refnames.HEAD) -> list[MemoryMolecule]:
        """Return the molecules ``revision`` (None: the stage) holds.

        Tree summaries count molecules per subtree, so this reads only the
        paths that lead to one.
        """
        tree = self._tree_of(revision)
        return [self._load_molecule(item_key(item)) for item in self.trees.molecule_items(tree)]

    def relevance_lattice(self, revision: str | None = refnames.HEAD) -> RelevanceLattice:
        """Return the "more relevant than" order recorded in ``revision`` (None: the stage).

        The lattice is versioned like every memory: it is stored as a molecule
        of type ``RelevanceLattice`` whose ``more_relevant`` relation holds its
        edges, and :meth:`expand` honours it when ranking.
        """
        return _lattice_of(self.molecules(revision))

    def add_relevance_edge(self, higher: str, lower: str) -> ObjectId:
        """Stage the fact that memory ``higher`` is more relevant than ``lower``.

        Both are id prefixes of atoms in the stage. The lattice molecule is
        rewritten in the stage (atoms keep their entries).

        Returns:
            The id of the new lattice molecule.

        Raises:
            LatticeCycleError: ``lower`` is already above ``higher``.
        """
        with self.transaction():
            keys = []
            for ref in (higher, lower):
                key, item = self._staged_key(ref)
                if is_molecule_item(item):
                    raise InvalidInputError(f"{ref!r} is a molecule; the lattice orders atoms")
                keys.append(to_hex(key))
            old = [m for m in self.molecules(None) if m.molecule_type == LATTICE_TYPE]
            lattice = self.relevance_lattice(None)
            lattice.add_edge(keys[0], keys[1])
            nodes = list(lattice)
            atoms = tuple(self._staged_atom(node) for node in nodes)
            index = {node: i for i, node in enumerate(nodes)}
            edges = tuple((index[h], index[lo]) for h, lo in lattice.edges())
            molecule = MemoryMolecule(atoms, {LATTICE_RELATION: edges}, LATTICE_TYPE, {})
            changes: dict[bytes, bytes | None] = {m.digest: None for m in old}
            changes[molecule.digest] = MoleculeEntry(molecule.digest).encode()
            self._write_stage(changes, [(molecule.digest, MOLECULE, molecule.encode())])
        return molecule.molecule_hash

    def _staged_atom(self, atom_id: str) -> MemoryAtom:
        found = self.get(atom_id)
        assert isinstance(found, MemoryAtom)
        return found

    def _tree_of(self, revision: str | None) -> bytes:
        if revision is None:
            return self._stage_tree()[0]
        return self.load_commit(self._resolve(revision)).tree

    # -- moving between versions ----------------------------------------------

    def switch(self, name: str, *, create: bool = False, detach: bool = False) -> ObjectId | None:
        """Check out branch ``name`` (or, with ``detach``, any revision).

        Staged changes are carried over when they apply cleanly to the target;
        otherwise the switch is refused and nothing changes.
        """
        with self.transaction():
            if self.store.read_ref(refnames.MERGE_HEAD) is not None:
                raise UncommittedChangesError("a merge is in progress; commit or abort it first")
            if create:
                self.create_branch(name)
            if detach:
                target_value: str | None = self.resolve(name)
                head_value = target_value
            else:
                ref = refnames.branch_ref(name)
                target_value = self.store.read_ref(ref)
                if target_value is None and name != self.current_branch:
                    raise UnknownRevisionError(f"no branch named {name!r}")
                head_value = refnames.symbolic(ref)
            target_tree = (
                self.load_commit(from_hex(target_value)).tree if target_value else EMPTY_TREE_ID
            )
            stage_tree, stage_value = self._stage_tree()
            new_stage = target_tree
            if stage_value is not None:
                outcome = merge_trees(self.trees, self._head_tree(), target_tree, stage_tree)
                if outcome.conflicts:
                    raise UncommittedChangesError(
                        f"staged changes to {len(outcome.conflicts)} memories "
                        f"conflict with {name!r}; "
                        "commit them or reset first"
                    )
                new_stage = outcome.tree
            old_head = self.store.read_ref(refnames.HEAD)
            self._move_ref(refnames.HEAD, old_head, head_value)
            wanted = None if new_stage == target_tree else to_hex(new_stage)
            if wanted != stage_value:
                self._move_ref(refnames.STAGE, stage_value, wanted)
        return ObjectId(target_value) if target_value else None

    def reset(
        self, revision: str = refnames.HEAD, *, mode: Literal["soft", "hard", "safe"] = "safe"
    ) -> ObjectId:
        """Move the current branch (or detached HEAD) to ``revision``.

        Modes: ``soft`` keeps the stage as it is (the undone commits' changes
        show as staged); ``hard`` discards staged changes and any merge;
        ``safe`` (the default) is ``hard`` but refuses to discard staged changes.
        """
        target = self.resolve(revision)
        with self.transaction():
            ref = self._head_ref()
            old = self.store.read_ref(ref)
            stage_tree, stage_value = self._stage_tree()
            merging = self.store.read_ref(refnames.MERGE_HEAD) is not None
            if mode == "safe" and (stage_value is not None or merging):
                raise UncommittedChangesError(
                    "staged changes would be lost; commit them, or reset with mode 'hard'"
                )
            if mode == "soft" and merging:
                raise UncommittedChangesError(
                    "cannot do a soft reset in the middle of a merge; commit or abort it first"
                )
            self._move_ref(ref, old, target)
            if mode == "soft":
                self._set_stage(stage_value, stage_tree)
            else:
                if stage_value is not None:
                    self._move_ref(refnames.STAGE, stage_value, None)
                self._clear_merge_state()
        return target

    def revert(self, revision: str, *, author: str = DEFAULT_AUTHOR, mainline: int = 1) -> ObjectId:
        """Commit the inverse of ``revision``'s changes on top of HEAD.

        Args:
            revision: the commit to undo (a root commit undoes to the empty snapshot).
            author: who reverts.
            mainline: for a merge commit, which parent's side to keep.

        Raises:
            MergeConflictError: later commits changed the same entries; nothing is written.
            NothingToDoError: the changes are already undone.
        """
        check_author(author)
        oid = self._resolve(revision)
        commit = self.load_commit(oid)
        if commit.parents and not 1 <= mainline <= len(commit.parents):
            raise InvalidInputError(f"commit {short(oid)} has no parent number {mainline}")
        parent_tree = (
            self.load_commit(commit.parents[mainline - 1]).tree if commit.parents else EMPTY_TREE_ID
        )
        with self.transaction():
            if self.store.read_ref(refnames.STAGE) or self.store.read_ref(refnames.MERGE_HEAD):
                raise UncommittedChangesError("commit or reset staged changes before reverting")
            ref = self._head_ref()
            old = self.store.read_ref(ref)
            if old is None:
                raise UnknownRevisionError("HEAD has no commits yet")
            outcome = merge_trees(self.trees, commit.tree, self._head_tree(), parent_tree)
            if outcome.conflicts:
                raise MergeConflictError(
                    f"reverting {short(oid)} conflicts on {len(outcome.conflicts)} memories"
                )
            if outcome.tree == self._head_tree():
                raise NothingToDoError(f"the changes of {short(oid)} are already undone")
            message = f'Revert "{commit.summary}"\n\nThis reverts commit {to_hex(oid)}.'
            new_id = self._write_commit(outcome.tree, [from_hex(old)], author, message, {})
            self._move_ref(ref, old, new_id)
        return new_id

    # -- merging ------------------------------------------------------------

    def merge(
        self,
        revision: str,
        *,
        author: str = DEFAULT_AUTHOR,
        message: str | None = None,
        strategy: Side | None = None,
        fast_forward: bool = True,
    ) -> MergeResult:
        """Merge ``revision`` into the current branch.

        Fast-forwards when HEAD is an ancestor (unless ``fast_forward`` is
        False); otherwise merges the snapshots three ways and commits with two
        parents. Conflicts stop the merge (status "conflicts"): resolve each with
        :meth:`resolve_conflict` and :meth:`commit`, or :meth:`abort_merge`.
        ``strategy`` settles every conflict for one side up front.
        """
        check_author(author)
        if message is not None:
            check_message(message)
        theirs = self._resolve(revision)
        with self.transaction():
            if self.store.read_ref(refnames.MERGE_HEAD) is not None:
                raise UncommittedChangesError("a merge is already in progress")
            if self.store.read_ref(refnames.STAGE) is not None:
                raise UncommittedChangesError("commit or reset staged changes before merging")
            ref = self._head_ref()
            old = self.store.read_ref(ref)
            ours = from_hex(old) if old else None
            if ours is not None and is_ancestor(self.load_commit, theirs, ours):
                return MergeResult("up-to-date", to_hex(ours))
            if ours is None or (fast_forward and is_ancestor(self.load_commit, ours, theirs)):
                self._move_ref(ref, old, to_hex(theirs))
                return MergeResult("fast-forward", to_hex(theirs))
            base_tree = self._base_tree(ours, theirs)
            our_tree, their_tree = self.load_commit(ours).tree, self.load_commit(theirs).tree
            outcome = merge_trees(self.trees, base_tree, our_tree, their_tree)
            tree = outcome.tree
            if outcome.conflicts and strategy is not None:
                picks = {
                    c.key: (c.theirs if strategy == "theirs" else c.ours) for c in outcome.conflicts
                }
                tree = self.trees.update(tree, picks)
            label = revision if not is_hex_prefix(revision) else short(theirs)
            text = check_message(message or f"Merge {label} into {self.current_branch or 'HEAD'}")
            if outcome.conflicts and strategy is None:
                conflict_tree = self.trees.build(encode_conflict(c) for c in outcome.conflicts)
                self._move_ref(refnames.STAGE, None, to_hex(tree))
                self._move_ref(refnames.MERGE_HEAD, None, to_hex(theirs))
                self._move_ref(refnames.MERGE_STATE, None, to_hex(conflict_tree))
                return MergeResult("conflicts", None, self.conflicts())
            new_id = self._write_commit(tree, [ours, theirs], author, text, {})
            self._move_ref(ref, old, new_id)
        return MergeResult("merged", new_id)

    def _base_tree(self, ours: bytes, theirs: bytes) -> bytes:
        """Return the snapshot to merge against: the merge base, or a virtual one.

        With several best common ancestors (a criss-cross history) they are
        folded into one virtual base, as git's recursive strategy does; an
        entry the bases disagree on keeps its value from their own common
        ancestor, so either side's change to it still shows as a change.
        """
        bases = merge_bases(self.load_commit, ours, theirs)
        if not bases:
            return EMPTY_TREE_ID
        tree = self.load_commit(bases[0]).tree
        for other in bases[1:]:
            inner = merge_bases(self.load_commit, bases[0], other)
            inner_tree = self.load_commit(inner[0]).tree if inner else EMPTY_TREE_ID
            outcome = merge_trees(self.trees, inner_tree, tree, self.load_commit(other).tree)
            tree = self.trees.update(outcome.tree, {c.key: c.base for c in outcome.conflicts})
        return tree

    def conflicts(self) -> tuple[ConflictInfo, ...]:
        """Return the unresolved conflicts of a stopped merge (empty otherwise)."""
        value = self.store.read_ref(refnames.MERGE_STATE)
        if value is None:
            return ()
        conflicts = [decode_conflict(item) for item in self.trees.items(from_hex(value))]
        result = []
        for c in conflicts:
            sides = [decode_entry(i) if i is not None else None for i in (c.base, c.ours, c.theirs)]
            loaded = iter(self._load_memories(s for s in sides if s is not None))
            memories = [next(loaded) if s is not None else None for s in sides]
            result.append(ConflictInfo(to_hex(c.key), *memories))
        return tuple(result)

    def resolve_conflict(self, ref: str, side: Side) -> ObjectId:
        """Settle one conflict by taking ``ours`` or ``theirs`` for that memory."""
        if side not in ("ours", "theirs"):
            raise InvalidInputError(f"side must be 'ours' or 'theirs', got {side!r}")
        with self.transaction():
            state = self.store.read_ref(refnames.MERGE_STATE)
            if state is None:
                raise NothingToDoError("no merge conflicts to resolve")
            items = {item_key(i): decode_conflict(i) for i in self.trees.items(from_hex(state))}
            prefix = ref.lower()
            matches = (
                [k for k in items if k.hex().startswith(prefix)] if is_hex_prefix(prefix) else []
            )
            if len(matches) != 1:
                kind = "ambiguous" if matches else "unknown"
                raise UnknownRevisionError(f"{kind} conflicted memory {ref!r}")
            key = matches[0]
            conflict = items[key]
            stage_tree, stage_value = self._stage_tree()
            chosen = conflict.theirs if side == "theirs" else conflict.ours
            new_stage = self.trees.update(stage_tree, {key: chosen})
            new_state = self.trees.update(from_hex(state), {key: None})
            if new_stage != stage_tree:
                self._move_ref(refnames.STAGE, stage_value, to_hex(new_stage))
            self._move_ref(refnames.MERGE_STATE, state, to_hex(new_state))
        return to_hex(key)

    def abort_merge(self) -> None:
        """Drop a stopped merge and its staged result; HEAD is untouched."""
        with self.transaction():
            if self.store.read_ref(refnames.MERGE_HEAD) is None:
                raise NothingToDoError("no merge in progress")
            stage = self.store.read_ref(refnames.STAGE)
            if stage is not None:
                self._move_ref(refnames.STAGE, stage, None)
            self._clear_merge_state()

    def _clear_merge_state(self) -> None:
        for name in (refnames.MERGE_HEAD, refnames.MERGE_STATE):
            value = self.store.read_ref(name)
            if value is not None:
                self._move_ref(name, value, None)


def _distinct(atoms: Iterable[MemoryAtom]) -> Iterator[MemoryAtom]:
    """Drop true duplicates lazily, keeping the first (best ranked) of each."""
    seen: set[tuple[TypeSignature, str]] = set()
    for atom in atoms:
        key = compaction_key(atom)
        if key not in seen:
            seen.add(key)
            yield atom


def _lattice_of(molecules: Iterable[MemoryMolecule]) -> RelevanceLattice:
    lattice = RelevanceLattice()
    for molecule in molecules:
        if molecule.molecule_type == LATTICE_TYPE:
            ids = [atom.content_hash for atom in molecule.atoms]
            for node in ids:
                lattice.add_node(node)
            for higher, lower in molecule.relations.get(LATTICE_RELATION, ()):
                lattice.add_edge(ids[higher], ids[lower])
    return lattice


def _query_params(where: ContextQuery | None) -> dict[str, Any] | None:
    """Record a filter in a receipt, losslessly (types in their canonical form)."""
    if where is None:
        return None
    return {
        "type": where.type_filter.to_canonical() if where.type_filter is not None else None,
        "min_relevance": where.min_relevance,
        "max_age_seconds": where.max_age_seconds,
        "limit": where.limit,
        "text": where.text,
        "tags": list(where.tags),
        "source": where.source,
    }


def _query_from_params(value: object) -> ContextQuery | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInputError("receipt parameter 'where' is malformed")
    type_value = value.get("type")
    try:
        return ContextQuery(
            type_filter=TypeSignature.from_canonical(type_value) if type_value else None,
            min_relevance=value.get("min_relevance", 0.0),
            max_age_seconds=value.get("max_age_seconds"),
            limit=value.get("limit"),
            text=value.get("text"),
            tags=tuple(value.get("tags", ())),
            source=value.get("source"),
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"receipt parameter 'where' is malformed: {exc}") from None


__all__ = ["DEFAULT_AUTHOR", "Repository"]
