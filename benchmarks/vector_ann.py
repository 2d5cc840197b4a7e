"""pgvector as the PostgreSQL accelerator: recall and latency of HNSW against exact search.

Run from the project root (needs the ``bench`` extra and a PostgreSQL that ships
pgvector: the ``pgserver`` package of the test extra, started here on
127.0.0.1, or ``--url`` naming a database where the connecting role may run
``CREATE EXTENSION vector``):

    .venv/bin/python benchmarks/vector_ann.py            # 20,000 and 50,000 memories
    .venv/bin/python benchmarks/vector_ann.py --quick    # 5,000, a smoke run

Memories are real text, every one distinct (see :func:`distinct_texts`: about
56,000 pieces at hand, so 50,000 is the largest size), embedded once by the
embedder measured (``--embedder``; MiniLM, the default).
Queries are real too: the names of those topics, as a reader would ask for
them, and the questions of the scale benchmark. For each size, side by side in
one run, on one server:

* storing the vectors in batches of 1,000, as ``repo.index()`` does, into a
  database without the extension (the ``vectors`` table alone) and into one
  with it (the mirror and its HNSW index kept as well);
* the ten nearest of every query, exactly (every vector scored by numpy, from
  the matrix a process keeps) and through pgvector's index (candidates
  rescored exactly): recall@10 of the index against exact, the share of
  answers that are identical, and the latency of each, interleaved;
* the memory exact search keeps per process, and the index's size on disk.

Progress goes to stderr, the tables to stdout, and the report to the section
"vector-ann" of ``benchmarks/RESULTS.md`` (``--output`` to write elsewhere).
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import pydoc_data.topics
import re
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import psycopg
from numpy.typing import NDArray

from assembly import parse_sizes
from common import (
    Plans,
    Report,
    Rounds,
    bullets,
    clocked,
    fmt_bytes,
    fmt_seconds,
    interleave,
    machine_lines,
    measured_version,
    progress,
    publish_section,
    section_opening,
    subsection,
)
from contextfs.embed.names import embedder_named
from contextfs.search.pgvector import MIN_CANDIDATES, index_name
from contextfs.search.postgres_vectors import APPROXIMATE_FROM, PostgresVectorIndex
from contextfs.store.postgres import PostgresStore
from retrieval_scale import QUERIES as SCALE_QUERIES

SECTION = "vector-ann"
HEADING = "## pgvector as the PostgreSQL accelerator (issue 15)"
BATCH = 1000
LIMIT = 10
ROUNDS = 5
NEVER = 10**12  # an approximate_from no embedder reaches: exact search


@dataclass(frozen=True)
class Plan:
    """The sizes measured, and the embedder."""

    sizes: tuple[int, ...] = (20_000, 50_000)
    embedder: str = "minilm"


PLANS = Plans(
    script="vector_ann.py",
    full=Plan(),
    quick=Plan(sizes=(5_000,)),
    quick_help="5,000 memories, a smoke run",
    options={
        "sizes": "memory counts to measure, comma-separated (20000,50000)",
        "embedder": "the embedder, by name (minilm)",
    },
    parsers={"sizes": parse_sizes},
)


# -- real text ------------------------------------------------------------------------------


def distinct_texts(count: int) -> list[str]:
    """``count`` distinct pieces of real English from Python's own documentation and source.

    In order: the paragraphs of the documentation topics, the paragraphs of the
    standard library's docstrings, its comment blocks, then runs of one to four
    consecutive sentences of those paragraphs. Nothing is repeated or suffixed:
    near-copies would make every neighbourhood a tie, and recall meaningless.
    """
    texts: dict[str, None] = {}
    paragraphs = [*_topic_paragraphs(), *_docstring_paragraphs()]
    for text in [*paragraphs, *_comment_blocks()]:
        texts.setdefault(text)
    for width in range(1, 5):
        for paragraph in paragraphs:
            sentences = [s for s in re.split(r"(?<=[.!?])\s+", paragraph) if len(s) >= 20]
            for start in range(len(sentences) - width + 1):
                texts.setdefault(" ".join(sentences[start : start + width]))
    if len(texts) < count:
        raise SystemExit(f"the text at hand has {len(texts):,} distinct pieces, not {count:,}")
    return list(texts)[:count]


def _topic_paragraphs() -> Iterator[str]:
    topics: dict[str, str] = pydoc_data.topics.topics
    for name in sorted(topics):
        for block in re.split(r"\n\s*\n", topics[name]):
            text = " ".join(block.split())
            if len(text) >= 20:
                yield text


def _sources() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return [path for path in sorted(root.rglob("*.py")) if "site-packages" not in path.parts]


def _docstring_paragraphs() -> Iterator[str]:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    for path in _sources():
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue  # a test file written to be broken
        for node in ast.walk(tree):
            doc = ast.get_docstring(node) if isinstance(node, kinds) else None
            for block in re.split(r"\n\s*\n", doc or ""):
                text = " ".join(block.split())
                if len(text) >= 20:
                    yield text


def _comment_blocks() -> Iterator[str]:
    """Runs of ``#`` comment lines that read as prose (mostly letters and spaces)."""
    for path in _sources():
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (UnicodeDecodeError, ValueError):
            continue
        block: list[str] = []
        for line in [*lines, ""]:
            stripped = line.strip()
            if stripped.startswith("#") and not stripped.startswith("#!"):
                block.append(stripped.lstrip("#").strip())
                continue
            text = " ".join(" ".join(block).split())
            block = []
            prose = sum(c.isalpha() or c == " " for c in text)
            if len(text) >= 30 and prose > 0.85 * len(text):
                yield text


