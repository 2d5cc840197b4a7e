"""The UI's writes, planned then done: revert an actor or a session, create a branch, merge.

Invariant this module owns: a write does what its confirmation page said,
or nothing. Each ``plan_*`` reads the repository and describes the write
(a revert is planned as a dry run), recording the commits it starts from;
each ``do_*`` checks those commits have not moved since, then writes, so a
branch that moved between the confirmation and the click refuses the write
(:class:`StaleConfirmationError`) instead of doing something nobody saw. A
merge that stops on conflicts is aborted before it returns: the repository
is left as it was, and the conflicts are raised (:class:`AbortedMergeError`).

Nothing here knows HTTP; the pages in :mod:`contextfs.ui.pages` call these
under the UI's lock and turn the errors into pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import ConflictError, InvalidInputError, MergeConflictError, UnknownRevisionError
from ..model import refs as refnames
from ..model.ids import ObjectId, short
from ..model.objects import MemoryAtom
from ..oplog.entry import check_session_id
from ..records import CommitInfo, ConflictInfo, Memory
from ..repo import Repository
from ..services.oplogs import ActorRevert

#: Whose changes a revert undoes.
RevertTarget = Literal["actor", "session"]
#: How many commits a merge confirmation lists by name.
LISTED = 20


class StaleConfirmationError(ConflictError):
    """The repository moved between the confirmation page and the write."""


class AbortedMergeError(MergeConflictError):
    """A merge stopped on conflicts and was aborted; ``conflicts`` names them."""

    def __init__(self, message: str, conflicts: tuple[ConflictInfo, ...]) -> None:
        super().__init__(message)
        self.conflicts = conflicts


@dataclass(frozen=True, slots=True)
class Restored:
    """A memory a revert restores, and what it holds now (None: absent now)."""

    id: ObjectId
    now: str | None


@dataclass(frozen=True, slots=True)
class RevertPlan:
    """What reverting ``target`` ``name`` on the current branch would do."""

    target: RevertTarget
    name: str
    branch: str | None
    head: ObjectId
    restored: tuple[Restored, ...]
    conflicts: tuple[ConflictInfo, ...]


@dataclass(frozen=True, slots=True)
class BranchPlan:
    """A branch to create: its name and the commit it will point at."""

    name: str
    at: str
    target: CommitInfo


@dataclass(frozen=True, slots=True)
class MergePlan:
    """What merging ``branch`` into the current branch would do.

    ``kind`` is ``up-to-date`` (nothing to do), ``fast-forward`` (the current
    branch moves to ``theirs``) or ``merge`` (a commit with two parents, unless
    memories conflict). ``incoming`` counts the commits it brings in and
    ``listed`` names the newest of them.
    """

    branch: str
    current: str | None
    ours: ObjectId | None
    theirs: ObjectId
    kind: Literal["up-to-date", "fast-forward", "merge"]
    incoming: int
    listed: tuple[CommitInfo, ...]


def memories(count: int) -> str:
    """``count`` memories, in words ("1 memory", "2 memories")."""
    return f"{count} memory" if count == 1 else f"{count} memories"


def describe(memory: Memory | None) -> str:
    """A memory as one line of text for a page (None: absent)."""
    if memory is None:
        return "(absent)"
    if isinstance(memory, MemoryAtom):
        return memory.content
    return f"{memory.molecule_type} molecule of {len(memory.atoms)} memories"


def moved_ref(repo: Repository) -> str:
    """The ref a commit on HEAD moves: the current branch's, or HEAD itself when detached."""
    branch = repo.current_branch
    return refnames.branch_ref(branch) if branch is not None else refnames.HEAD


# -- reverts -----------------------------------------------------------------------


def check_target(target: str, name: str) -> RevertTarget:
    """``target`` as a revert target, with ``name`` checked for it.

    Raises:
        InvalidInputError: not ``actor`` or ``session``, or an empty or unsafe name.
    """
    if target == "actor":
        if not name:
            raise InvalidInputError("actor must be non-empty text")
        return "actor"
    if target == "session":
        check_session_id(name)
        return "session"
    raise InvalidInputError(f"a revert undoes an 'actor' or a 'session', not {target!r}")


def plan_revert(repo: Repository, target: RevertTarget, name: str) -> RevertPlan:
    """What reverting ``name``'s changes would do, found by a dry run (nothing is written).

    Raises:
        NothingToDoError: they changed nothing that is still there to undo.
        UncommittedChangesError: something is staged or a merge is stopped.
    """
    head = repo.head()
    if head is None:
        raise UnknownRevisionError("HEAD has no commits yet")
    result = _revert(repo, target, name, author=None)
    restored = tuple(Restored(oid, _now(repo, oid)) for oid in result.reverted)
    return RevertPlan(target, name, repo.current_branch, head, restored, result.conflicts)


