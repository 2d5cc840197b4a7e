"""Commit: one commit's header, its Merkle root, and what it changed against its first parent.

The diff rows are built by pure functions over :class:`~contextfs.records.Change`
values, so what a row says (``relevance 1.0 → 0.4``) is tested without a
browser or a store; the handler only gathers those values under the lock.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from ...errors import InvalidInputError
from ...model.ids import ObjectId, from_hex
from ...model.objects import MemoryAtom
from ...model.timeutil import from_micros
from ...records import Change, ChangeStatus, CommitInfo, Memory
from ...repo import Repository
from ..app import UI, Page
from .history import actors_of

#: What a revision may be spelled with: ref names (``[A-Za-z0-9._/+-]``), ids,
#: ``~n``/``^n`` steps and ``NAME@{n}``. Anything else cannot name a commit, so
#: it is bad input (400) rather than an unknown revision (404).
_REVISION = re.compile(r"[A-Za-z0-9._/+@{}~^-]{1,300}")

#: Rows are grouped in this order: what arrived, what moved, what left.
_STATUS_ORDER: dict[ChangeStatus, int] = {"added": 0, "changed": 1, "removed": 2}


def check_revision(text: str) -> str:
    """Return ``text`` if it is spelled like a revision; else raise :class:`InvalidInputError`."""
    if _REVISION.fullmatch(text) is None:
        raise InvalidInputError(f"not a revision: {text!r}")
    return text


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One entry field of a changed memory, as people read it."""

    name: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class DiffRow:
    """One memory a commit added, changed or removed."""

    status: ChangeStatus
    id: ObjectId
    kind: str
    text: str
    purged: bool
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True, slots=True)
class ParentLink:
    id: ObjectId
    summary: str


@dataclass(frozen=True, slots=True)
class CommitView:
    """Everything the Commit page shows."""

    info: CommitInfo
    when: str
    iso: str
    actors: tuple[str, ...]
    parents: tuple[ParentLink, ...]
    refs: tuple[str, ...]
    root: str
    rows: tuple[DiffRow, ...]
    counts: dict[str, int]


# -- pure: changes → rows ---------------------------------------------------------------


def describe(memory: Memory) -> tuple[str, str]:
    """A memory's type and its one-line text (a molecule is named by its size)."""
    if isinstance(memory, MemoryAtom):
        return str(memory.type_sig), memory.content
    return str(memory.molecule_type), f"molecule of {len(memory.atoms)} atoms"


def field_text(memory: MemoryAtom, name: str) -> str:
    """One entry field (a name of ``Change.fields``) as text; empty values read ``(none)``."""
    value: object = {
        "relevance": memory.relevance_score,
        "timestamp": memory.timestamp,
        "source": memory.source_hash,
        "tags": ", ".join(memory.tags),
        "abstract": memory.abstract,
        "overview": memory.overview,
    }[name]
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return "(none)" if value is None or value == "" else str(value)


def field_changes(change: Change) -> tuple[FieldChange, ...]:
    """Each field a changed entry moved, old → new.

    A timestamp moved by less than a second would read ``X → X``, which says
    nothing, so such a pair is shown to the microsecond.
    """
    old, new = change.old, change.new
    if not (isinstance(old, MemoryAtom) and isinstance(new, MemoryAtom)):
        return ()
    result = []
    for name in change.fields:
        before, after = field_text(old, name), field_text(new, name)
        if before == after and name == "timestamp":
            before, after = old.timestamp.isoformat(), new.timestamp.isoformat()
        result.append(FieldChange(name, before, after))
    return tuple(result)


def diff_rows(changes: Sequence[Change], purged: Collection[str]) -> list[DiffRow]:
    """The rows of a commit's diff: added, then changed, then removed, each in id order.

    Args:
        changes: what :meth:`Repository.show` returned for the commit.
        purged: the ids among them whose content was purged; their text is a
            placeholder, so the row says so rather than pass it off as content.
    """
    rows = []
    for change in sorted(changes, key=lambda c: (_STATUS_ORDER[c.status], c.id)):
        memory = change.new if change.new is not None else change.old
        if memory is None:
            continue  # a Change always has a side; nothing to show otherwise
        kind, text = describe(memory)
        rows.append(
            DiffRow(
                status=change.status,
                id=change.id,
                kind=kind,
                text=text,
                purged=change.id in purged,
                fields=field_changes(change),
            )
        )
    return rows


def refs_at(
    commit_id: str, branches: Mapping[str, str], tags: Mapping[str, str]
) -> tuple[str, ...]:
    """The branches and tags (``tag: v1``) that point at ``commit_id``, as History labels them."""
    names = sorted(name for name, oid in branches.items() if oid == commit_id)
    return (*names, *(f"tag: {n}" for n in sorted(n for n, o in tags.items() if o == commit_id)))


def status_counts(rows: Sequence[DiffRow]) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(_STATUS_ORDER, 0)
    for row in rows:
        counts[row.status] += 1
    return counts


# -- over the repository ---------------------------------------------------------------


def commit_view(repo: Repository, revision: str) -> CommitView:
    """The Commit page of ``revision`` (any revision ``resolve`` accepts).

    Raises:
        RevisionError: ``revision`` names no commit, or several.
    """
    info, changes = repo.show(revision)
    moment = from_micros(info.commit.timestamp)
    purged = {c.id for c in changes if repo.is_purged(c.id)}
    rows = diff_rows(changes, purged)
    parents = tuple(ParentLink(p, repo.load_commit(from_hex(p)).summary) for p in info.parents)
    return CommitView(
        info=info,
        when=moment.strftime("%Y-%m-%d %H:%M:%S UTC"),
        iso=moment.isoformat(),
        actors=actors_of(info),
        parents=parents,
        refs=refs_at(info.id, repo.branches(), repo.tags()),
        root=info.commit.tree.hex(),
        rows=tuple(rows),
        counts=status_counts(rows),
    )


async def commit(ui: UI, request: Request) -> Response:
    revision = check_revision(request.path_params["rev"])
    view = await ui.run(lambda repo: commit_view(repo, revision))
    return ui.render(request, "commit.html", view=view, revision=revision)


ROUTES: list[tuple[str, Page, list[str]]] = [
    ("/commit/{rev:path}", commit, ["GET"]),
]
