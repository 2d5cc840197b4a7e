"""Writes from MCP clients: ops in one session's log, crystallised into commits.

Invariants this module owns:

* every write an MCP client makes (``remember``, ``forget``) is a ``context``
  op appended to the op log of the server's session under the server's actor
  id, durable when :meth:`SessionWriter.append` returns (the log locks, stamps
  and fsyncs: :mod:`contextfs.oplog`);
* any number of servers, in any number of processes, may write one session at
  once: appends are serialised by the log's lock, crystallising by its commit
  lock (:func:`~contextfs.oplog.crystallise.commit_oplog`);
* a write is never lost: its op is pending until a crystallisation takes it
  into a commit. A writer that crystallises right after appending and finds
  nothing pending knows a concurrent writer's crystallisation took its ops
  (they were in the log before it asked), and reports that commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import (
    ConcurrentUpdateError,
    ContextFSError,
    InvalidInputError,
    NothingToDoError,
)
from ..history.commits import check_author
from ..model.ids import ObjectId
from ..model.objects import atom_digest
from ..model.types import TypeSignature
from ..oplog.context_ops import ADD_ATOM, ADD_MOLECULE, CONTEXT_DOMAIN
from ..oplog.crystallise import oplog_ref
from ..oplog.entry import MAX_NAME_LENGTH, OpEntry, check_session_id, make_op_entry
from ..repo import Repository
from .access import acting_as

#: Attempts at crystallising when a shared store's branch moved meanwhile.
RETRIES = 5


@dataclass(frozen=True, slots=True)
class Crystal:
    """The commit that holds a writer's ops.

    ``ops`` is how many ops this crystallisation took (0 when a concurrent
    writer's commit already held them), ``actors`` whose ops they were,
    ``skipped`` the ops that no longer applied, as ``(op_id, why)``.
    """

    commit: ObjectId
    branch: str | None
    ops: int
    applied: int
    actors: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]


class SessionWriter:
    """One actor's writes to one session of a repository.

    Raises:
        InvalidInputError: the actor or session name is unusable, or the
            repository has no place for op logs (it lives in memory only).
    """

    def __init__(self, repo: Repository, *, actor: str, session: str) -> None:
        check_author(actor)
        if len(actor) > MAX_NAME_LENGTH:
            raise InvalidInputError(f"actor is longer than {MAX_NAME_LENGTH} characters")
        self.repo = repo
        self._actor = actor
        self.session = check_session_id(session)
        self.log = repo.oplog(session)

    @property
    def actor(self) -> str:
        """Who writes now: the calling client's token name over HTTP, else the server's actor."""
        return acting_as(self._actor)

    def close(self) -> None:
        """Close the log's files; safe to call twice."""
        self.log.close()

    def append(self, ops: Sequence[Mapping[str, Any]]) -> list[OpEntry]:
        """Append context ops durably, all or none; return them as stored."""
        entries = [
            make_op_entry(self.actor, CONTEXT_DOMAIN, op, self.log.next_lamport_ts()) for op in ops
        ]
        return self.log.append_many(entries)

    def commit(self, message: str | None = None) -> Crystal:
        """Crystallise every pending op of the session (any actor's) into one commit.

        Raises:
            NothingToDoError: nothing is pending.
            UncommittedChangesError: a merge is stopped on the branch, or
                staged changes conflict with the ops.
        """
        for attempt in range(1, RETRIES + 1):
            try:
                done = self.repo.commit_oplog(self.log, message=message)
            except ConcurrentUpdateError:
                if attempt == RETRIES:
                    raise
                continue
            return Crystal(
                commit=done.commit,
                branch=done.branch,
                ops=done.ops,
                applied=done.applied,
                actors=done.actors,
                skipped=done.skipped,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def commit_appended(self, message: str | None = None) -> Crystal:
        """Crystallise right after an append: the ops are in this commit or a concurrent one.

        Raises:
            ContextFSError: the commit failed (the message says the ops stay
                pending, so the caller knows not to write them again).
        """
        try:
            return self.commit(message)
        except NothingToDoError:
            latest = self.repo.store.read_ref(oplog_ref(self.session))
            if latest is None:  # the log lost ops it acknowledged: never expected
                raise
            return Crystal(
                commit=ObjectId(latest),
                branch=self.repo.current_branch,
                ops=0,
                applied=0,
                actors=(),
                skipped=(),
            )
        except ContextFSError as exc:
            note = f"; the change is saved in session {self.session!r} and its next commit takes it"
            noted = _with_note(exc, note)
            if noted is exc:
                raise
            raise noted from exc

    def pending_keys(self) -> set[bytes]:
        """The atoms that pending ops of the session add (not yet in any commit)."""
        entries, _, _ = self.log.pending()
        return set(_added_keys(e["domain_op"] for e in entries if e["domain"] == CONTEXT_DOMAIN))

    def sessions_holding(self, type_sig: TypeSignature, content: str) -> list[str]:
        """Sessions whose op logs hold an op adding this atom (its text is written there)."""
        wanted = atom_digest(type_sig, content)
        found = []
        for name in self.repo.oplog_sessions():
            log = self.log if name == self.session else self.repo.oplog(name)
            try:
                ops = (e["domain_op"] for e in log.read_all() if e["domain"] == CONTEXT_DOMAIN)
                if wanted in set(_added_keys(ops)):
                    found.append(name)
            finally:
                if log is not self.log:
                    log.close()
        return found


def _with_note(exc: ContextFSError, note: str) -> ContextFSError:
    """``exc`` again, same type, its message extended (the type carries the exit code)."""
    try:
        return type(exc)(f"{exc}{note}")
    except TypeError:  # an error type whose constructor takes more than a message
        return exc


def _added_keys(ops: Iterable[Mapping[str, Any]]) -> Iterable[bytes]:
    """The ids of the atoms that ``add_atom`` and ``add_molecule`` ops add."""
    for op in ops:
        if op.get("op") == ADD_ATOM:
            bodies: Iterable[Any] = [op]
        elif op.get("op") == ADD_MOLECULE:
            bodies = op.get("atoms", [])
        else:
            continue
        for body in bodies:
            try:
                yield atom_digest(TypeSignature.parse(body.get("type", "String")), body["content"])
            except (InvalidInputError, KeyError, TypeError, AttributeError):
                continue  # an op that never applies adds nothing


__all__ = ["Crystal", "SessionWriter"]
