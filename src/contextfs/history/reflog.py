"""The reflog: every move of HEAD and the branches, with who moved them and why.

Like git's, it answers "where was this branch before I reset it?" and keeps
the commits it names within reach of whoever looks (and, later, of garbage
collection's grace period). Entries are appended by :func:`log_move` in the
same transaction as the move, so the log never disagrees with the refs.

Which refs: ``HEAD``, branches (``refs/heads/``) and remote-tracking
branches (``refs/remotes/``); not tags, the stage or merge state. A branch
that HEAD points at logs each move for HEAD too, and HEAD switching branches
logs the commits it named before and after, as git does.

Why comes from the innermost :func:`reflog_reason` block around the move
(``commit: fix the summary``, ``reset: moving to HEAD~2``), else ``update
<ref>``; who from that block, else the innermost :func:`acting_as` block
(the CLI runs each command as its user), else :data:`DEFAULT_WHO`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final

from ..model import refs as refnames
from ..model.timeutil import now_micros
from ..store.base import ReflogEntry, ReflogStore, RefStore

#: Who moved a ref when nobody said.
DEFAULT_WHO: Final = "anonymous"

_REASON: ContextVar[tuple[str, str | None] | None] = ContextVar(
    "contextfs_reflog_reason", default=None
)
_ACTOR: ContextVar[str] = ContextVar("contextfs_reflog_actor", default=DEFAULT_WHO)


def is_logged(name: str) -> bool:
    """Whether moves of ref ``name`` go into the reflog."""
    return name == refnames.HEAD or name.startswith((refnames.HEADS, refnames.REMOTES))


@contextmanager
def reflog_reason(why: str, who: str | None = None) -> Iterator[None]:
    """Log the ref moves made in the block as ``why``, by ``who`` (the innermost block wins).

    ``who`` None: whoever :func:`acting_as` names.
    """
    token = _REASON.set((why.splitlines()[0] if why else why, who))
    try:
        yield
    finally:
        _REASON.reset(token)


@contextmanager
def acting_as(who: str) -> Iterator[None]:
    """Log the ref moves made in the block, whatever their reason, as made by ``who``."""
    token = _ACTOR.set(who)
    try:
        yield
    finally:
        _ACTOR.reset(token)


def log_move(store: RefStore, name: str, old: str | None, new: str | None) -> None:
    """Append the reflog entries for ``name`` moving from ``old`` to ``new``.

    Call it inside the transaction that moved the ref, after the move. Does
    nothing for a store without a reflog or a ref that is not logged.
    """
    if not isinstance(store, ReflogStore) or not is_logged(name):
        return
    why, who = _REASON.get() or (f"update {name}", None)
    who = who or _ACTOR.get()
    at = now_micros()
    if name == refnames.HEAD:
        before, after = _commit_of(store, old), _commit_of(store, new)
        if before is None and after is None:
            return  # an unborn branch named: no commit moved
        entries = [ReflogEntry(refnames.HEAD, before, after, who, at, why)]
    else:
        entries = [ReflogEntry(name, old, new, who, at, why)]
        if refnames.symbolic_target(store.read_ref(refnames.HEAD)) == name:
            entries.append(ReflogEntry(refnames.HEAD, old, new, who, at, why))
    store.append_reflog(entries)


def _commit_of(store: RefStore, value: str | None) -> str | None:
    """The commit a HEAD value names: its branch's for a symbolic one."""
    if value is None:
        return None
    target = refnames.symbolic_target(value)
    return store.read_ref(target) if target else value


__all__ = ["DEFAULT_WHO", "acting_as", "is_logged", "log_move", "reflog_reason"]