def queries() -> list[str]:
    """Topic names as a reader asks for them, and the scale benchmark's questions."""
    names = [name.replace("-", " ") for name in sorted(pydoc_data.topics.topics)]
    return [*dict.fromkeys([*names, *SCALE_QUERIES])]


# -- the server -------------------------------------------------------------------------------


@contextlib.contextmanager
def databases(url: str | None) -> Iterator[tuple[Callable[[str], str], str]]:
    """A function making a fresh database by name (its URL), and the server's version."""
    from contextfs.testing.pgcluster import start_cluster

    cluster = None
    if url is None:
        spec = importlib.util.find_spec("pgserver")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("no pgvector server: install pgserver (test extra) or pass --url")
        bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        cluster = start_cluster(bindir=bindir)
        url = cluster.url()
    made: list[str] = []

    def make(name: str) -> str:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # names made here
            admin.execute(f"CREATE DATABASE {name}")
        made.append(name)
        return urlsplit(url)._replace(path=f"/{name}").geturl()

    try:
        with psycopg.connect(url, autocommit=True) as admin:
            row = admin.execute(
                "SELECT current_setting('server_version'), (SELECT default_version"
                " FROM pg_available_extensions WHERE name = 'vector')"
            ).fetchone()
        if row is None or row[1] is None:
            raise SystemExit("the server does not ship pgvector")
        yield make, f"{row[0]}, pgvector {row[1]}"
    finally:
        with contextlib.suppress(psycopg.Error), psycopg.connect(url, autocommit=True) as admin:
            for name in made:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if cluster is not None:
            cluster.stop()


# -- measuring --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    """What one size measured."""

    atoms: int
    dimensions: int
    store_plain: float
    store_mirrored: float
    recall: float
    identical: float
    exact: Rounds
    approximate: Rounds
    index_bytes: int
    first_search: float

    def rows(self) -> list[tuple[str, str, str]]:
        """``(measurement, value, note)`` rows for the report."""
        n = f"{self.atoms:,}"
        matrix = self.atoms * self.dimensions * 4
        speed = self.exact.median / self.approximate.median
        return [
            (
                f"{n}: store the vectors, batches of {BATCH:,}, without pgvector",
                fmt_seconds(self.store_plain),
                f"{self.atoms / self.store_plain:,.0f} vectors/s",
            ),
            (
                f"{n}: same, with pgvector (its copy kept;"
                f" the index only from {APPROXIMATE_FROM:,})",
                fmt_seconds(self.store_mirrored),
                f"{self.store_mirrored / self.store_plain:.2f}x without",
            ),
            (
                f"{n}: first search through pgvector",
                fmt_seconds(self.first_search),
                "builds the index here if the store did not"
                f" (it does from {APPROXIMATE_FROM:,} vectors)",
            ),
            (
                f"{n}: exact nearest {LIMIT}, matrix in memory",
                self.exact.median_labelled_p95(),
                f"the matrix: {fmt_bytes(matrix)} in every process",
            ),
            (
                f"{n}: pgvector HNSW nearest {LIMIT}, rescored exactly",
                self.approximate.median_labelled_p95(),
                f"{speed:.2f}x as fast as exact; index {fmt_bytes(self.index_bytes)} on disk",
            ),
            (
                f"{n}: recall@{LIMIT} of HNSW against exact",
                f"{self.recall:.3f}",
                f"{self.identical:.0%} of answers identical (ids and order)",
            ),
        ]


def store_vectors(url: str, ids: Sequence[bytes], matrix: NDArray[np.float32], name: str) -> float:
    """Seconds to add every vector in batches, as ``repo.index()`` does."""
    with PostgresStore.open(url, create=True) as store:
        index = PostgresVectorIndex(store)
        started = time.perf_counter()
        for start in range(0, len(ids), BATCH):
            index.add(name, ids[start : start + BATCH], matrix[start : start + BATCH])
        return time.perf_counter() - started


