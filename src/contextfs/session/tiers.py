"""Tiered session payloads: l0 (who), rich_club (hubs), l1 (overviews), l2 (details).

An agent starts every turn with a payload of four components, each with its
own token budget, the whole never over the total:

* ``l0``: the few atoms that define the agent and the user: those tagged
  ``pinned`` (or ``l0``), then those of an identity type, best first, one line
  each (their ``abstract`` when they have one);
* ``rich_club``: the hub memories of the relation graph (see
  :mod:`contextfs.session.richclub`), most connected first, one line each;
* ``l1``: overviews of the most relevant memories, oldest first (so a new
  memory's line goes last and the lines before it stay cached): an atom's
  ``overview``, else its ``abstract``, else what the summariser makes of it
  (by default the first sentence, at most :data:`SUMMARY_WORDS` words; pass
  any callable, such as an LLM call, to do better);
* ``l2``: the memories themselves, ``[Type] content``, most relevant first,
  under what the other tiers left of the budget.

:func:`render_payload` puts them in that order, the least changing first, so
an LLM provider's prefix cache keeps hitting turn after turn. Budgets are
counted with the real tokenizer on the rendered prompt; the same inputs give
byte-identical payloads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from ..errors import InvalidInputError
from ..expand.context import render_line
from ..expand.tokens import Tokenizer
from ..model.objects import MemoryAtom

#: Tags that put an atom in l0 whatever its type.
PIN_TAGS = frozenset({"pinned", "l0"})
#: Type names whose atoms define the agent or the user (their best go in l0).
IDENTITY_TYPES = frozenset(
    {"Identity", "Persona", "Profile", "User", "UserProfile", "Agent", "AgentProfile", "Role"}
)
#: Words the default extractive summary keeps.
SUMMARY_WORDS = 30
#: Misses in a row after which a tier stops looking for items that fit.
PATIENCE = 64
#: Section headers of the rendered prompt, in cache-friendly order.
SECTIONS = (
    ("l0", "## Identity"),
    ("rich_club", "## Hub memories"),
    ("l1", "## Overview"),
    ("l2", "## Memories"),
)

Summariser = Callable[[MemoryAtom], str]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


class SessionPayload(TypedDict):
    """A turn's payload: three tiers of text and ``l2``, one line per memory.

    A plain dict at run time, so it travels as JSON or MessagePack and
    :func:`contextfs.session.build_delta` takes it as the seed's payload.
    """

    l0: str
    rich_club: str
    l1: str
    l2: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class TierBudgets:
    """Token budgets of l0, rich_club and l1; l2 gets what the payload has left."""

    l0: int
    rich_club: int
    l1: int

    @classmethod
    def split(cls, total: int) -> TierBudgets:
        """The default split: l0 5% (at most 100), rich_club 10%, l1 20%, l2 the rest."""
        return cls(l0=min(100, total * 5 // 100), rich_club=total // 10, l1=total // 5)

    def check(self) -> TierBudgets:
        """Return self if every budget is a non-negative integer, else raise."""
        for name in ("l0", "rich_club", "l1"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInputError(f"tier budget {name} must be a non-negative integer")
        return self


def one_line(text: str) -> str:
    """Collapse whitespace, so one memory is one line of a tier."""
    return " ".join(text.split())


def extractive_summary(atom: MemoryAtom, *, words: int = SUMMARY_WORDS) -> str:
    """The default summariser: the content's first sentence, at most ``words`` words."""
    flat = one_line(atom.content)
    first = _SENTENCE_END.split(flat, maxsplit=1)[0]
    kept = first.split()
    return " ".join(kept[:words]) + (" …" if len(kept) > words else "")


def overview_of(atom: MemoryAtom, summariser: Summariser) -> str:
    """An atom's overview: its own field, else its abstract, else the summariser's."""
    return one_line(atom.overview or atom.abstract or summariser(atom))


def is_identity(atom: MemoryAtom, identity_types: frozenset[str]) -> bool:
    """True for an atom that belongs in l0: pinned, or of an identity type."""
    return bool(PIN_TAGS.intersection(atom.tags)) or atom.type_sig.name in identity_types


def _line(atom: MemoryAtom, text: str) -> str:
    return f"[{one_line(str(atom.type_sig))}] {text}"


class _Replay:
    """A lazily read iterable that can be walked again (the ranked stream, read once)."""

    def __init__(self, source: Iterable[MemoryAtom]) -> None:
        self._source = iter(source)
        self._seen: list[MemoryAtom] = []

    def __iter__(self) -> Iterator[MemoryAtom]:
        index = 0
        while True:
            if index < len(self._seen):
                yield self._seen[index]
            else:
                nxt = next(self._source, None)
                if nxt is None:
                    return
                self._seen.append(nxt)
                yield nxt
            index += 1


