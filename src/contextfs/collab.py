"""The live-collaboration part of the Repository: op logs, crystallising, undoing one actor.

Several agents write to a session's op log at once (:mod:`contextfs.oplog`);
:meth:`CollaborativeCore.commit_oplog` turns the ops into a commit; and when
one agent's run went wrong, :meth:`CollaborativeCore.revert_actor` (or
:meth:`~CollaborativeCore.revert_session`) writes a commit that undoes exactly
its changes and keeps everyone else's, reporting the entries others have
changed since instead of overwriting them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

from .core import DEFAULT_AUTHOR, RepositoryCore
from .errors import (
    InvalidInputError,
    MergeConflictError,
    NothingToDoError,
)
from .history.attribution import Touch, plan_revert
from .history.commits import check_author
from .model.ids import ObjectId, from_hex, to_hex
from .model.objects import decode_entry
from .oplog.base import OpLogBackend
from .oplog.crystallise import OplogCommit, commit_oplog
from .oplog.entry import check_session_id
from .oplog.log import OpLog, sessions_in
from .records import ConflictInfo
from .store.base import Store

if TYPE_CHECKING:
    from .store.postgres import PostgresStore


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


class CollaborativeCore(RepositoryCore):
    """Op-log sessions on top of the version-control core."""

    # -- sessions ---------------------------------------------------------------------

    def oplog(self, session: str) -> OpLogBackend:
        """Return the op log of ``session``: where the repository's store is, or its folder.

        A repository in PostgreSQL keeps its sessions in that database, so
        agents on every machine share them live
        (:class:`~contextfs.oplog.postgres_log.PostgresOpLog`); otherwise the
        log is a folder of files beside the store (:class:`OpLog`).

        Raises:
            InvalidInputError: the session id is unsafe, or the repository
                lives only in memory (give :meth:`commit_oplog` an OpLog instead).
        """
        check_session_id(session)
        if _is_postgres(self.store):
            from .oplog.postgres_log import PostgresOpLog

            return PostgresOpLog(self.store, session)
        if self.path is None:
            raise InvalidInputError(
                "an in-memory repository has no op-log folder; open an OpLog yourself"
            )
        return OpLog.in_folder(self.path, session)

    def oplog_sessions(self) -> list[str]:
        """Return the sessions that have an op log in this repository, sorted."""
        if _is_postgres(self.store):
            from .oplog.postgres_log import sessions_in_store

            return sessions_in_store(self.store)
        return sessions_in(self.path) if self.path is not None else []

    def commit_oplog(
        self,
        session: str | OpLogBackend,
        *,
        branch: str | None = None,
        message: str | None = None,
    ) -> OplogCommit:
        """Crystallise a session's ops since its checkpoint into one commit.

        See :func:`contextfs.oplog.crystallise.commit_oplog`: the commit and
        the checkpoint are written in one step; the same ops on the same base
        give the same commit on every machine.
        """
        log = self.oplog(session) if isinstance(session, str) else session
        return commit_oplog(self, log, branch=branch, message=message)

    # -- undoing one actor ----------------------------------------------------------

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

        def matches(touch: Touch) -> bool:
            return actor in touch.actors

        def pure(touch: Touch) -> bool:
            return touch.actors == {actor}

        return self._revert_where(
            f"actor {actor}", matches, pure, since, author, strict, dry_run, {"actor": actor}
        )

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

        return self._revert_where(
            f"session {session}",
            matches,
            matches,
            since,
            author,
            strict,
            dry_run,
            {"session": session},
        )

    def _revert_where(
        self,
        label: str,
        matches: Callable[[Touch], bool],
        pure: Callable[[Touch], bool],
        since: str | None,
        author: str,
        strict: bool,
        dry_run: bool,
        record: dict[str, Any],
    ) -> ActorRevert:
        check_author(author)
        exclude = [self._resolve(since)] if since is not None else []
        with self.transaction():
            ref, old = self._revert_target()
            plan = plan_revert(
                self.trees,
                self.load_commit,
                from_hex(old),
                matches=matches,
                pure=pure,
                exclude=exclude,
            )
            conflicts = tuple(
                self._conflict_info(key, *sides) for key, sides in sorted(plan.conflicts.items())
            )
            reverted = tuple(to_hex(key) for key in sorted(plan.restore))
            where = f" since {since}" if since is not None else ""
            if not plan.restore and not conflicts:
                raise NothingToDoError(f"{label} changed nothing to undo{where}")
            if strict and conflicts:
                raise MergeConflictError(
                    f"{len(conflicts)} memories {label} changed were changed by others too;"
                    " nothing was reverted"
                )
            if dry_run or not plan.restore:
                return ActorRevert(None, reverted, conflicts)
            tree = self.trees.update(self.load_commit(from_hex(old)).tree, plan.restore)
            message = f"Revert the changes of {label}{where}\n\n{len(reverted)} memories restored"
            if conflicts:
                message += f"; {len(conflicts)} left as they are (changed by others too)"
            meta = {"revert": {**record, "since": to_hex(exclude[0]) if exclude else None}}
            new_id = self._write_commit(tree, [from_hex(old)], author, message + ".", meta)
            self._move_ref(ref, old, new_id)
        return ActorRevert(new_id, reverted, conflicts)

    def _conflict_info(
        self, key: bytes, after: bytes | None, now: bytes | None, before: bytes | None
    ) -> ConflictInfo:
        sides = [decode_entry(item) if item is not None else None for item in (after, now, before)]
        loaded = iter(self._load_memories(s for s in sides if s is not None))
        memories = [next(loaded) if s is not None else None for s in sides]
        return ConflictInfo(to_hex(key), *memories)


def _is_postgres(store: Store) -> TypeGuard[PostgresStore]:
    """Whether ``store`` is a PostgresStore, without importing psycopg.

    psycopg is an optional extra: if the module is not loaded, no store can be one.
    """
    module = sys.modules.get("contextfs.store.postgres")
    return module is not None and isinstance(store, module.PostgresStore)


__all__ = ["ActorRevert", "CollaborativeCore"]
