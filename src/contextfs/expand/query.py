"""Queries over an expanded context: the seed's ``ContextQuery``.

A query is a frozen, validated value: bad arguments fail when it is built, with
a one-line message, not halfway through a scan. Ages are measured in UTC, so a
query gives the same answer in every time zone (DESIGN.md section 2, defect 12).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..errors import InvalidInputError, shape_problem
from ..model.objects import MemoryAtom
from ..model.timeutil import to_micros
from ..model.types import TypeSignature
from ..search.query import Phrase, parse_query, term_key, tokenize
from .context import ExpandedContext, rank_key

__all__ = ["ContextQuery"]


def _holds(tokens: list[str], phrases: tuple[Phrase, ...]) -> bool:
    """Return True if ``tokens`` contain every phrase (a prefix phrase's last word as a prefix)."""
    keys = [term_key(token) for token in tokens]
    for phrase in phrases:
        wanted = [term_key(token) for token in phrase.tokens]
        size = len(wanted)
        found = False
        for start in range(len(keys) - size + 1):
            window = keys[start : start + size]
            if window[:-1] == wanted[:-1] and (
                window[-1].startswith(wanted[-1]) if phrase.prefix else window[-1] == wanted[-1]
            ):
                found = True
                break
        if not found:
            return False
    return True


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
        text: Keep atoms holding every word (and ``"phrase"``) of this search
            text, tokenized as full-text search tokenizes; None keeps all.
        tags: Keep atoms carrying every one of these tags.
        source: Keep atoms from exactly this source; None keeps every source.

    Raises:
        InvalidInputError: On construction, if an argument is out of range.
    """

    type_filter: TypeSignature | None = None
    min_relevance: float = 0.0
    max_age_seconds: float | None = None
    limit: int | None = None
    text: str | None = None
    tags: tuple[str, ...] = ()
    source: str | None = None
    _phrases: tuple[Phrase, ...] = field(default=(), init=False, repr=False, compare=False)

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
        if self.text is not None:
            if not isinstance(self.text, str):
                raise InvalidInputError(f"text must be a string or None, got {self.text!r}")
            object.__setattr__(self, "_phrases", parse_query(self.text).phrases)
        if isinstance(self.tags, str) or not all(isinstance(t, str) for t in self.tags):
            raise InvalidInputError(f"tags must be a sequence of strings, got {self.tags!r}")
        object.__setattr__(self, "tags", tuple(self.tags))
        if self.source is not None and not isinstance(self.source, str):
            raise InvalidInputError(f"source must be a string or None, got {self.source!r}")
        limit = self.limit
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise InvalidInputError(f"limit must be an int >= 0 or None, got {limit!r}")

    def to_params(self) -> dict[str, Any]:
        """Record the filter losslessly (types in their canonical form), as a receipt holds it."""
        return {
            "type": self.type_filter.to_canonical() if self.type_filter is not None else None,
            "min_relevance": self.min_relevance,
            "max_age_seconds": self.max_age_seconds,
            "limit": self.limit,
            "text": self.text,
            "tags": list(self.tags),
            "source": self.source,
        }

    @classmethod
    def from_params(cls, value: object) -> ContextQuery:
        """Rebuild a filter from :meth:`to_params`' record.

        Raises:
            InvalidInputError: the record is malformed.
        """
        if not isinstance(value, dict):
            raise InvalidInputError("receipt parameter 'where' is malformed")
        type_value = value.get("type")
        try:
            return cls(
                type_filter=TypeSignature.from_canonical(type_value) if type_value else None,
                min_relevance=value.get("min_relevance", 0.0),
                max_age_seconds=value.get("max_age_seconds"),
                limit=value.get("limit"),
                text=value.get("text"),
                tags=tuple(value.get("tags", ())),
                source=value.get("source"),
            )
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"receipt parameter 'where' is malformed: {shape_problem(exc)}"
            ) from None

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
        if self.source is not None and atom.source_hash != self.source:
            return False
        if self.tags and not set(self.tags) <= set(atom.tags):
            return False
        if self.text is not None and not _holds(tokenize(atom.content), self._phrases):
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
