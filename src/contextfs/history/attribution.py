"""Who changed what: per-entry attribution of commits, and undoing one actor's edits.

A plain commit's changes belong to its author. A commit crystallised from an
op log has many actors; it records, in an *attribution tree* named by its
metadata (``metadata["oplog"]["attribution"]``), which actors' ops decided
each entry it changed. The tree is an ordinary snapshot tree whose items are
``[key, 3, [actor, ...]]`` (sorted actors), so it is content-addressed,
verified by ``contextfs verify`` like any tree, and costs one small node per
32 changed entries.

:func:`plan_revert` walks history oldest first and, for every entry the chosen
actor (or session) changed, finds the value before their first change. An
entry is a conflict, reported and left alone (never overwritten), when anyone
else changed it in the same crystallised commit or between the chosen party's
changes, or when it no longer holds the value the chosen party left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import CorruptObjectError
from ..model import canonical
from ..model.ids import from_hex
from .commits import Commit
from .graph import walk
from .tree import EMPTY_TREE_ID, SnapshotTrees

ATTRIBUTION_ITEM = 3
OPLOG_META = "oplog"

Item = bytes | None
LoadCommit = Callable[[bytes], Commit]


def encode_attribution(key: bytes, actors: Iterable[str]) -> bytes:
    """Encode one attribution-tree item: an entry key and the actors who changed it."""
    return canonical.encode([key, ATTRIBUTION_ITEM, sorted(set(actors))])


def decode_attribution(item: bytes) -> tuple[bytes, tuple[str, ...]]:
    """Decode an attribution-tree item."""
    value = canonical.decode(item, kind="attribution")
    try:
        key, marker, actors = value
        if marker != ATTRIBUTION_ITEM or not isinstance(key, bytes) or len(key) != 32:
            raise ValueError(marker)
        if not isinstance(actors, list) or not all(isinstance(a, str) for a in actors):
            raise ValueError(actors)
    except (TypeError, ValueError):
        raise CorruptObjectError("attribution tree holds a malformed item") from None
    return key, tuple(actors)


def oplog_metadata(commit: Commit) -> Mapping[str, Any] | None:
    """Return a crystallised commit's op-log record, or None for a plain commit."""
    value = commit.metadata.get(OPLOG_META)
    return value if isinstance(value, dict) else None


@dataclass(frozen=True, slots=True)
class Touch:
    """One commit's change to one entry: who made it, and the values around it."""

    actors: frozenset[str]
    session: str | None
    before: Item
    after: Item


def commit_touches(trees: SnapshotTrees, load: LoadCommit, commit: Commit) -> dict[bytes, Touch]:
    """Return the entries ``commit`` itself changed, with who changed each.

    For a merge, only entries whose result differs from every parent count
    (the rest were changed in the merged histories, attributed there).
    """
    parents = [load(p).tree for p in commit.parents] or [EMPTY_TREE_ID]
    changed = {key: (old, new) for key, old, new in trees.diff(parents[0], commit.tree)}
    if len(parents) > 1 and changed:
        for other in parents[1:]:
            held = trees.get_many(other, list(changed))
            changed = {k: v for k, v in changed.items() if held.get(k) != v[1]}
    meta = oplog_metadata(commit)
    session = meta.get("session") if meta else None
    by_key: dict[bytes, tuple[str, ...]] = {}
    attribution = meta.get("attribution") if meta else None
    if isinstance(attribution, str) and changed:
        for item in trees.get_many(from_hex(attribution), list(changed)).values():
            key, actors = decode_attribution(item)
            by_key[key] = actors
    return {
        key: Touch(
            frozenset(by_key.get(key, (commit.author,))),
            session if isinstance(session, str) else None,
            old,
            new,
        )
        for key, (old, new) in changed.items()
    }


@dataclass(slots=True)
class RevertPlan:
    """The entries to restore and those left alone because others changed them too.

    ``restore`` maps each key to the value before the first matching change;
    ``conflicts`` maps each conflicted key to (value after the matching
    changes, value now, value before them).
    """

    restore: dict[bytes, Item] = field(default_factory=dict)
    conflicts: dict[bytes, tuple[Item, Item, Item]] = field(default_factory=dict)


def plan_revert(
    trees: SnapshotTrees,
    load: LoadCommit,
    head: bytes,
    *,
    matches: Callable[[Touch], bool],
    pure: Callable[[Touch], bool],
    exclude: Iterable[bytes] = (),
) -> RevertPlan:
    """Plan undoing every change ``matches`` selects, from history after ``exclude``.

    Args:
        head: the commit to revert on top of.
        matches: whether a touch is one of the changes to undo.
        pure: whether a matching touch was made by the chosen party alone.
        exclude: commits (with their ancestors) whose changes are kept.
    """
    hidden = {oid for oid, _ in walk(load, list(exclude))}
    commits = [(c.generation, oid, c) for oid, c in walk(load, [head]) if oid not in hidden]
    commits.sort(key=lambda item: (item[0], item[1]))
    before: dict[bytes, Item] = {}
    after: dict[bytes, Item] = {}
    tainted: set[bytes] = set()
    others_since: set[bytes] = set()  # changed by others after the last matching change
    for _, _, commit in commits:
        for key, touch in commit_touches(trees, load, commit).items():
            if matches(touch):
                before.setdefault(key, touch.before)
                after[key] = touch.after
                if not pure(touch) or key in others_since:
                    tainted.add(key)
                others_since.discard(key)
            elif key in before:
                others_since.add(key)
    plan = RevertPlan()
    if not before:
        return plan
    current = trees.get_many(load(head).tree, list(before))
    for key, old in before.items():
        now = current.get(key)
        if key in tainted or now != after[key]:
            plan.conflicts[key] = (after[key], now, old)
        elif now != old:
            plan.restore[key] = old
    return plan


__all__ = [
    "ATTRIBUTION_ITEM",
    "RevertPlan",
    "Touch",
    "commit_touches",
    "decode_attribution",
    "encode_attribution",
    "oplog_metadata",
    "plan_revert",
]
