"""Three-way merge of snapshots, entry by entry and field by field.

Given a base and two sides, every entry changed on only one side takes that
side's version. An atom entry changed on both sides merges field by field
(relevance from one side, tags from the other is fine); only a field changed
differently on both sides, or an entry removed on one side and changed on the
other, is a conflict. The cost follows the changes, not the snapshot sizes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import CorruptObjectError
from ..model import canonical
from ..model.objects import AtomEntry, decode_entry
from .tree import SnapshotTrees

_FIELDS = ("relevance", "timestamp", "source", "tags", "abstract", "overview")


@dataclass(frozen=True, slots=True)
class Conflict:
    """One entry the two sides changed incompatibly (items are encoded entries)."""

    key: bytes
    base: bytes | None
    ours: bytes | None
    theirs: bytes | None


@dataclass(frozen=True, slots=True)
class MergeOutcome:
    """The merged snapshot (conflicted keys hold our side) and the conflicts."""

    tree: bytes
    conflicts: tuple[Conflict, ...]
    changed_from_ours: int


def merge_trees(trees: SnapshotTrees, base: bytes, ours: bytes, theirs: bytes) -> MergeOutcome:
    """Merge ``theirs`` into ``ours`` relative to ``base``; nodes are left buffered."""
    our_changes = {key: new for key, _, new in trees.diff(base, ours)}
    updates: dict[bytes, bytes | None] = {}
    conflicts: list[Conflict] = []
    for key, old, their_new in trees.diff(base, theirs):
        if key not in our_changes:
            updates[key] = their_new
            continue
        our_new = our_changes[key]
        if our_new == their_new:
            continue
        merged = _merge_fields(old, our_new, their_new)
        if merged is None:
            conflicts.append(Conflict(key, old, our_new, their_new))
        elif merged != our_new:
            updates[key] = merged
    return MergeOutcome(trees.update(ours, updates), tuple(conflicts), len(updates))


def _merge_fields(base: bytes | None, ours: bytes | None, theirs: bytes | None) -> bytes | None:
    """Merge one atom entry changed on both sides, or return None on a conflict.

    Each field merges three ways. Two rules settle what would otherwise be
    noise: when both sides set the timestamp (re-stating a fact refreshes it),
    the later one wins; and when both sides added the same atom (no base), the
    fields they agree on need no base at all.
    """
    if ours is None or theirs is None:
        return None
    entries = [decode_entry(item) for item in (ours, theirs)]
    mine, yours = entries
    if not (isinstance(mine, AtomEntry) and isinstance(yours, AtomEntry)):
        return None
    old = decode_entry(base) if base is not None else None
    if old is not None and not isinstance(old, AtomEntry):
        return None
    fields: dict[str, object] = {}
    for name in _FIELDS:
        m, y = getattr(mine, name), getattr(yours, name)
        o = getattr(old, name) if old is not None else None
        if m == y or (old is not None and y == o):
            fields[name] = m
        elif old is not None and m == o:
            fields[name] = y
        elif name == "timestamp":
            fields[name] = max(m, y)
        else:
            return None
    return dataclasses.replace(mine, **fields).encode()  # type: ignore[arg-type]


def changed_fields(old: bytes, new: bytes) -> tuple[str, ...]:
    """Name the entry fields that differ between two encodings of one atom's entry."""
    a, b = decode_entry(old), decode_entry(new)
    if not (isinstance(a, AtomEntry) and isinstance(b, AtomEntry)):
        return ()
    return tuple(name for name in _FIELDS if getattr(a, name) != getattr(b, name))


def encode_conflict(conflict: Conflict) -> bytes:
    """Encode a conflict as a tree item (key first), for the MERGE_STATE tree."""
    return canonical.encode([conflict.key, 2, conflict.base, conflict.ours, conflict.theirs])


def decode_conflict(item: bytes) -> Conflict:
    """Decode a MERGE_STATE tree item."""
    value = canonical.decode(item, kind="conflict")
    try:
        key, marker, base, ours, theirs = value
        if marker != 2:
            raise ValueError(marker)
    except (TypeError, ValueError):
        raise CorruptObjectError("merge state holds a malformed conflict") from None
    return Conflict(key, base, ours, theirs)
