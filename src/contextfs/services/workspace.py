"""The workspace: the stage, commits, and the state machine of switching, resetting and merging.

This module owns the meaning of the workspace refs (a PostgreSQL store keeps
one set per checkout, as every git clone has its own index):

* ``STAGE``: the snapshot tree being prepared for the next commit; absent when
  it equals the snapshot of the commit it is built on.
* ``STAGE_BASE``: that commit (the empty tree's id for an unborn branch), read
  and written with ``STAGE``. A commit whose branch moved since (another
  writer of a shared store, a pull) merges the staged changes three ways onto
  the branch instead of silently undoing the new commits.
* ``MERGE_HEAD`` and ``MERGE_STATE``: while a merge is stopped on conflicts, the
  commit being merged in and a tree of the unresolved conflicts. The merged
  result waits in ``STAGE``.

Every mutation reads and writes inside one transaction and moves refs by
compare-and-swap, so a crash leaves either the old state or the new one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, NamedTuple

from ..errors import (
    ConcurrentUpdateError,
    InvalidInputError,
    MergeConflictError,
    NothingToDoError,
    UncommittedChangesError,
    UnknownRevisionError,
)
from ..history.commits import COMMIT, Commit, check_author, check_message
from ..history.graph import is_ancestor, merge_bases
from ..history.merge import decode_conflict, encode_conflict, merge_trees
from ..history.reflog import DEFAULT_WHO, reflog_reason
from ..history.tree import EMPTY_TREE_ID, item_key
from ..model import canonical
from ..model import refs as refnames
from ..model.canonical import Metadata
from ..model.ids import ObjectId, from_hex, is_hex_prefix, short, to_hex
from ..model.objects import (
    ATOM,
    MOLECULE,
    AtomEntry,
    MemoryAtom,
    MemoryMolecule,
    MoleculeEntry,
    check_relevance,
    check_tags,
    decode_entry,
)
from ..model.timeutil import from_micros, now_micros
from ..model.types import TypeSignature
from ..records import ConflictInfo, Memory, MergeResult, Status
from .indexes import Indexes
from .objects import MEMORY_KINDS, ObjectReader
from .refs import Refs
from .storage import Storage

#: Who a commit is by when nobody says.
DEFAULT_AUTHOR = DEFAULT_WHO  # commits and reflog entries name the same nobody

Side = Literal["ours", "theirs"]
ProgressCallback = Callable[[int], None]
#: An object to store: ``(id, kind, canonical bytes)``.
StoredTriple = tuple[bytes, str, bytes]

UNSET: object = object()


class StageState(NamedTuple):
    """The stage as read in one go: its tree, the ``STAGE`` ref, and the commit it is built on.

    ``value`` is None when nothing is staged (the tree is then the base's);
    ``base`` is a full commit id, or the empty tree's id for an unborn branch.
    """

    tree: bytes
    value: str | None
    base: str


class Workspace:
    """Stage, commit, switch, reset, revert and merge: the refs one checkout moves."""

    def __init__(
        self,
        storage: Storage,
        objects: ObjectReader,
        refs: Refs,
        indexes: Indexes,
    ) -> None:
        self._storage = storage
        self.store = storage.store
        self.trees = storage.trees
        self._objects = objects
        self._refs = refs
        self._indexes = indexes

    # -- reading the stage -----------------------------------------------------------

    def stage_state(self) -> StageState:
        """Return the stage's tree, the ``STAGE`` ref's value, and the commit it is built on."""
        value = self.store.read_ref(refnames.STAGE)
        if value is not None:
            base = self.store.read_ref(refnames.STAGE_BASE)
            return StageState(
                from_hex(value), value, base if base is not None else self._refs.head_or_empty()
            )
        head = self._refs.head_id()
        if head is None:
            return StageState(EMPTY_TREE_ID, None, to_hex(EMPTY_TREE_ID))
        return StageState(self._objects.commit(head).tree, None, to_hex(head))

    def stage_tree(self) -> bytes:
        """The snapshot the next commit would record."""
        return self.stage_state().tree

    def tree_of(self, revision: str | None) -> bytes:
        """The snapshot of ``revision``, or of the stage when it is None."""
        return self.stage_tree() if revision is None else self._refs.tree(revision)

    def staged_key(self, ref: str) -> tuple[bytes, bytes]:
        """Resolve an atom or molecule id prefix to a key in the stage, and its item.

        Raises:
            UnknownRevisionError: the stage holds no such memory.
        """
        key = self._objects.memory_key(ref, MEMORY_KINDS)
        item = self.trees.get(self.stage_tree(), key)
        if item is None:
            raise UnknownRevisionError(f"memory {ref!r} is not in the stage")
        return key, item

    def staged(self, ref: str) -> Memory:
        """Return the staged memory whose id starts with ``ref``."""
        return self._objects.items([self.staged_key(ref)[1]])[0]

    def status(self) -> Status:
        """Report the branch, HEAD, staged changes and any merge in progress."""
        with self._storage.transaction():  # one consistent view of HEAD, STAGE and the merge
            tree, _, base = self.stage_state()
            merging = self.store.read_ref(refnames.MERGE_HEAD)
            return Status(
                branch=self._refs.current_branch,
                head=self._refs.head(),
                changes=tuple(self._objects.changes(self._objects.tree_at(from_hex(base)), tree)),
                merging=ObjectId(merging) if merging else None,
                conflicts=self.conflicts(),
            )

    # -- staging ---------------------------------------------------------------------

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
        objects: list[StoredTriple] = []
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
        with self._storage.transaction():
            removed = [self.staged_key(ref)[0] for ref in refs]
            changes.update(dict.fromkeys(removed))
            self.write_stage(changes, objects)
        return added, [to_hex(key) for key in removed]

    def add_molecule(self, molecule: MemoryMolecule) -> ObjectId:
        """Stage a molecule and every atom in it."""
        objects: list[StoredTriple] = [(molecule.digest, MOLECULE, molecule.encode())]
        changes: dict[bytes, bytes | None] = {
            molecule.digest: MoleculeEntry(molecule.digest).encode()
        }
        for atom in molecule.atoms:
            check_relevance(atom.relevance_score)
            objects.append((atom.digest, ATOM, atom.body))
            changes[atom.digest] = atom.entry.encode()
        with self._storage.transaction():
            self.write_stage(changes, objects)
        return molecule.molecule_hash

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
        relevance: float | object = UNSET,
        source: str | object = UNSET,
        tags: Iterable[str] | object = UNSET,
        abstract: str | object | None = UNSET,
        overview: str | object | None = UNSET,
    ) -> ObjectId:
        """Change a staged atom's entry fields; the atom itself is unchanged."""
        fields: dict[str, Any] = {}
        if relevance is not UNSET:
            fields["relevance"] = check_relevance(relevance)
        if source is not UNSET:
            if not isinstance(source, str):
                raise InvalidInputError(f"source must be text, got {source!r}")
            fields["source"] = source
        if tags is not UNSET:
            fields["tags"] = check_tags(tags)  # type: ignore[arg-type]
        for name, value in (("abstract", abstract), ("overview", overview)):
            if value is not UNSET:
                if value is not None and not isinstance(value, str):
                    raise InvalidInputError(f"{name} must be text or None, got {value!r}")
                fields[name] = value
        with self._storage.transaction():
            key, item = self.staged_key(ref)
            entry = decode_entry(item)
            if not isinstance(entry, AtomEntry):
                raise InvalidInputError(f"{ref!r} is a molecule; molecules have no entry fields")
            self.write_stage({key: dataclasses.replace(entry, **fields).encode()}, [])
        return to_hex(key)

    def write_stage(
        self, changes: Mapping[bytes, bytes | None], objects: list[StoredTriple]
    ) -> None:
        """Store ``objects`` and apply ``changes`` (key -> item, None removes) to the stage.

        Call inside a transaction. New atoms are queued for the search index.
        """
        tree, old_value, base = self.stage_state()
        new_tree = self.trees.update(tree, changes)
        self.store.put_objects(objects)
        atoms = [oid for oid, kind, _ in objects if kind == ATOM]
        if atoms:
            self._indexes.search.defer(atoms)
        self.set_stage(old_value, new_tree, base)

    def set_stage(self, old_value: str | None, tree: bytes, base: str | None = None) -> None:
        """Make ``tree`` the stage, built on commit ``base`` (default: the head now).

        ``STAGE`` is dropped when ``tree`` is the base's own snapshot and no
        merge is stopped. Call inside a transaction.
        """
        base = base if base is not None else self._refs.head_or_empty()
        new_value = (
            None
            if tree == self._objects.tree_at(from_hex(base))
            and self.store.read_ref(refnames.MERGE_HEAD) is None
            else to_hex(tree)
        )
        if new_value != old_value:
            self._move_stage(old_value, new_value, base)

    def _move_stage(
        self, old_value: str | None, new_value: str | None, base: str | None = None
    ) -> None:
        """Move STAGE, and record beside it (STAGE_BASE) the commit it is built on.

        ``base`` defaults to the head now; callers that read the stage's tree
        earlier pass the commit they read it from.
        """
        self._refs.move(refnames.STAGE, old_value, new_value)
        recorded = self.store.read_ref(refnames.STAGE_BASE)
        wanted = None if new_value is None else (base or self._refs.head_or_empty())
        if wanted != recorded:
            self._refs.move(refnames.STAGE_BASE, recorded, wanted)

    # -- committing ------------------------------------------------------------------

    def commit(
        self,
        message: str,
        *,
        author: str = DEFAULT_AUTHOR,
        allow_empty: bool = False,
        metadata: Metadata | None = None,
        expect_head: str | object | None = UNSET,
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
        with self._storage.transaction():
            ref = self._refs.head_ref()
            old_value = self.store.read_ref(ref)
            if expect_head is not UNSET and expect_head != old_value:
                raise ConcurrentUpdateError(
                    f"HEAD moved: expected {expect_head!r}, found {old_value!r}"
                )
            # Read once: with a shared store the branch may move while this runs.
            head_tree = (
                self._objects.commit(from_hex(old_value)).tree if old_value else EMPTY_TREE_ID
            )
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
            new_id = self.write_commit(tree, parents, author, message, meta)
            kind = "" if len(parents) == 1 else " (merge)" if parents else " (initial)"
            with reflog_reason(f"commit{kind}: {message}", author):
                self._refs.move(ref, old_value, new_id)
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
        base_tree = self._objects.tree_at(from_hex(base))
        outcome = merge_trees(self.trees, base_tree, head_tree, stage)
        if outcome.conflicts:
            raise ConcurrentUpdateError(
                f"the branch moved since these changes were staged, and {len(outcome.conflicts)}"
                " of them conflict with the new commits; reset and stage them again"
            )
        return outcome.tree

    def write_commit(
        self,
        tree: bytes,
        parents: list[bytes],
        author: str,
        message: str,
        metadata: Metadata,
        *,
        timestamp: int | None = None,
    ) -> ObjectId:
        """Store a commit of ``tree`` on ``parents`` and return its id; no ref moves.

        Call inside a transaction, and move a ref to the commit in the same one.
        """
        generation = 1 + max((self._objects.commit(p).generation for p in parents), default=0)
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

    # -- moving between versions -----------------------------------------------------

    def switch(self, name: str, *, create: bool = False, detach: bool = False) -> ObjectId | None:
        """Check out branch ``name`` (or, with ``detach``, any revision).

        Staged changes are carried over when they apply cleanly to the target;
        otherwise the switch is refused and nothing changes.
        """
        with self._storage.transaction():
            if self.store.read_ref(refnames.MERGE_HEAD) is not None:
                raise UncommittedChangesError("a merge is in progress; commit or abort it first")
            if create:
                self._refs.create_branch(name)
            if detach:
                target_value: str | None = self._refs.resolve(name)
                head_value = target_value
            else:
                ref = refnames.branch_ref(name)
                target_value = self.store.read_ref(ref)
                if target_value is None and name != self._refs.current_branch:
                    raise UnknownRevisionError(f"no branch named {name!r}")
                head_value = refnames.symbolic(ref)
            target_tree = (
                self._objects.commit(from_hex(target_value)).tree if target_value else EMPTY_TREE_ID
            )
            stage_tree, stage_value, base = self.stage_state()
            new_stage = target_tree
            if stage_value is not None:
                outcome = merge_trees(
                    self.trees, self._objects.tree_at(from_hex(base)), target_tree, stage_tree
                )
                if outcome.conflicts:
                    raise UncommittedChangesError(
                        f"staged changes to {len(outcome.conflicts)} memories "
                        f"conflict with {name!r}; "
                        "commit them or reset first"
                    )
                new_stage = outcome.tree
            old_head = self.store.read_ref(refnames.HEAD)
            before = self._refs.current_branch or (short(old_head) if old_head else "nothing")
            with reflog_reason(f"checkout: moving from {before} to {name}"):
                self._refs.move(refnames.HEAD, old_head, head_value)
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
        target = self._refs.resolve(revision)
        with self._storage.transaction():
            ref = self._refs.head_ref()
            old = self.store.read_ref(ref)
            stage_tree, stage_value, _ = self.stage_state()
            merging = self.store.read_ref(refnames.MERGE_HEAD) is not None
            if mode == "safe" and (stage_value is not None or merging):
                raise UncommittedChangesError(
                    "staged changes would be lost; commit them, or reset with mode 'hard'"
                )
            if mode == "soft" and merging:
                raise UncommittedChangesError(
                    "cannot do a soft reset in the middle of a merge; commit or abort it first"
                )
            with reflog_reason(f"reset: moving to {revision}"):
                self._refs.move(ref, old, target)
            if mode == "soft":
                self.set_stage(stage_value, stage_tree, target)
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
        oid = self._refs.resolve_id(revision)
        commit = self._objects.commit(oid)
        if commit.parents and not 1 <= mainline <= len(commit.parents):
            raise InvalidInputError(f"commit {short(oid)} has no parent number {mainline}")
        parent_tree = (
            self._objects.commit(commit.parents[mainline - 1]).tree
            if commit.parents
            else EMPTY_TREE_ID
        )
        with self._storage.transaction():
            ref, old = self.revert_target()
            head_tree = self._refs.head_tree()
            outcome = merge_trees(self.trees, commit.tree, head_tree, parent_tree)
            if outcome.conflicts:
                raise MergeConflictError(
                    f"reverting {short(oid)} conflicts on {len(outcome.conflicts)} memories"
                )
            if outcome.tree == head_tree:
                raise NothingToDoError(f"the changes of {short(oid)} are already undone")
            message = f'Revert "{commit.summary}"\n\nThis reverts commit {to_hex(oid)}.'
            new_id = self.write_commit(outcome.tree, [from_hex(old)], author, message, {})
            with reflog_reason(f"revert: {message}", author):
                self._refs.move(ref, old, new_id)
        return new_id

    def revert_target(self) -> tuple[str, str]:
        """The ref a revert moves and the commit it holds; call inside a transaction.

        Raises:
            UncommittedChangesError: something is staged or a merge is stopped.
            UnknownRevisionError: HEAD has no commits yet.
        """
        if self.store.read_ref(refnames.STAGE) or self.store.read_ref(refnames.MERGE_HEAD):
            raise UncommittedChangesError("commit or reset staged changes before reverting")
        ref = self._refs.head_ref()
        old = self.store.read_ref(ref)
        if old is None:
            raise UnknownRevisionError("HEAD has no commits yet")
        return ref, old

    # -- merging ---------------------------------------------------------------------

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
        theirs = self._refs.resolve_id(revision)
        with self._storage.transaction():
            if self.store.read_ref(refnames.MERGE_HEAD) is not None:
                raise UncommittedChangesError("a merge is already in progress")
            if self.store.read_ref(refnames.STAGE) is not None:
                raise UncommittedChangesError("commit or reset staged changes before merging")
            ref = self._refs.head_ref()
            old = self.store.read_ref(ref)
            ours = from_hex(old) if old else None
            commit = self._objects.commit
            if ours is not None and is_ancestor(commit, theirs, ours):
                return MergeResult("up-to-date", to_hex(ours))
            if ours is None or (fast_forward and is_ancestor(commit, ours, theirs)):
                with reflog_reason(f"merge {revision}: Fast-forward", author):
                    self._refs.move(ref, old, to_hex(theirs))
                return MergeResult("fast-forward", to_hex(theirs))
            outcome = merge_trees(
                self.trees, self._base_tree(ours, theirs), commit(ours).tree, commit(theirs).tree
            )
            tree = outcome.tree
            if outcome.conflicts and strategy is not None:
                picks = {
                    c.key: (c.theirs if strategy == "theirs" else c.ours) for c in outcome.conflicts
                }
                tree = self.trees.update(tree, picks)
            label = revision if not is_hex_prefix(revision) else short(theirs)
            branch = self._refs.current_branch or "HEAD"
            text = check_message(message or f"Merge {label} into {branch}")
            if outcome.conflicts and strategy is None:
                conflict_tree = self.trees.build(encode_conflict(c) for c in outcome.conflicts)
                self._move_stage(None, to_hex(tree), to_hex(ours))
                self._refs.move(refnames.MERGE_HEAD, None, to_hex(theirs))
                self._refs.move(refnames.MERGE_STATE, None, to_hex(conflict_tree))
                return MergeResult("conflicts", None, self.conflicts())
            new_id = self.write_commit(tree, [ours, theirs], author, text, {})
            with reflog_reason(f"merge {revision}: Merge made by the three-way strategy", author):
                self._refs.move(ref, old, new_id)
        return MergeResult("merged", new_id)

    def _base_tree(self, ours: bytes, theirs: bytes) -> bytes:
        """Return the snapshot to merge against: the merge base, or a virtual one.

        With several best common ancestors (a criss-cross history) they are
        folded into one virtual base, as git's recursive strategy does; an
        entry the bases disagree on keeps its value from their own common
        ancestor, so either side's change to it still shows as a change.
        """
        commit = self._objects.commit
        bases = merge_bases(commit, ours, theirs)
        if not bases:
            return EMPTY_TREE_ID
        tree = commit(bases[0]).tree
        for other in bases[1:]:
            inner = merge_bases(commit, bases[0], other)
            inner_tree = commit(inner[0]).tree if inner else EMPTY_TREE_ID
            outcome = merge_trees(self.trees, inner_tree, tree, commit(other).tree)
            tree = self.trees.update(outcome.tree, {c.key: c.base for c in outcome.conflicts})
        return tree

    def conflicts(self) -> tuple[ConflictInfo, ...]:
        """Return the unresolved conflicts of a stopped merge (empty otherwise)."""
        value = self.store.read_ref(refnames.MERGE_STATE)
        if value is None:
            return ()
        conflicts = [decode_conflict(item) for item in self.trees.items(from_hex(value))]
        return tuple(self._objects.conflict(c.key, c.base, c.ours, c.theirs) for c in conflicts)

    def resolve_conflict(self, ref: str, side: Side) -> ObjectId:
        """Settle one conflict by taking ``ours`` or ``theirs`` for that memory."""
        if side not in ("ours", "theirs"):
            raise InvalidInputError(f"side must be 'ours' or 'theirs', got {side!r}")
        with self._storage.transaction():
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
            stage_tree, stage_value, base = self.stage_state()
            chosen = conflict.theirs if side == "theirs" else conflict.ours
            new_stage = self.trees.update(stage_tree, {key: chosen})
            new_state = self.trees.update(from_hex(state), {key: None})
            if new_stage != stage_tree:
                self._move_stage(stage_value, to_hex(new_stage), base)
            self._refs.move(refnames.MERGE_STATE, state, to_hex(new_state))
        return to_hex(key)

    def abort_merge(self) -> None:
        """Drop a stopped merge and its staged result; HEAD is untouched."""
        with self._storage.transaction():
            if self.store.read_ref(refnames.MERGE_HEAD) is None:
                raise NothingToDoError("no merge in progress")
            stage = self.store.read_ref(refnames.STAGE)
            if stage is not None:
                self._move_stage(stage, None)
            self._clear_merge_state()

    def merge_in_progress(self) -> bool:
        """Whether a merge is stopped on conflicts."""
        return self.store.read_ref(refnames.MERGE_HEAD) is not None

    def _clear_merge_state(self) -> None:
        for name in (refnames.MERGE_HEAD, refnames.MERGE_STATE):
            value = self.store.read_ref(name)
            if value is not None:
                self._refs.move(name, value, None)


__all__ = ["DEFAULT_AUTHOR", "ProgressCallback", "Side", "StageState", "Workspace"]
