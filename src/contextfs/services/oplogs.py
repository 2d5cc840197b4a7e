"""Live sessions: op logs, crystallising them into commits, and undoing one actor.

Several agents write to a session's op log at once (:mod:`contextfs.oplog`);
:meth:`OpLogSessions.commit` turns the ops into a commit
(:mod:`contextfs.services.crystallise`); and when one agent's run went wrong,
:meth:`OpLogSessions.revert_actor` (or :meth:`~OpLogSessions.revert_session`)
writes a commit that undoes exactly its changes and keeps everyone else's,
reporting the entries others have changed since instead of overwriting them.
Where a session's log lives is the store's backend's choice
(:mod:`contextfs.backends`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backends import backend_for
from ..errors import InvalidInputError, MergeConflictError, NothingToDoError
from ..history.attribution import Touch, plan_revert
from ..history.commits import check_author
from ..history.reflog import reflog_reason
from ..model.ids import ObjectId, from_hex, to_hex
from ..oplog.base import OpLogBackend
from ..oplog.crystallise import OplogCommit
from ..oplog.entry import check_session_id
from ..records import ConflictInfo
from .crystallise import Crystalliser
from .objects import ObjectReader
from .refs import Refs
from .storage import Storage
from .workspace import DEFAULT_AUTHOR, Workspace


@dataclass(frozen=True, slots=True)
class ActorRevert:
    """What a revert of one actor's (or session's) changes did.

    ``commit`` is the new commit (None on a dry run, or when every change
    conflicted); ``reverted`` the ids of the memories restored; ``conflicts``
    the memories left alone because someone else changed them too: ``base``
    is the value after the reverted changes, ``ours`` the value now and
    ``theirs`` the value before the reverted changes.
    """

    commit: ObjectId | None
    reverted: tuple[ObjectId, ...]
    conflicts: tuple[ConflictInfo, ...]


@dataclass(frozen=True, slots=True)
class _RevertPlan:
    """Whose changes a revert undoes: ``matches`` a touch of theirs, ``pure`` theirs alone."""

    label: str
    matches: Callable[[Touch], bool]
    pure: Callable[[Touch], bool]
    record: dict[str, Any]


class OpLogSessions:
    """The op logs of a repository's sessions, and the commits made from them."""

    def __init__(
        self,
        storage: Storage,
        objects: ObjectReader,
        refs: Refs,
        workspace: Workspace,
        crystalliser: Crystalliser,
        folder: Path | None,
    ) -> None:
        self._storage = storage
        self.store = storage.store
        self._objects = objects
        self._refs = refs
        self._workspace = workspace
        self._crystalliser = crystalliser
        self._folder = folder

    def oplog(self, session: str) -> OpLogBackend:
        """Return the op log of ``session``: where the repository's store is, or its folder.

        A repository in PostgreSQL keeps its sessions in that database, so
        agents on every machine share them live
        (:class:`~contextfs.oplog.postgres_log.PostgresOpLog`); otherwise the
        log is a folder of files beside the store
        (:class:`~contextfs.oplog.log.OpLog`).

        Raises:
            InvalidInputError: the session id is unsafe, or the repository
                lives only in memory (give :meth:`commit` an OpLog instead).
        """
        check_session_id(session)
        return backend_for(self.store).oplog(self.store, self._folder, session)

    def sessions(self) -> list[str]:
        """Return the sessions that have an op log in this repository, sorted."""
        return backend_for(self.store).oplog_sessions(self.store, self._folder)

    def commit(
        self,
        session: str | OpLogBackend,
        *,
        branch: str | None = None,
        message: str | None = None,
    ) -> OplogCommit:
        """Crystallise a session's ops since its checkpoint into one commit.

        See :class:`~contextfs.services.crystallise.Crystalliser`: the commit
        and the checkpoint are written in one step; the same ops on the same
        base give the same commit on every machine.
        """
        log = self.oplog(session) if isinstance(session, str) else session
        return self._crystalliser.commit(log, branch=branch, message=message)

    # -- undoing one actor -----------------------------------------------------------

    def revert_actor(
        self,
        actor: str,
        since: str | None = None,
        *,
        author: str = DEFAULT_AUTHOR,
        strict: bool = False,
        dry_run: bool = False,
    ) -> ActorRevert:
        """Undo every change ``actor`` made (after ``since``) on the current branch.

        Changes count as the actor's when they authored a plain commit or when
        their ops decided an entry in a crystallised commit. An entry anyone
        else also changed (in the same crystallised commit, in between or
        since) is reported as a conflict and left as it is.

        Args:
            since: a revision whose history is kept (default: undo all of it).
            strict: write nothing if there is any conflict.
            dry_run: plan and report, write nothing.

        Raises:
            NothingToDoError: the actor changed nothing that is still there to undo.
            MergeConflictError: ``strict`` and some entry conflicts.
        """
        if not isinstance(actor, str) or not actor:
            raise InvalidInputError("actor must be non-empty text")
        plan = _RevertPlan(
            f"actor {actor}",
            matches=lambda touch: actor in touch.actors,
            pure=lambda touch: touch.actors == {actor},
            record={"actor": actor},
        )
        return self._revert(plan, since, author, strict, dry_run)

    def revert_session(
        self,
        session: str,
        since: str | None = None,
        *,
        author: str = DEFAULT_AUTHOR,
        strict: bool = False,
        dry_run: bool = False,
    ) -> ActorRevert:
        """Undo the changes of the commits crystallised from ``session`` (see revert_actor)."""
        check_session_id(session)

        def matches(touch: Touch) -> bool:
            return touch.session == session

        plan = _RevertPlan(f"session {session}", matches, matches, {"session": session})
        return self._revert(plan, since, author, strict, dry_run)

    def _revert(
        self, plan: _RevertPlan, since: str | None, author: str, strict: bool, dry_run: bool
    ) -> ActorRevert:
        check_author(author)
        exclude = [self._refs.resolve_id(since)] if since is not None else []
        with self._storage.transaction():
            ref, old = self._workspace.revert_target()
            planned = plan_revert(
                self._storage.trees,
                self._objects.commit,
                from_hex(old),
                matches=plan.matches,
                pure=plan.pure,
                exclude=exclude,
            )
            conflicts = tuple(
                self._objects.conflict(key, *sides)
                for key, sides in sorted(planned.conflicts.items())
            )
            reverted = tuple(to_hex(key) for key in sorted(planned.restore))
            where = f" since {since}" if since is not None else ""
            if not planned.restore and not conflicts:
                raise NothingToDoError(f"{plan.label} changed nothing to undo{where}")
            if strict and conflicts:
                raise MergeConflictError(
                    f"{len(conflicts)} memories {plan.label} changed were changed by others too;"
                    " nothing was reverted"
                )
            if dry_run or not planned.restore:
                return ActorRevert(None, reverted, conflicts)
            tree = self._storage.trees.update(
                self._objects.commit(from_hex(old)).tree, planned.restore
            )
            message = (
                f"Revert the changes of {plan.label}{where}\n\n{len(reverted)} memories restored"
            )
            if conflicts:
                message += f"; {len(conflicts)} left as they are (changed by others too)"
            meta = {"revert": {**plan.record, "since": to_hex(exclude[0]) if exclude else None}}
            new_id = self._workspace.write_commit(
                tree, [from_hex(old)], author, message + ".", meta
            )
            with reflog_reason(f"revert-actor: {plan.label}", author):
                self._refs.move(ref, old, new_id)
        return ActorRevert(new_id, reverted, conflicts)


__all__ = ["ActorRevert", "OpLogSessions"]