def measure_size(
    make: Callable[[str], str],
    matrix: NDArray[np.float32],
    asked: NDArray[np.float32],
    embedder: str,
) -> Size:
    """Store ``matrix`` with and without pgvector, then compare the two searches."""
    atoms = len(matrix)
    ids = [i.to_bytes(32, "big") for i in range(atoms)]
    progress(f"{atoms:,}: storing the vectors without pgvector")
    plain = store_vectors(make(f"bench_plain_{atoms}"), ids, matrix, embedder)
    url = make(f"bench_pgvector_{atoms}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")
    progress(f"{atoms:,}: storing the vectors with pgvector")
    mirrored = store_vectors(url, ids, matrix, embedder)
    with PostgresStore.open(url) as store:
        exact = PostgresVectorIndex(store, approximate_from=NEVER)
        approximate = PostgresVectorIndex(store, approximate_from=0)
        exact.nearest(embedder, asked[0], LIMIT)  # reads the matrix once, untimed
        first, _ = clocked(lambda: approximate.nearest(embedder, asked[0], LIMIT))
        answers_exact = [exact.nearest(embedder, q, LIMIT) for q in asked]
        answers_ann = [approximate.nearest(embedder, q, LIMIT) for q in asked]
        overlap = sum(
            len({oid for oid, _ in a} & {oid for oid, _ in b})
            for a, b in zip(answers_exact, answers_ann, strict=True)
        )
        identical = sum(a == b for a, b in zip(answers_exact, answers_ann, strict=True))
        progress(f"{atoms:,}: exact and HNSW searches, interleaved")
        timed_exact, timed_ann = interleave(
            [_searches(exact, embedder, asked), _searches(approximate, embedder, asked)], ROUNDS
        )
        with store.connection() as conn:
            row = conn.execute(
                "SELECT pg_relation_size(%s::regclass)", (index_name(embedder),)
            ).fetchone()
    return Size(
        atoms,
        matrix.shape[1],
        plain,
        mirrored,
        overlap / (LIMIT * len(asked)),
        identical / len(asked),
        timed_exact,
        timed_ann,
        int(row[0]) if row else 0,
        first,
    )


def _searches(
    index: PostgresVectorIndex, embedder: str, asked: NDArray[np.float32]
) -> Callable[[], float]:
    """One round: every query once; the median seconds of one search."""

    def run() -> float:
        times = []
        for query in asked:
            seconds, _ = clocked(lambda q=query: index.nearest(embedder, q, LIMIT))
            times.append(seconds)
        return sorted(times)[len(times) // 2]

    return run


# -- the report -------------------------------------------------------------------------------


def build_body(
    command: str,
    sizes: Sequence[Size],
    report: Report,
    embedder: str,
    embed_rate: float,
    server: str,
    asked: int,
) -> tuple[str, str]:
    """The section's Markdown, and its table for stdout."""
    rows = [row for size in sizes for row in size.rows()]
    table = "\n".join(
        [
            "| Measurement | Value | Note |",
            "|---|---|---|",
            *(f"| {a} | {b} | {c} |" for a, b, c in rows),
        ]
    )
    lines = [
        *section_opening(HEADING, PLANS.script, command, measured_version()),
        *machine_lines([("PostgreSQL", server), ("numpy", np.__version__)]),
        report.load_line(),
        *subsection(f"Exact against pgvector's HNSW index ({embedder})", table),
        *subsection(
            "Method",
            *bullets(
                [
                    "Memories: distinct pieces of real English from Python's documentation "
                    "topics and its standard library's docstrings and comment blocks, then "
                    "runs of one to four sentences of those paragraphs (no copies: a "
                    "near-copy makes every neighbourhood a tie), embedded once "
                    f"({embed_rate:,.0f} texts/s); ids are their numbers.",
                    f"Queries: {asked} real ones (topic names as a reader asks for them, and "
                    "the scale benchmark's questions), each asked for its 10 nearest.",
                    "Exact: `PostgresVectorIndex` scoring every vector with numpy from the "
                    "matrix it keeps while the embedder's vectors are unchanged (first read "
                    "untimed). HNSW: the same index with `approximate_from=0`, pgvector's "
                    f"defaults (m 16, ef_construction 64), at least {MIN_CANDIDATES} candidates "
                    "(`hnsw.ef_search`), rescored exactly from the stored float32s.",
                    f"The library switches to the index from {APPROXIMATE_FROM:,} vectors of "
                    "an embedder, where the database has pgvector installed; below that "
                    "exact search is as fast and never misses.",
                    "Latency: median over queries of one round, median (p95) over "
                    f"{ROUNDS} interleaved rounds.",
                ]
            ),
        ),
    ]
    return "\n".join(lines), table


def main(argv: list[str] | None = None) -> int:
    """Measure exact and approximate search at each size and write the section."""
    parser = PLANS.parser(__doc__)
    parser.add_argument("--url", help="a PostgreSQL database URL whose role may create databases")
    args, plan = PLANS.choose(parser, argv, lambda p: "" if p.sizes else "name a size")
    report = Report()
    report.note_load()
    begun = time.perf_counter()
    embedder = embedder_named(plan.embedder)
    texts = distinct_texts(max(plan.sizes))
    progress(f"embedding {len(texts):,} texts with {embedder.id}")
    seconds, matrix = clocked(lambda: embedder.embed(texts))
    asked_texts = queries()
    asked = embedder.embed(asked_texts)
    with databases(args.url) as (make, server):
        sizes = [measure_size(make, matrix[:n], asked, embedder.id) for n in plan.sizes]
    report.note_load()
    command = PLANS.command(args)
    body, table = build_body(
        command, sizes, report, plan.embedder, len(texts) / seconds, server, len(asked_texts)
    )
    publish_section(
        args.output, SECTION, HEADING, body, tables=[table], wall=time.perf_counter() - begun
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
