"""The commit graph of a page of history as SVG: one row per commit, lanes as columns. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from ..history.lanes import LaneRow

#: Pixels between lanes and between rows (rows match the table's row height).
LANE = 16
ROW = 36
RADIUS = 5


def graph_svg(rows: Sequence[LaneRow], *, merges: set[str] | frozenset[str] = frozenset()) -> str:
    """An ``<svg>`` drawing ``rows``: a dot per commit (a ring for merges), a line per lane."""
    width = LANE * (max((max(r.lanes_before, r.lanes_after) for r in rows), default=1)) + LANE
    height = ROW * max(len(rows), 1)
    parts = [
        f'<svg class="graph" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        ' role="img" aria-label="commit graph">'
    ]
    for n, row in enumerate(rows):
        top = n * ROW + ROW // 2
        for source, target in row.edges:
            x1, x2 = _x(source), _x(target)
            bottom = top + ROW
            parts.append(
                f'<path class="lane lane{target % 6}" d="M{x1} {top} C{x1} {top + ROW // 2}'
                f' {x2} {bottom - ROW // 2} {x2} {bottom}"/>'
            )
    for n, row in enumerate(rows):
        top = n * ROW + ROW // 2
        kind = "merge" if row.oid in merges else "commit"
        parts.append(
            f'<circle class="{kind} lane{row.column % 6}" cx="{_x(row.column)}" cy="{top}"'
            f' r="{RADIUS}"><title>{escape(row.oid[:12])}</title></circle>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _x(column: int) -> int:
    return LANE * column + LANE
