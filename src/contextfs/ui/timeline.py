"""A session's ops as a timeline: one row per op in merge order, one lane per actor. Pure.

Rows follow :func:`~contextfs.oplog.merge_key` (Lamport stamp, then actor,
then op id), the order crystallising applies them in, so the page shows
what a checkpoint would do and the same ops read the same on every replica
whatever order they arrived in. Nothing here touches a store: the Sessions
page reads the log and the commits, and hands them over.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from ..oplog.entry import OpEntry, merge_key
from ..records import CommitInfo

#: The longest op summary kept; the table cuts it further with an ellipsis.
SUMMARY_WIDTH = 160
#: Pixels between actor lanes and between ops on the SVG strip.
LANE = 18
STEP = 14
RADIUS = 4


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One op as the timeline shows it.

    ``lane`` is the index of the actor's column, ``pending`` whether the op
    is after the session's last checkpoint (not yet in any commit).
    """

    lamport: int
    actor: str
    lane: int
    kind: str
    summary: str
    op_id: str
    pending: bool


@dataclass(frozen=True, slots=True)
class Timeline:
    """A session's actors (lanes, in order of first appearance) and its rows."""

    actors: tuple[str, ...]
    rows: tuple[TimelineRow, ...]

    @property
    def pending(self) -> int:
        """How many ops wait for the next crystallisation."""
        return sum(row.pending for row in self.rows)

    def ops_by(self, actor: str) -> int:
        """How many ops ``actor`` wrote."""
        return sum(row.actor == actor for row in self.rows)


def build_timeline(entries: Iterable[OpEntry], pending: Collection[str]) -> Timeline:
    """The timeline of ``entries``; ``pending`` holds the ids of the ops after the checkpoint."""
    ordered = sorted(entries, key=merge_key)
    lanes: dict[str, int] = {}
    rows = []
    for entry in ordered:
        actor = entry["actor_id"]
        lane = lanes.setdefault(actor, len(lanes))
        rows.append(
            TimelineRow(
                lamport=entry["lamport_ts"],
                actor=actor,
                lane=lane,
                kind=op_kind(entry),
                summary=op_summary(entry),
                op_id=entry["op_id"],
                pending=entry["op_id"] in pending,
            )
        )
    return Timeline(actors=tuple(lanes), rows=tuple(rows))


def op_kind(entry: OpEntry) -> str:
    """What an op does, as ``domain: op`` (``context: add_atom``)."""
    name = entry["domain_op"].get("op")
    return f"{entry['domain']}: {name}" if isinstance(name, str) and name else entry["domain"]


def op_summary(entry: OpEntry) -> str:
    """One line saying what an op is about: its text, the id it touches, or its fields.

    A redacted op says so: a purge replaced its text, and the page must not
    suggest the text is still somewhere to be read.
    """
    if "redacted" in entry:
        return "(redacted by a purge)"
    operation: Mapping[str, Any] = entry["domain_op"]
    rest = {k: v for k, v in operation.items() if k != "op"}
    detail = rest.get("content") or rest.get("id")
    if detail and "fields" in rest:
        detail = f"{detail} {json.dumps(rest['fields'], ensure_ascii=False, sort_keys=True)}"
    text = " ".join(str(detail or json.dumps(rest, ensure_ascii=False, sort_keys=True)).split())
    return text if len(text) <= SUMMARY_WIDTH else text[: SUMMARY_WIDTH - 1] + "…"


def crystallised_by_session(infos: Iterable[CommitInfo]) -> dict[str, list[CommitInfo]]:
    """The commits each session crystallised into (``metadata["oplog"]["session"]``), in order."""
    found: dict[str, list[CommitInfo]] = {}
    for info in infos:
        oplog = info.commit.metadata.get("oplog")
        session = oplog.get("session") if isinstance(oplog, dict) else None
        if isinstance(session, str):
            found.setdefault(session, []).append(info)
    return found


def timeline_svg(timeline: Timeline, *, last: int | None = None) -> str:
    """An ``<svg>`` strip: a lane per actor, a dot per op left to right in merge order.

    A pending op is a ring, a crystallised one a filled dot. ``last`` keeps
    only the latest ops, so a long session still fits on the overview.
    """
    rows: Sequence[TimelineRow] = timeline.rows[-last:] if last else timeline.rows
    label = max((len(actor) for actor in timeline.actors), default=0) * 7 + 8
    width = label + STEP * max(len(rows), 1) + STEP
    height = LANE * max(len(timeline.actors), 1) + 4
    parts = [
        f'<svg class="timeline" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        f' role="img" aria-label="{len(rows)} ops by {len(timeline.actors)} actors">'
    ]
    for lane, actor in enumerate(timeline.actors):
        y = _y(lane)
        parts.append(
            f'<text class="actor" x="0" y="{y + 4}">{escape(actor)}</text>'
            f'<line class="lane{lane % 6}" x1="{label}" y1="{y}" x2="{width - 4}" y2="{y}"/>'
        )
    for n, row in enumerate(rows):
        kind = "pending" if row.pending else "op"
        parts.append(
            f'<circle class="{kind} lane{row.lane % 6}" cx="{label + STEP * n + STEP // 2}"'
            f' cy="{_y(row.lane)}" r="{RADIUS}"><title>{row.lamport} {escape(row.actor)}:'
            f" {escape(row.kind)} {escape(row.summary)}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _y(lane: int) -> int:
    return LANE * lane + LANE // 2 + 2


__all__ = [
    "Timeline",
    "TimelineRow",
    "build_timeline",
    "crystallised_by_session",
    "op_kind",
    "op_summary",
    "timeline_svg",
]
