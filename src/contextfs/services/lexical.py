"""A query's word matches in one revision, ranked so the cost follows the answer.

A match scores ``rank(relevance, timestamp) x match``, where ``match`` is the
share of the query's revision IDF its phrases carry
(:mod:`contextfs.expand.ranking`). Computed the straightforward way, every
matching atom is looked up in the snapshot: a common word in a million
memories costs hundreds of thousands of lookups to return ten.

Two things make it follow the answer instead, with the same ids, order and
scores:

* **Phrase statistics per snapshot** (:class:`PhraseCounts`): how many of a
  snapshot's atoms hold a phrase is counted once, while ranking every match
  the straightforward way, then remembered by snapshot id and phrase
  (snapshots never change); a later snapshot's count is derived from an
  earlier one through their diff, which is as small as what changed.
* **A threshold walk** (:func:`walk`): a query's matching atoms fall into
  groups by which of its phrases they hold (:func:`groups`), each with one
  match value. Small groups are looked up directly; the large ones are
  recognised while the snapshot yields its atoms best first by rank (its
  tree keeps bounds per subtree), and a match is yielded as soon as its
  score beats every atom not yet walked: ``rank x`` the best match of a
  walked group with members still to find. When many atoms match, the first
  few answers come after a few hundred atoms, not all of them.

The first query of a snapshot takes the straightforward way (it must look
its matches up to count them); the walk serves the ones after it.
"""

from __future__ import annotations

import heapq
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from ..history.tree import Scorer, SnapshotTrees, by_relevance, item_key
from ..model.objects import entry_rank

#: Walk when ``matches ** 2 > WALK_FACTOR x atoms``: a walk visits about
#: ``wanted / density`` atoms, the direct way looks up every match; this is
#: where they cost the same for a few hundred wanted (measured at 100,000).
WALK_FACTOR: Final = 200
#: Phrase counts remembered (one per snapshot and phrase).
COUNTS_KEPT: Final = 4096

#: ``(score, timestamp, key, item, match)`` of one ranked match.
Ranked = tuple[float, int, bytes, bytes, float]


def should_walk(matches: int, atoms: int) -> bool:
    """Whether a query with this many matches in this many atoms is cheaper walked."""
    return matches * matches > WALK_FACTOR * atoms


class PhraseCounts:
    """How many atoms of a snapshot hold a phrase, remembered and derived through diffs.

    One per repository: the count depends on which atoms its store has
    purged, and a diff reads snapshots from its store. Thread-safe.
    """

    def __init__(self, kept: int = COUNTS_KEPT) -> None:
        self._kept = kept
        self._lock = threading.Lock()
        self._counts: OrderedDict[tuple[bytes, str, int], int] = OrderedDict()
        #: (phrase, purges) -> the snapshot last counted for it
        self._latest: dict[tuple[str, int], bytes] = {}

    def count(
        self, trees: SnapshotTrees, tree: bytes, phrase: str, holders: set[bytes], purges: int
    ) -> int | None:
        """Atoms of ``tree`` among ``holders`` (every atom holding ``phrase``), if cheap to tell.

        Known for ``tree``, or derived from the snapshot last counted through
        their diff; None when neither (the caller counts while ranking every
        match, and :meth:`remember` keeps it). ``purges``: how many atoms the
        store has purged; a purge takes an atom's words out of the index, not
        out of the snapshot, so counts are kept per number of purges (purges
        are never undone).
        """
        key = (tree, phrase, purges)
        with self._lock:
            known = self._counts.get(key)
            if known is not None:
                self._counts.move_to_end(key)
                return known
            base = self._latest.get((phrase, purges))
            base_count = self._counts.get((base, phrase, purges)) if base is not None else None
        if base is None or base_count is None:
            return None
        counted = base_count
        for atom, old, new in trees.diff(base, tree):
            if atom in holders:
                counted += (new is not None) - (old is not None)
        self.remember(tree, phrase, purges, counted)
        return counted

    def remember(self, tree: bytes, phrase: str, purges: int, counted: int) -> None:
        """Keep a count made while ranking every match."""
        with self._lock:
            self._counts[(tree, phrase, purges)] = counted
            self._latest[(phrase, purges)] = tree
            while len(self._counts) > self._kept:
                (_, gone, epoch), _ = self._counts.popitem(last=False)
                latest = self._latest.get((gone, epoch))
                if latest is not None and (latest, gone, epoch) not in self._counts:
                    del self._latest[(gone, epoch)]


