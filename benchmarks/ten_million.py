"""One store of 10,000,000 memories (issue 17): where teams outgrow one machine.

Run from the project root:

    .venv/bin/python benchmarks/ten_million.py                  # 10,000,000 atoms, ~40 minutes
    .venv/bin/python benchmarks/ten_million.py --quick          # 200,000 atoms, a smoke run
    .venv/bin/python benchmarks/ten_million.py --atoms 3000000

The atoms are benchmarks/assembly.py's (the paragraphs of ``pydoc_data.topics``
with their suffix, relevance and time from the same seed), ingested into one
SQLite repository by one ``add_atoms`` call given a generator (about 1.2 KiB
of memory per atom staged) and one commit. On that store, in a temporary
directory removed at the end:

* ingest rate, the full-text index catch-up (the first query of a fresh
  repository), the store's size before and after it, and the process's peak
  resident memory;
* the first streamed chunk, fresh repository;
* ``repo.context(budget=4000, query)`` per query of assembly.py: once on a
  fresh repository (cold: the first query with many matches builds the
  snapshot's columns and keeps them in the store, the later ones read them),
  then five times on one repository kept open (warm);
* ``repo.search(q, limit=10)`` against the plain FTS5 query, warm;
* ``repo.turn_context`` per turn, the queries in turn, warm.

The report goes to the "Ten million memories (issue 17)" section of
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import functools
import json
import random
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from assembly import BUDGET, QUERIES, SEED, TURN_BUDGET, YEAR_SECONDS, floor_once
from common import (
    Corpus,
    Plans,
    Report,
    Rounds,
    Row,
    bullets,
    fmt_bytes,
    fmt_seconds,
    interleave,
    machine_lines,
    markdown_table,
    measured_version,
    progress,
    publish_section,
    section_opening,
    string_atoms,
    subsection,
    tree_bytes,
)
from contextfs import Repository
from contextfs.search import parse_query
from contextfs.search.query import fts5_expression

SECTION = "ten-million"
HEADING = "## Ten million memories (issue 17)"
COUNT_SQL = "SELECT count(*) FROM search_fts WHERE search_fts MATCH ?"


@dataclass(frozen=True)
class Plan:
    """How big, and how often each warm measurement repeats."""

    atoms: int = 10_000_000
    warm_runs: int = 5
    search_runs: int = 5


PLANS = Plans(
    script="ten_million.py",
    full=Plan(),
    quick=Plan(200_000, warm_runs=4, search_runs=5),
    quick_help="200,000 atoms, a smoke run",
    options={"atoms": "atoms in the store (10000000)"},
)


@dataclass
class Query:
    """One query's figures."""

    text: str
    matches: int = 0
    cold: float = 0.0
    warm: Rounds = field(default_factory=Rounds)
    search: Rounds = field(default_factory=Rounds)
    floor: Rounds = field(default_factory=Rounds)


@dataclass
class Run:
    """Everything measured."""

    atoms: int
    ingest: float = 0.0
    catch_up: float = 0.0
    bytes_before: int = 0
    bytes_after: int = 0
    peak_rss: int = 0
    first_chunk: float = 0.0
    queries: list[Query] = field(default_factory=list)
    turns: Rounds = field(default_factory=Rounds)


def build(plan: Plan, corpus: Corpus, folder: Path, run: Run) -> str:
    """Ingest the atoms (one streamed ``add_atoms``, one commit); return the commit id."""
    rng = random.Random(SEED)
    start = time.perf_counter()
    with Repository.init(folder, embedder="none") as repo:
        repo.add_atoms(string_atoms(corpus, rng, 0, plan.atoms, year_seconds=YEAR_SECONDS))
        progress(f"  staged, {time.perf_counter() - start:.0f} s")
        revision = str(repo.commit("ingest"))
    run.ingest = time.perf_counter() - start
    run.bytes_before = tree_bytes(folder / ".contextfs")
    progress(f"ingest {fmt_seconds(run.ingest)} ({plan.atoms / run.ingest:,.0f} atoms/s)")
    with Repository.open(folder) as repo:
        start = time.perf_counter()
        repo.search(QUERIES[0], limit=10)
        run.catch_up = time.perf_counter() - start
    run.bytes_after = tree_bytes(folder / ".contextfs")
    progress(f"index catch-up (first query) {fmt_seconds(run.catch_up)}")
    return revision


