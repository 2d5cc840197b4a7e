"""Refs: HEAD, branches and tags, revision names, and the compare-and-swap that moves them.

Every ref moves through :meth:`Refs.move`, a compare-and-swap on the store, so
two writers never lose an update: the loser gets a
:class:`~contextfs.errors.ConcurrentUpdateError` and re-reads.
"""

from __future__ import annotations

import re

from ..errors import (
    ConcurrentUpdateError,
    CorruptObjectError,
    InvalidInputError,
    MissingObjectError,
    UncommittedChangesError,
    UnknownRevisionError,
)
from ..history.commits import COMMIT
from ..history.graph import is_ancestor
from ..history.reflog import is_logged, log_move, reflog_reason
from ..history.revisions import parse_revision
from ..history.tree import EMPTY_TREE_ID
from ..model import refs as refnames
from ..model.ids import ObjectId, from_hex, short, to_hex
from ..store.base import ReflogEntry, ReflogStore
from .objects import ObjectReader
from .storage import Storage

#: ``NAME@{n}``: where ref NAME (HEAD when empty) was n moves ago, from the reflog.
_REFLOG_SELECTOR = re.compile(r"(.*)@\{([0-9]+)\}")


class Refs:
    """Names for commits: HEAD, branches, tags and revision expressions."""

    def __init__(self, storage: Storage, objects: ObjectReader) -> None:
        self._storage = storage
        self.store = storage.store
        self._objects = objects

    # -- HEAD ------------------------------------------------------------------------

    @property
    def current_branch(self) -> str | None:
        """The checked-out branch's short name, or None when HEAD is detached."""
        target = refnames.symbolic_target(self.store.read_ref(refnames.HEAD))
        return (
            target[len(refnames.HEADS) :] if target and target.startswith(refnames.HEADS) else None
        )

    def head_ref(self) -> str:
        """Return the ref a commit moves: the current branch's, or HEAD when detached.

        Raises:
            CorruptObjectError: HEAD is missing.
        """
        value = self.store.read_ref(refnames.HEAD)
        if value is None:
            raise CorruptObjectError("HEAD is missing")
        return refnames.symbolic_target(value) or refnames.HEAD

    def head_id(self) -> bytes | None:
        """The raw id of the commit HEAD points at, or None before the first commit."""
        value = self.store.read_ref(self.head_ref())
        return from_hex(value) if value is not None else None

    def head(self) -> ObjectId | None:
        """The commit HEAD points at, or None before the first commit."""
        oid = self.head_id()
        return to_hex(oid) if oid is not None else None

    def head_or_empty(self) -> str:
        """HEAD's commit id, or the empty tree's id standing for an unborn branch."""
        head = self.head_id()
        return to_hex(head) if head is not None else to_hex(EMPTY_TREE_ID)

    def head_tree(self) -> bytes:
        """The snapshot HEAD's commit names (the empty tree before the first commit)."""
        head = self.head_id()
        return self._objects.commit(head).tree if head is not None else EMPTY_TREE_ID

    # -- revisions -------------------------------------------------------------------

    def resolve(self, revision: str) -> ObjectId:
        """Return the full id of the commit ``revision`` names.

        Accepts ``HEAD``, branch and tag names, ``refs/...`` names, any unique
        id prefix of at least four hex digits, ``NAME@{n}`` (where HEAD or a
        branch was n moves ago, from the reflog), and ``~n`` / ``^n`` suffixes.

        Raises:
            UnknownRevisionError: nothing matches.
            AmbiguousRevisionError: an id prefix matches several commits.
        """
        return to_hex(self.resolve_id(revision))

    def resolve_id(self, revision: str) -> bytes:
        """Return the raw id of the commit ``revision`` names (see :meth:`resolve`)."""
        base, steps = parse_revision(revision)
        oid = self._resolve_base(base, revision)
        commit = self._objects.commit
        for op, number in steps:
            current = commit(oid)
            if op == "~":
                for _ in range(number):
                    if not current.parents:
                        raise UnknownRevisionError(f"revision {revision!r} goes past a root commit")
                    oid = current.parents[0]
                    current = commit(oid)
            elif number:
                if number > len(current.parents):
                    raise UnknownRevisionError(
                        f"revision {revision!r}: {short(oid)} has {len(current.parents)} parent(s)"
                    )
                oid = current.parents[number - 1]
        return oid

    def tree(self, revision: str) -> bytes:
        """Return the snapshot tree of the commit ``revision`` names."""
        return self._objects.commit(self.resolve_id(revision)).tree

    def _resolve_base(self, name: str, revision: str) -> bytes:
        selector = _REFLOG_SELECTOR.fullmatch(name)
        if selector is not None:
            return self._from_reflog(selector.group(1) or refnames.HEAD, selector.group(2))
        if name == refnames.HEAD:
            oid = self.head_id()
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
        return self._objects.unique(name.lower(), (COMMIT,), f"revision {revision!r}")

    def _from_reflog(self, ref: str, number: str) -> bytes:
        """The commit ``ref@{number}`` names: where ``ref`` was ``number`` moves ago."""
        if len(number) > 7:
            raise UnknownRevisionError(f"{ref}@{{{number}}} goes too far back")
        back = int(number)
        try:
            entries = self.reflog(ref, limit=back + 1)
        except InvalidInputError as exc:
            raise UnknownRevisionError(str(exc)) from None
        if len(entries) <= back:
            raise UnknownRevisionError(
                f"{ref}@{{{back}}}: the reflog of {ref} holds {len(entries)} move(s)"
            )
        value = entries[back].new
        if value is None:
            raise UnknownRevisionError(f"{ref}@{{{back}}}: {ref} was deleted by that move")
        return from_hex(value)

    # -- branches and tags -----------------------------------------------------------

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
        with self._storage.transaction():
            old = self.store.read_ref(ref)
            if old is not None and not force:
                raise InvalidInputError(f"branch {name!r} already exists")
            if force and old is not None and self.current_branch == name:
                raise InvalidInputError(f"cannot force-move the checked-out branch {name!r}")
            why = f"branch: {'Reset' if old is not None else 'Created'} from {start}"
            with reflog_reason(why):
                self.move(ref, old, target)
        return target

    def delete_branch(self, name: str, *, force: bool = False) -> ObjectId:
        """Delete branch ``name``; unless ``force``, only if merged into HEAD."""
        ref = refnames.branch_ref(name)
        with self._storage.transaction():
            value = self.store.read_ref(ref)
            if value is None:
                raise UnknownRevisionError(f"no branch named {name!r}")
            if self.current_branch == name:
                raise InvalidInputError(f"cannot delete the checked-out branch {name!r}")
            head = self.head_id()
            if not force and (
                head is None or not is_ancestor(self._objects.commit, from_hex(value), head)
            ):
                raise UncommittedChangesError(
                    f"branch {name!r} is not merged into HEAD; use force to delete it"
                )
            with reflog_reason("branch: deleted"):
                self.move(ref, value, None)
        return ObjectId(value)

    def create_tag(self, name: str, revision: str = refnames.HEAD) -> ObjectId:
        """Tag the commit ``revision`` as ``name`` (tags never move)."""
        ref = refnames.tag_ref(name)
        target = self.resolve(revision)
        with self.store.transaction():
            if not self.store.set_ref_if_equals(ref, None, target):
                raise InvalidInputError(f"tag {name!r} already exists")
            if not self._stored(target):  # gc collected it meanwhile
                raise MissingObjectError(f"{short(target)} is no longer stored; no tag made")
        return target

    def delete_tag(self, name: str) -> ObjectId:
        """Delete tag ``name``."""
        ref = refnames.tag_ref(name)
        value = self.store.read_ref(ref)
        if value is None or not self.store.set_ref_if_equals(ref, value, None):
            raise UnknownRevisionError(f"no tag named {name!r}")
        return ObjectId(value)

    # -- moving refs -----------------------------------------------------------------

    def update_ref(self, name: str, new: str | None, expected_old: str | None) -> None:
        """Move branch or tag ref ``name`` from ``expected_old`` to ``new`` (full ids or None).

        Raises:
            InvalidInputError: ``name`` is not a branch or tag ref, or an id is malformed.
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
        self.move(name, expected_old, new)

    def move(self, name: str, old: str | None, new: str | None) -> None:
        """Move any ref ``name`` from ``old`` to ``new`` by compare-and-swap (None: absent).

        Raises:
            ConcurrentUpdateError: the ref did not hold ``old``; nothing changed.
        """
        with self.store.transaction():  # the reflog entry lands with the move
            if not self.store.set_ref_if_equals(name, old, new):
                expected = short(old) if old else "nothing"
                raise ConcurrentUpdateError(
                    f"{name} was updated by someone else (expected {expected});"
                    " re-read and try again"
                )
            if new is not None and not refnames.symbolic_target(new) and not self._stored(new):
                raise MissingObjectError(  # gc collected it since the caller read it
                    f"{name} cannot point at {short(new)}: it is no longer stored"
                    " (garbage-collected); nothing changed"
                )
            log_move(self.store, name, old, new)

    def _stored(self, value: str) -> bool:
        """Whether the object a ref value names is stored, or written in this transaction."""
        oid = from_hex(value)
        if oid == EMPTY_TREE_ID or self._storage.trees.is_buffered(oid):
            return True  # the empty snapshot is read without being stored
        return bool(self.store.has_objects([oid]))

    def reflog(self, ref: str = refnames.HEAD, *, limit: int | None = None) -> list[ReflogEntry]:
        """Every move of ``ref`` (HEAD or a branch, short names allowed), newest first.

        Raises:
            InvalidInputError: ``ref`` is not HEAD, a branch or a remote-tracking
                branch, or ``limit`` is negative.
        """
        if limit is not None and (isinstance(limit, bool) or limit < 0):
            raise InvalidInputError(f"limit must be a non-negative integer, got {limit!r}")
        name = ref if ref == refnames.HEAD or ref.startswith("refs/") else None
        if name is None:  # a short name: a branch, else a remote-tracking branch
            name = refnames.branch_ref(ref)  # checks the short name
            remote = refnames.REMOTES + ref
            if self.store.read_ref(name) is None and self.store.read_ref(remote) is not None:
                name = remote
        if not is_logged(name):
            raise InvalidInputError(f"no reflog for {ref!r}: only HEAD and branches are logged")
        if not isinstance(self.store, ReflogStore):
            return []
        return self.store.read_reflog(name, limit)


__all__ = ["Refs"]