def match_of(key: bytes, members: Sequence[set[bytes]], weights: Sequence[float]) -> float:
    """``key``'s share of the IDF, summed in phrase order as ``match_scores`` sums it."""
    value = 0.0
    for weight, found in zip(weights, members, strict=True):
        if key in found:
            value += weight
    return value / sum(weights)


#: Most phrases a query may have to be walked: its atoms are split by which
#: phrases they hold, 2 ** phrases - 1 groups.
MAX_PHRASES: Final = 3


@dataclass(frozen=True, slots=True)
class Group:
    """The atoms holding exactly one combination of a query's phrases.

    Attributes:
        match: Their match (every atom of a group has the same).
        ids: Their ids, in any revision.
        present: How many of them the revision holds, if known.
    """

    match: float
    ids: set[bytes]
    present: int | None


def groups(
    members: Sequence[set[bytes]], weights: Sequence[float], require_all: bool
) -> list[tuple[int, set[bytes], float]] | None:
    """Each combination of phrases as ``(mask, ids, match)``; None past :data:`MAX_PHRASES`."""
    size = len(members)
    if not 0 < size <= MAX_PHRASES:
        return None
    found = []
    for mask in range(1, 1 << size):
        if require_all and mask != (1 << size) - 1:
            continue
        chosen = [members[i] for i in range(size) if mask >> i & 1]
        ids = set.intersection(*chosen) if len(chosen) > 1 else set(chosen[0])
        for i in range(size):
            if not mask >> i & 1:
                ids -= members[i]
        if ids:
            found.append((mask, ids, match_of(next(iter(ids)), members, weights)))
    return found


def present_counts(
    masks: Sequence[int], known: dict[int, int], phrase_counts: Sequence[int]
) -> dict[int, int | None]:
    """How many atoms of each group the revision holds, where it can be told cheaply.

    ``known`` gives it for groups looked up one by one; a one-phrase group's
    is the phrase's count less its bigger groups', when those are known.
    """
    counts: dict[int, int | None] = dict(known)
    for mask in sorted(masks, key=lambda m: -bin(m).count("1")):
        if mask in counts:
            continue
        if bin(mask).count("1") != 1:
            counts[mask] = None
            continue
        bigger = [counts.get(m) for m in masks if m != mask and m & mask == mask]
        if any(c is None for c in bigger):
            counts[mask] = None
        else:
            phrase = mask.bit_length() - 1
            counts[mask] = phrase_counts[phrase] - sum(c for c in bigger if c is not None)
    return counts


def walk(
    items: Iterable[bytes],
    direct: Iterable[tuple[bytes, bytes, float]],
    walked: Sequence[Group],
    scorer: Scorer | None,
) -> Iterator[Ranked]:
    """Matches best first: ``direct`` ones ranked at once, ``walked`` ones found in ``items``.

    ``direct`` holds ``(key, item, match)`` of the matches looked up one by
    one (the small groups); ``items`` are the revision's atoms best first by
    rank, among which the ``walked`` groups' members are recognised. A match
    is yielded once its score beats every atom not yet walked: their rank
    is at most the current one and their match at most the best walked
    group that still has members to find. The order is
    ``(-score, -timestamp, key)``, exactly as ranking every match at once.
    """
    rank = scorer or by_relevance
    heap: list[tuple[float, int, bytes, bytes, float]] = []
    for key, item, match in direct:
        relevance, timestamp = entry_rank(item)
        heap.append((-rank(relevance, timestamp) * match, -timestamp, key, item, match))
    heapq.heapify(heap)
    remaining = [group.present for group in walked]

    def best_left() -> float:
        return max(
            (g.match for g, left in zip(walked, remaining, strict=True) if left != 0),
            default=0.0,
        )

    level = best_left()
    for item in items:
        if level == 0.0:
            break  # every walked group's members are found
        relevance, timestamp = entry_rank(item)
        here = rank(relevance, timestamp)
        bound = here * level
        while heap and -heap[0][0] > bound:  # nothing unseen can score as much
            score, negative_time, key, found, match = heapq.heappop(heap)
            yield -score, -negative_time, key, found, match
        key = item_key(item)
        for number, group in enumerate(walked):
            if key in group.ids:
                heapq.heappush(heap, (-here * group.match, -timestamp, key, item, group.match))
                left = remaining[number]
                if left is not None:
                    remaining[number] = left - 1
                    if left == 1:
                        level = best_left()
                break
    while heap:
        score, negative_time, key, found, match = heapq.heappop(heap)
        yield -score, -negative_time, key, found, match


__all__ = [
    "WALK_FACTOR",
    "PhraseCounts",
    "Ranked",
    "match_of",
    "present_counts",
    "should_walk",
    "walk",
]
