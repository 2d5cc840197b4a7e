"""Walking the commit graph without recursion.

Commits carry a generation number (1 for a root, else one more than the
largest parent's), so a max-heap on generation visits children before parents
whatever the clocks said, and ancestry questions stop early.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator

from .commits import Commit

LoadCommit = Callable[[bytes], Commit]


def walk(load: LoadCommit, starts: Iterable[bytes]) -> Iterator[tuple[bytes, Commit]]:
    """Yield each commit reachable from ``starts`` once, children before parents.

    Order: generation descending, then newest time first, then id, so the
    same history always lists the same way.
    """
    heap: list[tuple[int, int, bytes]] = []
    seen: set[bytes] = set()
    loaded: dict[bytes, Commit] = {}
    for oid in starts:
        if oid not in seen:
            seen.add(oid)
            commit = loaded[oid] = load(oid)
            heapq.heappush(heap, (-commit.generation, -commit.timestamp, oid))
    while heap:
        _, _, oid = heapq.heappop(heap)
        commit = loaded.pop(oid)
        yield oid, commit
        for parent in commit.parents:
            if parent not in seen:
                seen.add(parent)
                parent_commit = loaded[parent] = load(parent)
                heapq.heappush(heap, (-parent_commit.generation, -parent_commit.timestamp, parent))


def is_ancestor(load: LoadCommit, ancestor: bytes, descendant: bytes) -> bool:
    """Return True if ``ancestor`` is ``descendant`` or reachable from it."""
    floor = load(ancestor).generation
    for oid, commit in walk(load, [descendant]):
        if oid == ancestor:
            return True
        if commit.generation < floor:
            return False
    return False


def merge_bases(load: LoadCommit, a: bytes, b: bytes) -> list[bytes]:
    """Return the best common ancestors of ``a`` and ``b`` (newest first).

    Paints ancestors of each side; a commit painted by both is a candidate and
    its own ancestors are marked stale, as git's merge-base does. Generation
    order makes the result exact even when commit clocks disagree.
    """
    side_a, side_b, stale = 1, 2, 4
    flags: dict[bytes, int] = {}
    heap: list[tuple[int, int, bytes]] = []
    commits: dict[bytes, Commit] = {}

    def push(oid: bytes, flag: int) -> None:
        old = flags.get(oid, 0)
        if old | flag == old:
            return
        flags[oid] = old | flag
        commit = commits.get(oid)
        if commit is None:
            commit = commits[oid] = load(oid)
        heapq.heappush(heap, (-commit.generation, -commit.timestamp, oid))

    push(a, side_a)
    push(b, side_b)
    results: list[bytes] = []
    while heap and any(not flags[oid] & stale for _, _, oid in heap):
        _, _, oid = heapq.heappop(heap)
        flag = flags[oid]
        if flag & (side_a | side_b) == side_a | side_b and not flag & stale:
            if oid not in results:
                results.append(oid)
            flag |= stale
            flags[oid] = flag
        for parent in commits[oid].parents:
            push(parent, flag)
    # A candidate that is an ancestor of another candidate is not a best base.
    return [
        oid
        for oid in results
        if not any(other != oid and is_ancestor(load, oid, other) for other in results)
    ]
