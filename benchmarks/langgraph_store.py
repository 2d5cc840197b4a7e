"""LangGraph store (issue 20): ContextFSStore against LangGraph's own SqliteStore, same items.

Run from the project root:

    .venv/bin/python benchmarks/langgraph_store.py ../shared/data/locomo-dev           # 5 talks
    .venv/bin/python benchmarks/langgraph_store.py ../shared/data/locomo-dev --quick   # 1, smoke

The items are the turns of LoCoMo conversations (Maharana et al., ACL 2024,
snap-research/locomo, data/locomo10.zip), read from the folder given: one
item per turn, in namespace ``("talks", conversation, speaker)`` under its
``dia_id``, value ``{"text", "session"}``. Two stores on files in one
temporary folder, the same calls through LangGraph's ``BaseStore`` API,
interleaved call by call (which store goes first alternates):

1. ``put`` of every turn, one call each: for ContextFSStore every put is a
   commit (an SQLite transaction of objects and refs); for SqliteStore a row;
2. ``get`` of ``--gets`` random turns;
3. ``search`` of one speaker's namespace with a filter on ``session``, the
   first 10 (both stores answer from their own tables);
4. ``search`` with a ``query`` (the text of a question of the conversation's
   ``qa``): ContextFSStore ranks by words and meaning (its default embedder);
   SqliteStore without an embedding index ignores the query, so its figure is
   the floor of a namespace scan, not a ranking;

Medians and 95th percentiles per call; ratios are ContextFSStore / SqliteStore.
The report goes to the "langgraph" section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.store.base import BaseStore
from langgraph.store.sqlite import SqliteStore

from common import (
    Plans,
    Report,
    Rounds,
    Row,
    bullets,
    fmt_seconds,
    machine_lines,
    markdown_table,
    measured_version,
    package_version,
    progress,
    publish_section,
    section_opening,
    subsection,
)
from contextfs import Repository
from contextfs.integrations.langgraph import ContextFSStore

SECTION = "langgraph"
HEADING = "## LangGraph store (issue 20)"


@dataclass(frozen=True)
class Plan:
    conversations: int = 5
    gets: int = 1000
    searches: int = 200


PLANS = Plans(
    script="langgraph_store.py",
    full=Plan(),
    quick=Plan(1, 200, 40),
    quick_help="one conversation, 200 gets, 40 searches",
    options={
        "conversations": "LoCoMo conversations to load (5)",
        "gets": "random gets (1000)",
        "searches": "searches of each kind (200)",
    },
)


@dataclass(frozen=True)
class Turn:
    namespace: tuple[str, ...]
    key: str
    value: dict[str, Any]


def load(files: list[Path]) -> tuple[list[Turn], list[str]]:
    """The turns of the conversations, and their questions (categories 1-4)."""
    turns: list[Turn] = []
    questions: list[str] = []
    for file in files:
        talk = json.loads(file.read_text(encoding="utf-8"))
        name = file.stem
        number = 1
        while f"session_{number}" in talk:
            for turn in talk[f"session_{number}"]:
                value = {"text": turn["text"], "session": number}
                turns.append(Turn(("talks", name, turn["speaker"]), turn["dia_id"], value))
            number += 1
        questions += [q["question"] for q in talk.get("qa", []) if q.get("category") != 5]
    return turns, questions


def pair(
    stores: dict[str, BaseStore], calls: list[Callable[[BaseStore], object]]
) -> dict[str, Rounds]:
    """Time each call on both stores, alternating which goes first."""
    timings = {name: Rounds() for name in stores}
    names = list(stores)
    for number, call in enumerate(calls):
        order = names if number % 2 == 0 else names[::-1]
        for name in order:
            start = time.perf_counter()
            call(stores[name])
            timings[name].add(time.perf_counter() - start)
    return timings


def row(what: str, timings: dict[str, Rounds]) -> Row:
    ours, theirs = timings["contextfs"], timings["sqlite"]
    return Row(
        what,
        f"{fmt_seconds(ours.median)} (p95 {fmt_seconds(ours.p95)})",
        f"{fmt_seconds(theirs.median)} (p95 {fmt_seconds(theirs.p95)})",
        ours.median / theirs.median,
    )


def main(argv: list[str] | None = None) -> int:
    parser = PLANS.parser(__doc__)
    parser.add_argument("locomo", type=Path, help="the folder of LoCoMo conversation files")
    args, plan = PLANS.choose(parser, argv)
    files = sorted(args.locomo.glob("*.json"))[: plan.conversations]
    if not files:
        parser.error(f"no LoCoMo files (*.json) in {str(args.locomo)!r}")
    report = Report()
    report.note_load()
    begun = time.perf_counter()
    turns, questions = load(files)
    rng = random.Random(20)
    progress(f"{len(turns):,} turns of {len(files)} conversation(s), {len(questions)} questions")
    with tempfile.TemporaryDirectory(prefix="contextfs-langgraph-") as temp:
        folder = Path(temp)
        repo = Repository.init(folder / "contextfs")
        conn = sqlite3.connect(
            folder / "langgraph.sqlite", check_same_thread=False, isolation_level=None
        )
        sqlite_store = SqliteStore(conn)
        sqlite_store.setup()
        stores: dict[str, BaseStore] = {"contextfs": ContextFSStore(repo), "sqlite": sqlite_store}
        progress("put, one call per turn")
        puts = pair(stores, [_put(t) for t in turns])
        report.add(row(f"put (one item per call; {len(turns):,} items)", puts))
        picks = [rng.choice(turns) for _ in range(plan.gets)]
        gets = pair(stores, [_get(t) for t in picks])
        report.add(row(f"get (random keys; {plan.gets:,} calls)", gets))
        speakers = sorted({t.namespace for t in turns})
        filtered = [
            _search(rng.choice(speakers), {"session": rng.randint(1, 5)}, None)
            for _ in range(plan.searches)
        ]
        report.add(row("search: namespace + filter, first 10", pair(stores, filtered)))
        asked = [_search(("talks",), None, rng.choice(questions)) for _ in range(plan.searches)]
        report.add(
            row(
                "search with a query, first 10 (SqliteStore: no index, query ignored)",
                pair(stores, asked),
            )
        )
        commits = sum(1 for _ in repo.log())
        assert repo.verify().ok
        repo.close()
        conn.close()
    report.note_load()
    wall = time.perf_counter() - begun
    measured = measured_version()
    lines = section_opening(
        HEADING,
        "langgraph_store.py",
        PLANS.command(args, str(args.locomo)),
        measured,
        "Ratios are ContextFSStore / SqliteStore (lower is better for ContextFS).",
    )
    lines += [
        report.load_line(),
        *machine_lines(
            [
                ("langgraph-checkpoint", package_version("langgraph-checkpoint")),
                ("langgraph-checkpoint-sqlite", package_version("langgraph-checkpoint-sqlite")),
            ]
        ),
    ]
    lines += subsection("Figures", markdown_table(report.rows))
    notes = [
        f"{len(turns):,} LoCoMo turns of {len(files)} conversation(s); ContextFSStore made "
        f"{commits:,} commits (one per put), and the repository verified afterwards.",
        "Both stores on files in the same folder; ContextFSStore on a SQLite repository with "
        "its default embedder (a query is ranked by words and meaning); SqliteStore without "
        "an embedding index (it needs the sqlite-vec extension for one).",
    ]
    lines += subsection("Notes", *bullets(notes))
    publish_section(
        args.output,
        SECTION,
        HEADING,
        "\n".join(lines) + "\n",
        tables=[markdown_table(report.rows)],
        wall=wall,
    )
    return 0


def _put(turn: Turn) -> Callable[[BaseStore], object]:
    return lambda store: store.put(turn.namespace, turn.key, turn.value)


def _get(turn: Turn) -> Callable[[BaseStore], object]:
    def get(store: BaseStore) -> object:
        item = store.get(turn.namespace, turn.key)
        assert item is not None
        return item

    return get


def _search(
    namespace: tuple[str, ...], where: dict[str, Any] | None, query: str | None
) -> Callable[[BaseStore], object]:
    return lambda store: store.search(namespace, filter=where, query=query, limit=10)


if __name__ == "__main__":
    sys.exit(main())