def measure(plan: Plan, folder: Path, revision: str, run: Run) -> None:
    """The first chunk, contexts cold and warm, searches and turns."""
    with Repository.open(folder) as repo:
        start = time.perf_counter()
        chunks = repo.stream(revision, chunk_size=10, max_tokens_per_chunk=500)
        next(chunks)
        run.first_chunk = time.perf_counter() - start
        chunks.close()
    progress(f"first chunk {fmt_seconds(run.first_chunk)}")
    with Repository.open(folder) as repo, repo.store.connection() as conn:
        for text in QUERIES:
            expression = fts5_expression(parse_query(text), "any")
            matches = int(conn.execute(COUNT_SQL, (expression,)).fetchone()[0])
            run.queries.append(Query(text, matches))
    for query in run.queries:
        with Repository.open(folder) as repo:
            start = time.perf_counter()
            repo.context(revision, budget=BUDGET, query=query.text)
            query.cold = time.perf_counter() - start
        progress(f"context cold {query.text!r}: {fmt_seconds(query.cold)}")
    with Repository.open(folder) as repo:
        for query in run.queries:
            for _ in range(plan.warm_runs):
                start = time.perf_counter()
                repo.context(revision, budget=BUDGET, query=query.text)
                query.warm.add(time.perf_counter() - start)
            shown = ", ".join(fmt_seconds(v) for v in query.warm.values)
            progress(f"context warm {query.text!r}: {shown}")
        for query in run.queries:
            expression = fts5_expression(parse_query(query.text), "any")
            search = functools.partial(_timed_search, repo, query.text)
            floor = functools.partial(floor_once, repo, expression)
            query.search, query.floor = interleave([search, floor], plan.search_runs, 60.0)
            progress(
                f"search {query.text!r}: {fmt_seconds(query.search.median)} vs "
                f"{fmt_seconds(query.floor.median)}"
            )
        state = None
        for query in run.queries:
            start = time.perf_counter()
            context = repo.turn_context(query.text, budget=TURN_BUDGET, previous=state)
            run.turns.add(time.perf_counter() - start)
            state = json.loads(json.dumps(context.state))
    run.peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _timed_search(repo: Repository, text: str) -> float:
    start = time.perf_counter()
    repo.search(text, limit=10)
    return time.perf_counter() - start


def warm_median(query: Query) -> float:
    """The median of the warm runs after the two that count matches and build the columns."""
    later = query.warm.values[2:] or query.warm.values
    return Rounds(list(later)).median


def rows(run: Run) -> list[Row]:
    """The report's table."""
    n = f"{run.atoms:,}"
    table = [
        Row(
            f"ingest {n} atoms (one add_atoms, one commit) / index catch-up (first query)",
            f"{fmt_seconds(run.ingest)} ({run.atoms / run.ingest:,.0f} atoms/s) / "
            f"{fmt_seconds(run.catch_up)}",
            f"{run.atoms / (run.ingest + run.catch_up):,.0f} atoms/s with the index",
        ),
        Row(
            "store size before / after the full-text index; peak RSS of the process",
            f"{fmt_bytes(run.bytes_before)} / {fmt_bytes(run.bytes_after)}",
            f"peak RSS {fmt_bytes(run.peak_rss)}",
        ),
        Row("first streamed chunk, fresh repository", fmt_seconds(run.first_chunk)),
    ]
    for query in run.queries:
        table.append(
            Row(
                f"'{query.text}' ({query.matches:,} matches): context cold / warm median "
                f"(runs 3+); search / plain FTS5 (medians)",
                f"{fmt_seconds(query.cold)} / {fmt_seconds(warm_median(query))}; "
                f"{fmt_seconds(query.search.median)}",
                f"FTS5 {fmt_seconds(query.floor.median)}",
                query.search.median / query.floor.median,
            )
        )
    table.append(
        Row(
            f"turn_context (budget {TURN_BUDGET:,}) per turn, warm: median (p95)",
            run.turns.median_p95(),
            f"{len(run.turns)} turns",
        )
    )
    return table


def render(command: str, plan: Plan, run: Run, wall: float, measured: str) -> str:
    """The RESULTS.md section."""
    lines = section_opening(HEADING, "ten_million.py", command, measured)
    lines += [f"- Store: {run.atoms:,} atoms; whole run {wall:.0f} s"]
    lines += machine_lines()
    lines += subsection("Figures", markdown_table(rows(run)))
    warm_runs = {q.text: ", ".join(fmt_seconds(v) for v in q.warm.values) for q in run.queries}
    notes = [
        "One SQLite repository; atoms as in the assembly section (item i is paragraph i mod "
        "1,912 of `pydoc_data.topics`, suffixed from 1,912 on; relevance and time from "
        f"random.Random({SEED})). Ingest is `Repository.init`, one `add_atoms` given a "
        "generator, and one `commit`; the catch-up is the first `repo.search` of a fresh "
        "repository (full-text indexing is deferred to it).",
        "Cold: one `repo.context` on a fresh `Repository` (empty caches; the OS page cache "
        "warm); the first cold query with many matches builds the snapshot's columns and keeps "
        "them in the store (derived data), the cold queries after it read them. Warm: one "
        "repository, each query five times in turn; the figure is the median of runs 3 on. "
        "All warm runs: "
        + "; ".join(f"'{text}' {values}" for text, values in warm_runs.items())
        + ".",
        "Search: `repo.search(q, limit=10)` and the plain FTS5 query of the assembly section "
        "(ids only, `ORDER BY bm25 LIMIT 10`), interleaved on the warm repository.",
        "Peak RSS: `ru_maxrss` of this process, which built the store too.",
    ]
    lines += subsection("Notes", *bullets(notes))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Build the store, measure, and write the RESULTS.md section."""
    parser = PLANS.parser(__doc__)
    args, plan = PLANS.choose(parser, argv)
    corpus = Corpus()
    report = Report()
    started = time.perf_counter()
    measured = measured_version()
    progress(f"ten-million benchmark: {plan.atoms:,} atoms")
    run = Run(plan.atoms)
    with tempfile.TemporaryDirectory(prefix="contextfs-10m-") as temp:
        folder = Path(temp) / "store"
        folder.mkdir()
        revision = build(plan, corpus, folder, run)
        measure(plan, folder, revision, run)
    wall = time.perf_counter() - started
    section = render(PLANS.command(args), plan, run, wall, measured)
    report.rows = rows(run)
    publish_section(
        args.output, SECTION, HEADING, section, tables=[markdown_table(report.rows)], wall=wall
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