def do_revert(
    repo: Repository, target: RevertTarget, name: str, *, author: str, head: str
) -> ObjectId:
    """Revert ``name``'s changes in one commit by ``author``, if HEAD is still ``head``.

    Returns:
        The new commit.

    Raises:
        StaleConfirmationError: HEAD moved since the confirmation.
        MergeConflictError: every change was changed by others too; nothing written.
    """
    _require_unmoved("HEAD", repo.head(), head)
    result = _revert(repo, target, name, author=author)
    if result.commit is None:
        raise MergeConflictError(
            f"every memory {target} {name} changed was changed by others too; nothing was reverted"
        )
    return result.commit


def _revert(
    repo: Repository, target: RevertTarget, name: str, *, author: str | None
) -> ActorRevert:
    """Run the revert; ``author`` None: a dry run."""
    undo = repo.revert_actor if target == "actor" else repo.revert_session
    if author is None:
        return undo(name, dry_run=True)
    return undo(name, author=author)


def _now(repo: Repository, oid: ObjectId) -> str | None:
    try:
        return describe(repo.get(oid, refnames.HEAD))
    except UnknownRevisionError:
        return None


# -- branches ----------------------------------------------------------------------


def plan_branch(repo: Repository, name: str, at: str) -> BranchPlan:
    """The branch ``name`` to create at revision ``at``.

    Raises:
        InvalidInputError: a bad name, or a branch by that name exists.
        RevisionError: ``at`` names no commit.
    """
    refnames.branch_ref(name)  # checks the name
    if name in repo.branches():
        raise InvalidInputError(f"branch {name!r} already exists")
    target = next(repo.log([at], limit=1))
    return BranchPlan(name, at, target)


def do_branch(repo: Repository, name: str, target: str) -> ObjectId:
    """Create branch ``name`` at commit ``target`` (the full id the confirmation showed)."""
    return repo.create_branch(name, repo.resolve(target))


# -- merges ------------------------------------------------------------------------


def plan_merge(repo: Repository, branch: str) -> MergePlan:
    """What merging ``branch`` into the current branch would do (conflicts show only on merging).

    Raises:
        RevisionError: no branch by that name.
        InvalidInputError: merging the current branch into itself.
    """
    theirs = _branch(repo, branch)
    if branch == repo.current_branch:
        raise InvalidInputError(f"{branch!r} is the current branch: merge another one into it")
    ours = repo.head()
    if ours is None:
        return MergePlan(branch, repo.current_branch, None, theirs, "fast-forward", 0, ())
    ours_reach = {info.id for info in repo.log([ours])}
    theirs_log = list(repo.log([theirs]))
    incoming = [info for info in theirs_log if info.id not in ours_reach]
    kind: Literal["up-to-date", "fast-forward", "merge"] = "merge"
    if not incoming:
        kind = "up-to-date"
    elif any(info.id == ours for info in theirs_log):
        kind = "fast-forward"  # HEAD is an ancestor: the branch just moves
    listed = tuple(incoming[:LISTED])
    return MergePlan(branch, repo.current_branch, ours, theirs, kind, len(incoming), listed)


def do_merge(
    repo: Repository, branch: str, *, author: str, ours: str | None, theirs: str
) -> tuple[str, ObjectId | None]:
    """Merge ``branch`` into the current branch, if neither moved since the confirmation.

    Returns:
        How it ended (``merged``, ``fast-forward`` or ``up-to-date``) and the commit
        the current branch holds after it.

    Raises:
        StaleConfirmationError: HEAD or the branch moved since the confirmation.
        AbortedMergeError: memories conflict; the merge was aborted, nothing changed.
    """
    _require_unmoved("HEAD", repo.head(), ours or None)
    _require_unmoved(branch, _branch(repo, branch), theirs)
    result = repo.merge(branch, author=author)
    if result.status != "conflicts":
        return result.status, result.commit
    # A conflicted merge leaves MERGE_HEAD and a staged half-merge behind;
    # the page promised "nothing changed", so undo it before anyone sees it.
    repo.abort_merge()
    into = repo.current_branch or "HEAD"
    named = "; ".join(
        f"{short(c.id)} (ours: {describe(c.ours)!r}, theirs: {describe(c.theirs)!r})"
        for c in result.conflicts
    )
    raise AbortedMergeError(
        f"merging {branch} into {into} conflicts on {memories(len(result.conflicts))},"
        f" so nothing was changed: {named}",
        result.conflicts,
    )


def _branch(repo: Repository, name: str) -> ObjectId:
    found = repo.branches().get(name)
    if found is None:
        raise UnknownRevisionError(f"no branch named {name!r}")
    return found


def _require_unmoved(what: str, now: str | None, confirmed: str | None) -> None:
    if now != confirmed:
        was, is_now = (short(oid) if oid else "empty" for oid in (confirmed, now))
        raise StaleConfirmationError(
            f"{what} moved since you confirmed (it was {was}, now {is_now}): review it again"
        )


__all__ = [
    "AbortedMergeError",
    "BranchPlan",
    "MergePlan",
    "Restored",
    "RevertPlan",
    "RevertTarget",
    "StaleConfirmationError",
    "check_target",
    "describe",
    "do_branch",
    "do_merge",
    "do_revert",
    "memories",
    "moved_ref",
    "plan_branch",
    "plan_merge",
    "plan_revert",
]
