"""The version-control half of the Repository: objects, refs, stage, commits, merges.

See :mod:`contextfs.repo`, whose :class:`~contextfs.repo.Repository` adds context
assembly, search, proofs and purging on top. Every mutation reads and writes inside
one store transaction and moves refs by compare-and-swap.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Self

from .config import RepoConfig, read_config, write_config
from .discovery import DATABASE, REPO_DIR, find_repository, is_repository
from .errors import (
    AmbiguousRevisionError,
    ConcurrentUpdateError,
    CorruptObjectError,
    InvalidInputError,
    MergeConflictError,
    MissingObjectError,
    NothingToDoError,
    RepositoryExistsError,
    RepositoryNotFoundError,
    StoreError,
    UncommittedChangesError,
    UnknownRevisionError,
)
from .history.commits import COMMIT, Commit, check_author, check_message, decode_commit
from .history.graph import is_ancestor, merge_bases, walk
from .history.merge import changed_fields, decode_conflict, encode_conflict, merge_trees
from .history.revisions import parse_revision
from .history.tree import (
    EMPTY_TREE_DATA,
    EMPTY_TREE_ID,
    TREE,
    SnapshotTrees,
    item_key,
)
from .integrity.purge import purge_ref
from .model import canonical
from .model import refs as refnames
from .model.canonical import Metadata
from .model.context import CompressedContext
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
)
from .model.timeutil import from_micros, now_micros
from .model.types import TypeSignature
from .records import (
    Change,
    CommitInfo,
    ConflictInfo,
    Memory,
    MergeResult,
    Status,
)
from .search import SearchIndex, search_index_for
from .store.base import Store
from .store.locate import STORE_URL_ENV, is_postgres_url, open_store
from .store.memory import MemoryStore
from .store.sqlite import SqliteStore

DEFAULT_AUTHOR = "anonymous"
#: How a purged atom shows when the caller asks to see it.
PURGED_TYPE = TypeSignature("Purged")
PURGED_TEXT = "[purged]"
#: Decoded commits kept per repository object (oldest dropped first).
COMMIT_CACHE_SIZE = 16384

Side = Literal["ours", "theirs"]
ProgressCallback = Callable[[int], None]


_UNSET: object = object()
_ENTRY_FIELDS = ("relevance", "timestamp", "source", "tags", "abstract", "overview")


class RepositoryCore:
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
        cls,
        path: str | os.PathLike[str] = ".",
        *,
        branch: str = refnames.DEFAULT_BRANCH,
        store: str | None = None,
    ) -> Self:
        """Create a repository in ``path/.contextfs`` and return it open.

        With ``store`` (a ``postgresql://`` URL) the memories live in that
        database and the folder only records where: a store that already holds
        a repository is joined, not re-initialised, so every machine of a team
        runs the same ``init --store``.

        Raises:
            RepositoryExistsError: the folder is a repository already.
            StoreError: the store cannot be created or reached.
        """
        refnames.branch_ref(branch)  # refuse a bad name before touching the disk
        folder = Path(path) / REPO_DIR
        if is_repository(folder):
            raise RepositoryExistsError(f"a ContextFS repository already exists in {str(folder)!r}")
        if store is not None:
            return cls._init_shared(folder, store, branch)
        database = folder / DATABASE
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
    def _init_shared(cls, folder: Path, url: str, branch: str) -> Self:
        """Initialise (or join) the repository in the store at ``url``; record it in the folder.

        The folder gets a workspace of its own in the store, so its HEAD and
        stage are its own while branches, tags and history are shared.
        """
        if not is_postgres_url(url):
            raise InvalidInputError(
                "--store takes a postgresql:// URL (the default store is the folder's own"
                " SQLite file)"
            )
        with cls(open_store(url, create=True)) as shared:
            if shared.store.read_ref(refnames.HEAD) is None:
                with contextlib.suppress(RepositoryExistsError):  # another machine won the race
                    shared._initialise(branch)
        workspace = secrets.token_hex(8)
        repo = cls(open_store(url, workspace=workspace), path=folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_config(folder, RepoConfig(store=url, workspace=workspace))
        except OSError as exc:
            repo.close()
            raise StoreError(
                f"cannot create a repository in {str(folder)!r}: {exc.strerror}"
            ) from None
        return repo

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None) -> Self:
        """Open the repository at ``path``: a folder at or below it, or a store URL.

        ``path`` may be a ``postgresql://`` URL. Without ``path``,
        ``CONTEXTFS_STORE_URL`` names the store if set; otherwise the folder is
        found from the current directory (``CONTEXTFS_DIR`` overrides), and its
        ``config.json`` may point at a PostgreSQL store and the folder's
        workspace in it (its own HEAD and stage).
        """
        if is_postgres_url(path):
            assert isinstance(path, str)
            return cls(open_store(path))
        url = os.environ.get(STORE_URL_ENV) if path is None else None
        if url:
            folder: Path | None = None
            with contextlib.suppress(RepositoryNotFoundError):
                folder = find_repository()
            workspace = read_config(folder).workspace if folder is not None else None
            return cls(open_store(url, workspace=workspace), path=folder)
        folder = find_repository(path)
        config = read_config(folder)
        if config.store is not None:
            return cls(open_store(config.store, workspace=config.workspace), path=folder)
        return cls(SqliteStore.open(folder / DATABASE), path=folder)

    @classmethod
    def memory(cls, *, branch: str = refnames.DEFAULT_BRANCH) -> Self:
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

    def __enter__(self) -> Self:
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
        # git's order: the name as given, then tags, branches, remote-tracking branches.
        for ref in (
            (name, refnames.TAGS + name, refnames.HEADS + name, refnames.REMOTES + name)
            if not name.startswith("refs/")
            else (name,)
        ):
            value = self.store.read_ref(ref) if ref.startswith("refs/") else None
            if value is not None:
                return from_hex(value)
        return self._resolve_prefix(name.lower(), (COMMIT,), f"revision {revision!r}")

    def _memory_key(self, ref: str, kinds: tuple[str, ...]) -> bytes:
        """Return the id a full 64-hex id names as is, or a unique stored prefix resolves to.

        A full id is taken without a lookup, so callers can ask about objects
        the store never held (a non-membership proof, a stage miss).
        """
        prefix = ref.lower()
        if len(prefix) == ID_HEX_LENGTH and is_hex_prefix(prefix):
            return bytes.fromhex(prefix)
        what = "atom" if kinds == (ATOM,) else "memory"
        return self._resolve_prefix(prefix, kinds, f"{what} {ref!r}")

    def memory_id(self, ref: str) -> ObjectId:
        """Return the full id of the stored atom or molecule whose id starts with ``ref``.

        Raises:
            UnknownRevisionError: nothing matches.
            AmbiguousRevisionError: several memories match.
        """
        return to_hex(self._memory_key(ref, (ATOM, MOLECULE)))

    def _molecules_of(self, tree: bytes) -> list[MemoryMolecule]:
        return [self._load_molecule(item_key(item)) for item in self.trees.molecule_items(tree)]

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
        tree, value, _ = self._stage_state()
        return tree, value

    def _stage_state(self) -> tuple[bytes, str | None, str]:
        """Return the stage's tree, the STAGE ref's value, and the commit it is built on.

        The base is what a later commit carries the staged changes over from
        (:meth:`_carry_stage`), so it is read together with the tree: with
        nothing staged, the head commit whose tree this is. The empty tree's
        id stands for an unborn branch.
        """
        value = self.store.read_ref(refnames.STAGE)
        if value is not None:
            base = self.store.read_ref(refnames.STAGE_BASE)
            return from_hex(value), value, base if base is not None else self._head_or_empty()
        head = self._head()
        if head is None:
            return EMPTY_TREE_ID, None, to_hex(EMPTY_TREE_ID)
        return self.load_commit(head).tree, None, to_hex(head)

    def _head_or_empty(self) -> str:
        head = self._head()
        return to_hex(head) if head is not None else to_hex(EMPTY_TREE_ID)

    def _tree_at(self, base: str) -> bytes:
        """The snapshot of a stage base: a commit's tree, or the empty tree."""
        oid = from_hex(base)
        return EMPTY_TREE_ID if oid == EMPTY_TREE_ID else self.load_commit(oid).tree

    def _write_stage(
        self, changes: Mapping[bytes, bytes | None], objects: list[tuple[bytes, str, bytes]]
    ) -> None:
        """Apply ``changes`` to the stage; call inside :meth:`transaction`."""
        tree, old_value, base = self._stage_state()
        new_tree = self.trees.update(tree, changes)
        self.store.put_objects(objects)
        atoms = [oid for oid, kind, _ in objects if kind == ATOM]
        if atoms:
            self.search_index.defer(atoms)
        self._set_stage(old_value, new_tree, base)

    def _set_stage(self, old_value: str | None, tree: bytes, base: str | None = None) -> None:
        """Make ``tree`` the stage, built on commit ``base`` (default: the head now)."""
        base = base if base is not None else self._head_or_empty()
        new_value = (
            None
            if tree == self._tree_at(base) and self.store.read_ref(refnames.MERGE_HEAD) is None
            else to_hex(tree)
        )
        if new_value != old_value:
            self._move_stage(old_value, new_value, base)

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
        key = self._memory_key(ref, (ATOM, MOLECULE))
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
            tree, _, base = self._stage_state()
            merging = self.store.read_ref(refnames.MERGE_HEAD)
            return Status(
                branch=self.current_branch,
                head=self.head(),
                changes=tuple(self._changes(self._tree_at(base), tree)),
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
            # Read once: with a shared store the branch may move while this runs.
            head_tree = self.load_commit(from_hex(old_value)).tree if old_value else EMPTY_TREE_ID
            stage_value = self.store.read_ref(refnames.STAGE)
            tree = from_hex(stage_value) if stage_value is not None else head_tree
            parents = [from_hex(old_value)] if old_value else []
            merging = self.store.read_ref(refnames.MERGE_HEAD)
            if merging is not None:
                if self.conflicts():
                    raise MergeConflictError(
                        f"{len(self.conflicts())} conflict(s) unresolved; "
                        "resolve them or abort the merge"
                    )
                parents.append(from_hex(merging))
            elif stage_value is not None:
                tree = self._carry_stage(tree, old_value, head_tree)
            if merging is None and not allow_empty and tree == head_tree:
                raise NothingToDoError("nothing to commit (stage a memory first, or allow empty)")
            new_id = self._write_commit(tree, parents, author, message, meta)
            self._move_ref(ref, old_value, new_id)
            if stage_value is not None:
                self._move_stage(stage_value, None)
            self._clear_merge_state()
        return new_id

    def _carry_stage(self, stage: bytes, head: str | None, head_tree: bytes) -> bytes:
        """Return the stage moved onto ``head`` if the branch moved since it was staged.

        Another writer of a shared store (or a pull) may have committed to the
        branch after these changes were staged; committing the stage's tree as
        it is would silently undo their commits. The staged changes are merged
        three ways onto the branch instead, as ``switch`` carries them.

        Raises:
            ConcurrentUpdateError: a staged change conflicts with the new commits.
        """
        base = self.store.read_ref(refnames.STAGE_BASE)
        if base is None or base == (head or to_hex(EMPTY_TREE_ID)):
            return stage  # staged on this very commit (or by a version that kept no base)
        base_id = from_hex(base)
        base_tree = EMPTY_TREE_ID if base_id == EMPTY_TREE_ID else self.load_commit(base_id).tree
        outcome = merge_trees(self.trees, base_tree, head_tree, stage)
        if outcome.conflicts:
            raise ConcurrentUpdateError(
                f"the branch moved since these changes were staged, and {len(outcome.conflicts)}"
                " of them conflict with the new commits; reset and stage them again"
            )
        return outcome.tree

    def _move_stage(
        self, old_value: str | None, new_value: str | None, base: str | None = None
    ) -> None:
        """Move STAGE, and record beside it (STAGE_BASE) the commit it is built on.

        ``base`` defaults to the head now; callers that read the stage's tree
        earlier pass the commit they read it from.
        """
        self._move_ref(refnames.STAGE, old_value, new_value)
        recorded = self.store.read_ref(refnames.STAGE_BASE)
        wanted = None if new_value is None else (base or self._head_or_empty())
        if wanted != recorded:
            self._move_ref(refnames.STAGE_BASE, recorded, wanted)

    def _write_commit(
        self,
        tree: bytes,
        parents: list[bytes],
        author: str,
        message: str,
        metadata: Metadata,
        *,
        timestamp: int | None = None,
    ) -> ObjectId:
        generation = 1 + max((self.load_commit(p).generation for p in parents), default=0)
        commit = Commit(
            tree=tree,
            parents=tuple(parents),
            generation=generation,
            author=author,
            message=message,
            timestamp=now_micros() if timestamp is None else timestamp,
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
            stage_tree, stage_value, base = self._stage_state()
            new_stage = target_tree
            if stage_value is not None:
                outcome = merge_trees(self.trees, self._tree_at(base), target_tree, stage_tree)
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
                self._move_stage(stage_value, wanted, target_value or to_hex(EMPTY_TREE_ID))
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
                self._set_stage(stage_value, stage_tree, target)
            else:
                if stage_value is not None:
                    self._move_stage(stage_value, None)
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
            ref, old = self._revert_target()
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

    def _revert_target(self) -> tuple[str, str]:
        """The ref a revert moves and the commit it holds; call inside a transaction.

        Raises:
            UncommittedChangesError: something is staged or a merge is stopped.
            UnknownRevisionError: HEAD has no commits yet.
        """
        if self.store.read_ref(refnames.STAGE) or self.store.read_ref(refnames.MERGE_HEAD):
            raise UncommittedChangesError("commit or reset staged changes before reverting")
        ref = self._head_ref()
        old = self.store.read_ref(ref)
        if old is None:
            raise UnknownRevisionError("HEAD has no commits yet")
        return ref, old

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
                self._move_stage(None, to_hex(tree), to_hex(ours))
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
            stage_tree, stage_value, base = self._stage_state()
            chosen = conflict.theirs if side == "theirs" else conflict.ours
            new_stage = self.trees.update(stage_tree, {key: chosen})
            new_state = self.trees.update(from_hex(state), {key: None})
            if new_stage != stage_tree:
                self._move_stage(stage_value, to_hex(new_stage), base)
            self._move_ref(refnames.MERGE_STATE, state, to_hex(new_state))
        return to_hex(key)

    def abort_merge(self) -> None:
        """Drop a stopped merge and its staged result; HEAD is untouched."""
        with self.transaction():
            if self.store.read_ref(refnames.MERGE_HEAD) is None:
                raise NothingToDoError("no merge in progress")
            stage = self.store.read_ref(refnames.STAGE)
            if stage is not None:
                self._move_stage(stage, None)
            self._clear_merge_state()

    def _clear_merge_state(self) -> None:
        for name in (refnames.MERGE_HEAD, refnames.MERGE_STATE):
            value = self.store.read_ref(name)
            if value is not None:
                self._move_ref(name, value, None)


__all__ = ["DEFAULT_AUTHOR", "RepositoryCore"]
