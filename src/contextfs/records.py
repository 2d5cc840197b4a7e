"""What the Repository returns: commits, changes, conflicts, status, merge results.

Plain frozen values, so the CLI, servers and tests can render or compare them
without reaching back into the store.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Literal

from .expand.receipt import Receipt
from .history.commits import Commit
from .model.ids import ObjectId, short, to_hex
from .model.objects import MemoryAtom, MemoryMolecule
from .session.turns import Rebuild, TurnBlock, TurnCost

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


@dataclass(frozen=True, slots=True)
class TurnContext:
    """One turn's memory context, built for provider prompt caches.

    Attributes:
        blocks: The stable block (cacheable: identity, hubs and a working set
            that stays byte-identical from turn to turn), then the volatile
            block (this turn's best matches not in the stable one).
        text: The blocks joined in order, exactly as a prompt would hold them.
        tokens: ``text`` counted by the tokenizer; never above the budget.
        state: Pass it back as ``previous`` next turn (plain JSON values).
        rebuild: Why the stable block was built anew this turn (``"first"``,
            ``"settings"``, ``"removed"``, ``"full"``, ``"epoch"``,
            ``"stale"``), or None when it was kept and appended to.
        cost: The tokens expected to be read from the cache, written to it
            and uncached, and what they bill.
        receipt: Re-derives ``text`` byte for byte (:meth:`Repository.verify_receipt`).
    """

    blocks: tuple[TurnBlock, ...]
    text: str
    tokens: int
    state: dict[str, Any]
    rebuild: Rebuild | None
    cost: TurnCost
    receipt: Receipt

    def blocks_json(self) -> list[dict[str, Any]]:
        """The blocks as JSON objects: name, text, tokens, cacheable, memory_ids."""
        return [
            {
                "name": block.name,
                "text": block.text,
                "tokens": block.tokens,
                "cacheable": block.cacheable,
                "memory_ids": list(block.memory_ids),
            }
            for block in self.blocks
        ]

    def cost_json(self) -> dict[str, float]:
        """The cost as a JSON object."""
        return dataclasses.asdict(self.cost)

    def to_json(self) -> dict[str, Any]:
        """Everything as JSON values: blocks, text, tokens, rebuild, cost, state, receipt."""
        return {
            "blocks": self.blocks_json(),
            "text": self.text,
            "tokens": self.tokens,
            "rebuild": self.rebuild,
            "cost": self.cost_json(),
            "state": self.state,
            "receipt": json.loads(self.receipt.to_json()),
        }
