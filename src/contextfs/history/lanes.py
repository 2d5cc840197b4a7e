"""Laying a commit DAG out in lanes, as ``git log --graph`` does: pure, for text and pictures.

Commits come in log order (children before parents). Each lane is a column
that expects one commit; a commit sits in the lane that expects it, its lane
continues with its first parent, and further parents open lanes just to its
right. Lanes that come to expect the same commit join the leftmost of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Commit = tuple[str, Sequence[str]]


@dataclass(frozen=True, slots=True)
class LaneRow:
    """One commit's row: its column, the lanes around it, and where each lane goes next."""

    oid: str
    column: int
    lanes_before: int
    lanes_after: int
    edges: tuple[tuple[int, int], ...]  # (column in this row, column in the next)


def lane_rows(commits: Sequence[Commit]) -> list[LaneRow]:
    """The rows that lay out ``commits`` (``(id, parent ids)`` in log order).

    Parents missing from ``commits`` (a page of a longer history) keep their
    lanes open to the bottom.
    """
    rows: list[LaneRow] = []
    lanes: list[str] = []
    for oid, parents in commits:
        if oid not in lanes:
            lanes.append(oid)
        column = lanes.index(oid)
        new_lanes, edges = _next_lanes(lanes, column, parents)
        rows.append(LaneRow(oid, column, len(lanes), len(new_lanes), tuple(edges)))
        lanes = new_lanes
    return rows


def _next_lanes(
    lanes: list[str], column: int, parents: Sequence[str]
) -> tuple[list[str], list[tuple[int, int]]]:
    """The lanes after the commit in lane ``column``, and the moves (from, to)."""
    # Every slot of the expanded row: (column it comes from, commit it expects).
    expanded: list[tuple[int, str]] = []
    for i, expected in enumerate(lanes):
        if i == column:
            expanded.extend((i, parent) for parent in parents)
        else:
            expanded.append((i, expected))
    new_lanes: list[str] = []
    for _, expected in expanded:
        if expected not in new_lanes:
            new_lanes.append(expected)
    edges = [(source, new_lanes.index(expected)) for source, expected in expanded]
    return new_lanes, edges
