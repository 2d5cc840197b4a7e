"""Queries over an expanded context: the seed's ``ContextQuery``.

A query is a frozen, validated value: bad arguments fail when it is built, with
a one-line message, not halfway through a scan. Ages are measured in UTC, so a
query gives the same answer in every time zone (DESIGN.md section 2, defect 12).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from ..errors import InvalidInputError
from ..model.objects import MemoryAtom
from ..model.timeutil import to_micros
from ..model.types import TypeSignature
from .context import ExpandedContext, rank_key

__all__ = ["ContextQuery"]


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


@dataclass(frozen=True, slots=True)
class ContextQuery:
    """Which atoms of an expanded context to return, and how many.

    Attributes:
        type_filter: Keep atoms whose type unifies with this (``τ`` names match
            anything); None keeps every type.
        min_relevance: Keep atoms at least this relevant, in [0, 1].
        max_age_seconds: Keep atoms at most this old; None keeps every age.
        limit: Return at most this many atoms; None returns all.

    Raises:
        InvalidInputError: On construction, if an argument is out of range.
    """

    type_filter: TypeSignature | None = None
    min_relevance: float = 0.0
    max_age_seconds: float | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.type_filter is not None and not isinstance(self.type_filter, TypeSignature):
            raise InvalidInputError(
                f"type_filter must be a TypeSignature or None, got {self.type_filter!r}"
            )
        relevance = self.min_relevance
        if not (_is_number(relevance) and 0.0 <= relevance <= 1.0):
            raise InvalidInputError(f"min_relevance must be in [0, 1], got {relevance!r}")
        age = self.max_age_seconds
        if age is not None and not (_is_number(age) and not math.isnan(age) and age >= 0):
            raise InvalidInputError(f"max_age_seconds must be >= 0 or None, got {age!r}")
        limit = self.limit
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise InvalidInputError(f"limit must be an int >= 0 or None, got {limit!r}")

    def matches(self, atom: MemoryAtom, now: datetime | None = None) -> bool:
        """Return whether ``atom`` passes the type, relevance and age filters.

        Args:
            atom: The atom to test.
            now: The moment ages are measured from (naive means local time);
                the current time by default.
        """
        if self.type_filter is not None and atom.type_sig.unify(self.type_filter) is None:
            return False
        if atom.relevance_score < self.min_relevance:
            return False
        if self.max_age_seconds is None:
            return True
        moment = now if now is not None else datetime.now(UTC)
        age_micros = to_micros(moment) - to_micros(atom.timestamp)
        return age_micros <= self.max_age_seconds * 1_000_000

    def apply(self, expanded: ExpandedContext, now: datetime | None = None) -> list[MemoryAtom]:
        """Return the matching atoms, most relevant first, cut to ``limit``.

        Args:
            expanded: The context to search.
            now: As for :meth:`matches`; one moment is used for every atom.
        """
        moment = now if now is not None else datetime.now(UTC)
        found = sorted(
            (atom for atom in expanded.atoms if self.matches(atom, moment)), key=rank_key
        )
        return found if self.limit is None else found[: self.limit]
