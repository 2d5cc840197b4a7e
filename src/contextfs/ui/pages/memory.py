"""One memory: its fields as a revision holds it, whether it was purged, and its history.

The history is every commit reachable from the revision whose entry for the
memory differs from its first parent's: where it was added, changed (naming
the fields) or removed. Each commit costs one direct lookup of the memory's
key in its snapshot tree (:meth:`SnapshotTrees.get`, memoised by tree, so a
parent looked up as the next commit is not read twice), never a diff of
whole snapshots; the walk stops after :data:`HISTORY_LIMIT` commits, and the
page says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from ...errors import UnknownRevisionError
from ...history.merge import changed_fields
from ...history.tree import EMPTY_TREE_ID
from ...integrity.purge import PurgeRecord, read_purge_record
from ...model.ids import ObjectId, from_hex
from ...model.objects import MemoryAtom
from ...model.timeutil import from_micros
from ...records import ChangeStatus, CommitInfo, Memory
from ...repo import Repository
from ..app import UI, Page
from .history import actors_of
from .memories import memory_link, number

#: Commits the history walk reads at most, from the revision back.
HISTORY_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Event:
    """A commit that added, changed or removed the memory, against its first parent."""

    info: CommitInfo
    status: ChangeStatus
    fields: tuple[str, ...]
    when: str
    actors: tuple[str, ...]

    @property
    def merge(self) -> bool:
        return len(self.info.parents) > 1


@dataclass(frozen=True, slots=True)
class History:
    """What the walk from a revision found for one memory.

    ``held`` is the newest entry the walk saw (the revision's own, else the
    one the newest event added, changed or removed) and ``held_in`` the
    commit whose snapshot holds it; both None when no commit walked held it.
    """

    events: tuple[Event, ...]
    walked: int
    capped: bool
    held: bytes | None
    held_in: ObjectId | None


@dataclass(frozen=True, slots=True)
class MemoryView:
    """Everything the memory's page shows."""

    id: ObjectId
    rev: str
    memory: Memory
    in_rev: bool
    purge: PurgeRecord | None
    purged: bool
    history: History

    @property
    def atom(self) -> MemoryAtom | None:
        return self.memory if isinstance(self.memory, MemoryAtom) else None


def entry_change(
    old: bytes | None, new: bytes | None
) -> tuple[ChangeStatus, tuple[str, ...]] | None:
    """How an encoded entry went from a first parent to a commit; None if it did not change."""
    if old == new:
        return None
    if old is None:
        return "added", ()
    if new is None:
        return "removed", ()
    return "changed", changed_fields(old, new)


def memory_history(
    repo: Repository, key: bytes, start: ObjectId, limit: int = HISTORY_LIMIT
) -> History:
    """Walk at most ``limit`` commits back from ``start``, recording where ``key`` changed.

    Merges are compared with their first parent only, as ``show`` does: a
    memory that arrived through a merge shows the merge, and the commits of
    the merged branch that made the change show too (they are reachable).
    """
    lookups: dict[bytes, bytes | None] = {}

    def entry_at(tree: bytes) -> bytes | None:
        if tree not in lookups:
            lookups[tree] = None if tree == EMPTY_TREE_ID else repo.trees.get(tree, key)
        return lookups[tree]

    events: list[Event] = []
    held = entry_at(repo.load_commit(from_hex(start)).tree)
    held_in: ObjectId | None = start if held is not None else None
    walked = 0
    for info in repo.log([start], limit=limit + 1):
        if walked == limit:
            return History(tuple(events), walked, True, held, held_in)
        walked += 1
        commit = info.commit
        parent = repo.load_commit(commit.parents[0]).tree if commit.parents else EMPTY_TREE_ID
        if parent == commit.tree:
            continue
        old, new = entry_at(parent), entry_at(commit.tree)
        change = entry_change(old, new)
        if change is None:
            continue
        if held is None:
            held, held_in = (old, info.parents[0]) if new is None else (new, info.id)
        status, fields = change
        when = from_micros(commit.timestamp).strftime("%Y-%m-%d %H:%M")
        events.append(Event(info, status, fields, when, actors_of(info)))
    return History(tuple(events), walked, False, held, held_in)


def memory_view(repo: Repository, ref: str, rev: str) -> MemoryView:
    """The memory ``ref`` (a full id or unique prefix) as ``rev`` holds it, or last held it.

    Raises:
        UnknownRevisionError: ``rev`` or ``ref`` names nothing, or no commit
            the walk read holds the memory.
        AmbiguousRevisionError: ``rev`` or ``ref`` is a prefix of several ids.
    """
    memory_id = repo.memory_id(ref)
    key = from_hex(memory_id)
    start = repo.resolve(rev)
    history = memory_history(repo, key, start)
    if history.held is None:
        within = f" (its last {history.walked} commits)" if history.capped else ""
        raise UnknownRevisionError(f"memory {ref!r} is not in the history of {rev!r}{within}")
    memory = repo.objects.items([history.held])[0]
    purge = read_purge_record(repo.store, key)
    placeholder = isinstance(memory, MemoryAtom) and repo.objects.is_placeholder(memory)
    return MemoryView(
        id=memory_id,
        rev=rev,
        memory=memory,
        in_rev=history.held_in == start,
        purge=purge,
        purged=purge is not None or placeholder,
        history=history,
    )


async def memory(ui: UI, request: Request) -> Response:
    ref = request.path_params["id"]
    rev = request.query_params.get("rev", "").strip() or "HEAD"
    view = await ui.run(lambda repo: memory_view(repo, ref, rev))  # ambiguous: a 400 page
    return ui.render(
        request,
        "memory.html",
        view=view,
        number=number,
        link=lambda memory_id: memory_link(memory_id, rev),
        stamp=lambda moment: moment.strftime("%Y-%m-%d %H:%M:%S UTC"),
        purged_when=(
            from_micros(view.purge.when).strftime("%Y-%m-%d %H:%M UTC") if view.purge else ""
        ),
        limit=HISTORY_LIMIT,
    )


ROUTES: list[tuple[str, Page, list[str]]] = [
    ("/memory/{id}", memory, ["GET"]),
]