def _pack(
    items: Iterable[tuple[MemoryAtom, str]], budget: int, counter: Tokenizer
) -> list[tuple[MemoryAtom, str]]:
    """Take items in order while their lines' tokens (each with its newline) fit ``budget``."""
    chosen: list[tuple[MemoryAtom, str]] = []
    used = misses = 0
    for atom, line in items:
        cost = counter.count(line + "\n")
        if used + cost <= budget:
            chosen.append((atom, line))
            used += cost
            misses = 0
        else:
            misses += 1
            if misses >= PATIENCE or budget - used < 2:
                break
    return chosen


def render_payload(payload: Mapping[str, Any]) -> str:
    """The prompt a payload makes: its tiers under headers, least changing first."""
    parts = []
    for key, header in SECTIONS:
        value = payload.get(key)
        text = "\n".join(value) if isinstance(value, list) else (value or "")
        if text:
            parts.append(f"{header}\n{text}")
    return "\n\n".join(parts)


def payload_tokens(payload: Mapping[str, Any], counter: Tokenizer) -> int:
    """Tokens of the rendered payload."""
    return counter.count(render_payload(payload))


def stable_prefix_tokens(previous: str, current: str, counter: Tokenizer) -> int:
    """Tokens at the start of ``current`` a prompt cache keeps from ``previous``.

    Counts the longest common prefix cut back to a line boundary, where both
    prompts tokenize the same way.
    """
    size = next(
        (i for i, (a, b) in enumerate(zip(previous, current, strict=False)) if a != b),
        min(len(previous), len(current)),
    )
    same = current[:size]
    if same != current:
        same = same[: same.rfind("\n") + 1]
    return counter.count(same)


def assemble(
    *,
    identity: Iterable[MemoryAtom],
    hubs: Sequence[MemoryAtom],
    ranked: Iterable[MemoryAtom],
    budget: int,
    budgets: TierBudgets,
    counter: Tokenizer,
    summariser: Summariser = extractive_summary,
) -> SessionPayload:
    """Build the four tiers from atoms already chosen and ordered.

    Args:
        identity: l0 candidates, best first.
        hubs: the rich club, most connected first.
        ranked: every memory best first (read lazily, as far as the budgets need).
        budget: the whole payload's tokens, rendered.
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise InvalidInputError(f"budget must be a non-negative integer, got {budget!r}")
    budgets.check()
    header_reserve = sum(counter.count(header + "\n\n") for _, header in SECTIONS)
    room = max(0, budget - header_reserve)
    l0 = _pack(
        ((a, _line(a, one_line(a.abstract or a.content))) for a in identity),
        min(budgets.l0, room),
        counter,
    )
    room -= _cost(l0, counter)
    in_l0 = {atom.digest for atom, _ in l0}
    club = _pack(
        ((a, _line(a, overview_of(a, summariser))) for a in hubs),
        min(budgets.rich_club, room),
        counter,
    )
    room -= _cost(club, counter)
    rest = _Replay(a for a in ranked if a.digest not in in_l0)
    l1 = _oldest_first(
        _pack(
            ((a, f"- {_line(a, overview_of(a, summariser))}") for a in rest),
            min(budgets.l1, room),
            counter,
        )
    )
    room -= _cost(l1, counter)
    l2 = _pack(((a, render_line(a)) for a in rest), room, counter)
    payload: SessionPayload = {
        "l0": "\n".join(line for _, line in l0),
        "l1": "\n".join(line for _, line in l1),
        "l2": [line for _, line in l2],
        "rich_club": "\n".join(line for _, line in club),
    }
    return _trim(payload, budget, counter)


def _oldest_first(chosen: list[tuple[MemoryAtom, str]]) -> list[tuple[MemoryAtom, str]]:
    """Order l1 by age, not rank: a new memory's overview lands last, so the lines
    before it (and the prompt-cache prefix) stay as they were."""
    return sorted(chosen, key=lambda pair: (pair[0].timestamp, pair[0].digest))


def _cost(chosen: Sequence[tuple[MemoryAtom, str]], counter: Tokenizer) -> int:
    return sum(counter.count(line + "\n") for _, line in chosen)


def _trim(payload: SessionPayload, budget: int, counter: Tokenizer) -> SessionPayload:
    """Drop items from the most changeable tier until the rendered payload fits exactly."""
    while payload_tokens(payload, counter) > budget:
        if payload["l2"]:
            payload["l2"] = payload["l2"][:-1]
        elif payload["l1"]:
            payload["l1"] = _without_last_line(payload["l1"])
        elif payload["rich_club"]:
            payload["rich_club"] = _without_last_line(payload["rich_club"])
        elif payload["l0"]:
            payload["l0"] = _without_last_line(payload["l0"])
        else:
            break  # nothing left to drop (a budget below the smallest rendering)
    return payload


def _without_last_line(text: str) -> str:
    return "\n".join(text.split("\n")[:-1])


__all__ = [
    "IDENTITY_TYPES",
    "PIN_TAGS",
    "SECTIONS",
    "SessionPayload",
    "Summariser",
    "TierBudgets",
    "assemble",
    "extractive_summary",
    "overview_of",
    "payload_tokens",
    "render_payload",
    "stable_prefix_tokens",
]
