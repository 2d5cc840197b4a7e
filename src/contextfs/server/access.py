"""What each request needs of its connection's grant, and the request as that grant may send it.

The server checks every request against the :class:`~contextfs.tokens.Grant`
its connection shook hands with, before any handler runs: reads need any
token; pushes, commits and appended ops need a write token whose branches
cover what moves (a commit or an op lands on the served repository's current
branch); forcing a branch back or deleting a ref needs an admin token. A
request this module does not list needs admin, so a new request type is
closed until someone decides otherwise. A named token's writes are recorded
as its name, whatever the request claimed.
"""

from __future__ import annotations

import msgspec

from ..errors import PermissionDeniedError
from ..model import refs as refnames
from ..oplog.entry import reattribute
from ..repo import Repository
from ..tokens import Grant, Scope
from ..wire.messages import (
    Expand,
    Fetch,
    FetchPack,
    Have,
    Log,
    Message,
    Offer,
    OplogAppend,
    OplogSubscribe,
    Pull,
    Push,
    Query,
    Refs,
    Session,
    Stream,
    UpdateRefs,
    Upload,
    UploadPack,
)

#: Requests that change nothing: any token may send them.
READS: tuple[type[Message], ...] = (
    Expand,
    Stream,
    Query,
    Pull,
    Fetch,
    FetchPack,
    Log,
    Session,
    Refs,
    Offer,
    Have,
    OplogSubscribe,
)


def authorize(grant: Grant, repo: Repository, message: Message) -> Message:
    """Return ``message`` as ``grant`` may send it, or refuse it.

    Raises:
        PermissionDeniedError: the grant's scope or branches do not cover it.
    """
    if isinstance(message, READS):
        return message
    if isinstance(message, Upload | UploadPack):
        grant.require(Scope.WRITE, "push")
        return message
    if isinstance(message, UpdateRefs):
        grant.require(Scope.WRITE, "push")
        if message.force:
            grant.require(Scope.ADMIN, "force a push")
        if any(update.new is None for update in message.updates):
            grant.require(Scope.ADMIN, "delete a branch or tag")
        grant.require_refs(update.name for update in message.updates)
        return message
    if isinstance(message, Push):
        grant.require(Scope.WRITE, "commit")
        _require_current_branch(grant, repo)
        return (
            message if grant.name is None else msgspec.structs.replace(message, author=grant.name)
        )
    if isinstance(message, OplogAppend):
        grant.require(Scope.WRITE, "append ops")
        _require_current_branch(grant, repo)
        if grant.name is None:
            return message
        ops = reattribute(message.ops, grant.name)
        return msgspec.structs.replace(message, ops=[dict(op) for op in ops])
    grant.require(Scope.ADMIN, f"send {type(message).__name__}")
    return message


def _require_current_branch(grant: Grant, repo: Repository) -> None:
    """Commits and crystallised ops land on the current branch: the grant must cover it."""
    if grant.branches is None:
        return
    branch = repo.current_branch
    if branch is None:
        raise PermissionDeniedError(
            f"the served repository's HEAD is detached; token {grant.name!r} may only"
            f" move branches matching {grant.branches!r}"
        )
    grant.require_refs([refnames.branch_ref(branch)])


__all__ = ["READS", "authorize"]
