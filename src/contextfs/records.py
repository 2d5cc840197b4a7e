"""What the Repository returns: commits, changes, conflicts, status, merge results.

Plain frozen values, so the CLI, servers and tests can render or compare them
without reaching back into the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .expand.receipt import Receipt
from .history.commits import Commit
from .model.ids import ObjectId, short, to_hex
from .model.objects import MemoryAtom, MemoryMolecule

ChangeStatus = Literal["added", "removed", "changed"]
Memory = MemoryAtom | MemoryMolecule


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """A commit as people and scripts see it."""

    id: ObjectId
    commit: Commit

    @property
    def parents(self) -> tuple[ObjectId, ...]:
        """Parent ids, first parent first."""
        return tuple(to_hex(p) for p in self.commit.parents)

    @property
    def short_id(self) -> str:
        """The id abbreviated for display."""
        return short(self.id)


@dataclass(frozen=True, slots=True)
class Change:
    """One entry that differs between two snapshots."""

    status: ChangeStatus
    id: ObjectId
    old: Memory | None
    new: Memory | None
    fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ConflictInfo:
    """An unresolved merge conflict on one entry."""

    id: ObjectId
    base: Memory | None
    ours: Memory | None
    theirs: Memory | None


@dataclass(frozen=True, slots=True)
class Status:
    """What ``status`` reports: where HEAD is and what is staged."""

    branch: str | None
    head: ObjectId | None
    changes: tuple[Change, ...]
    merging: ObjectId | None
    conflicts: tuple[ConflictInfo, ...]

    @property
    def clean(self) -> bool:
        """True when nothing is staged and no merge is in progress."""
        return not self.changes and self.merging is None


@dataclass(frozen=True, slots=True)
class MergeResult:
    """How a merge ended."""

    status: Literal["up-to-date", "fast-forward", "merged", "conflicts"]
    commit: ObjectId | None
    conflicts: tuple[ConflictInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One memory a search found, with how it scored."""

    atom: MemoryAtom
    score: float
    match: float


@dataclass(frozen=True, slots=True)
class PromptContext:
    """A prompt assembled from one version of memory, and how to prove it."""

    text: str
    tokens: int
    atoms: tuple[MemoryAtom, ...]
    molecules: tuple[MemoryMolecule, ...]
    receipt: Receipt
