"""Drawing a commit DAG as ASCII lanes, in the manner of ``git log --graph --oneline``.

Pure: takes commits in log order (children before parents) and returns text.

Each lane is a column that expects one commit. A commit row draws ``*`` in the
commit's lane and ``|`` in every other. Between commit rows, transition rows
move the lanes to where the next row needs them, one column per row: ``\\``
for a lane moving right (a merge opening a lane for a second parent), ``/`` for
one moving left (two lanes that expect the same parent joining, or a lane
closing). Linear history needs no transition rows, so it draws as plain ``*``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..history.lanes import Commit, lane_rows

#: One output row: the graph prefix, and the commit id on commit rows (None otherwise).
Row = tuple[str, str | None]


def graph_rows(commits: Sequence[Commit]) -> list[Row]:
    """Return the rows that draw ``commits`` (``(id, parent ids)`` in log order).

    Parents missing from ``commits`` (a history cut short with ``-n``) keep
    their lanes open to the bottom. Trailing spaces are stripped, except on
    commit rows, which are padded so the text after them lines up with the
    widest of the lanes before and after the commit (as git pads ``*   ``).
    """
    rows: list[Row] = []
    for lane in lane_rows(commits):
        width = 2 * max(lane.lanes_before, lane.lanes_after, 1) - 1
        cells = ["*" if i == lane.column else "|" for i in range(lane.lanes_before)]
        rows.append((" ".join(cells).ljust(width), lane.oid))
        rows.extend((line, None) for line in _transition(list(lane.edges)))
    return rows


def render_graph(commits: Sequence[Commit], label: Callable[[str], str]) -> list[str]:
    """Return printable lines: each commit row followed by ``" " + label(id)``."""
    return [
        f"{prefix} {label(oid)}" if oid is not None else prefix
        for prefix, oid in graph_rows(commits)
    ]


def _transition(edges: list[tuple[int, int]]) -> list[str]:
    """Draw rows moving each edge from its source column to its target, one step a row."""
    positions = [source for source, _ in edges]
    lines: list[str] = []
    while any(p != t for p, (_, t) in zip(positions, edges, strict=True)):
        width = 2 * (max(max(positions), max(t for _, t in edges)) + 1)
        row = [" "] * width
        for n, (_, target) in enumerate(edges):
            at = positions[n]
            if at == target:
                row[2 * at] = "|"
            elif at < target:
                row[2 * at + 1] = "\\"
                positions[n] = at + 1
            else:
                row[2 * at - 1] = "/"
                positions[n] = at - 1
        lines.append("".join(row).rstrip())
    return lines
