"""Retrieval at scale, for benchmarks/retrieval.py: hybrid against lexical on many real texts.

One SQLite repository of N memories (the paragraphs of ``pydoc_data.topics``,
as the core benchmarks use), then, side by side in one run:

* the vector catch-up: ``repo.index()`` embeds every memory with the embedder
  measured and stores the vectors (its time, and texts per second), as the
  first hybrid query would;
* ``repo.search(q, limit=10)`` lexical against ``retrieval="hybrid"``,
  interleaved over a few real queries, medians and p95;
* the bytes the vectors take in the store file (SQLite's ``dbstat``).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common import Corpus, Rounds, clocked, fmt_seconds, interleave, progress, verdict
from contextfs import T_STRING, MemoryAtom, Repository
from contextfs.services.assembler import Retrieval

#: Real questions about the corpus (Python's own documentation topics).
QUERIES = (
    "decorator",
    "garbage collection",
    "how do I handle errors",
    "iterate over a dictionary",
    "context manager",
)
ROUNDS = 7
#: Issue 15: hybrid search may cost at most this many times lexical search.
LATENCY_GOAL = 2.0


@dataclass(frozen=True)
class Scale:
    """What the scale run measured."""

    atoms: int
    embedder: str
    catch_up: float
    embedded: int
    lexical: Rounds
    hybrid: Rounds
    vector_bytes: int | None

    def rows(self) -> list[tuple[str, str, str]]:
        """``(measurement, value, note)`` rows for the report."""
        ratio = self.hybrid.median / self.lexical.median
        goal = f"goal <= {LATENCY_GOAL:g}x: {verdict(ratio <= LATENCY_GOAL)}"
        per_atom = (
            f"{self.vector_bytes / self.atoms:,.0f} B"
            if self.vector_bytes is not None
            else "not measured (this SQLite has no dbstat)"
        )
        return [
            (
                f"{self.embedder}: vector catch-up (`repo.index()`), {self.atoms:,} memories",
                fmt_seconds(self.catch_up),
                f"{self.embedded / self.catch_up:,.0f} memories embedded and stored per second",
            ),
            (
                f"{self.embedder}: lexical `repo.search(q, limit=10, retrieval='lexical')`",
                self.lexical.median_labelled_p95(),
                "",
            ),
            (
                f"{self.embedder}: hybrid `repo.search(q, limit=10)` (the default)",
                self.hybrid.median_labelled_p95(),
                f"{ratio:.2f}x lexical; {goal}",
            ),
            (
                f"{self.embedder}: vector bytes per memory in the store file",
                per_atom,
                "table and index pages",
            ),
        ]


def measure_scale(atoms: int, folder: Path, embedder: str) -> Scale:
    """Build the repository, catch its vectors up, then time lexical and hybrid searches."""
    progress(f"scale: {atoms:,} memories of real text, embedder {embedder}")
    corpus = Corpus()
    folder.mkdir()
    with Repository.init(folder, embedder=embedder) as repo:
        repo.add_atoms(MemoryAtom(text, T_STRING) for text in corpus.texts(0, atoms))
        repo.commit("many memories")
        repo.search(QUERIES[0], retrieval="lexical")  # the full-text catch-up, untimed
        progress(f"scale: the vector catch-up of {embedder} (repo.index())")
        catch_up, _ = clocked(repo.index)
        embedded = repo.indexes.vectors.count()
        progress("scale: lexical and hybrid searches, interleaved")
        lexical, hybrid = interleave(
            [_searches(repo, "lexical"), _searches(repo, "hybrid")], ROUNDS
        )
    return Scale(
        atoms,
        embedder,
        catch_up,
        embedded,
        lexical,
        hybrid,
        _vector_bytes(folder / ".contextfs" / "store.db"),
    )


def _searches(repo: Repository, retrieval: Retrieval) -> Callable[[], float]:
    """One round: every query once; returns the median seconds of one search."""

    def run() -> float:
        times = []
        for query in QUERIES:
            seconds, _ = clocked(lambda q=query: repo.search(q, limit=10, retrieval=retrieval))
            times.append(seconds)
        return sorted(times)[len(times) // 2]

    return run


def _vector_bytes(database: Path) -> int | None:
    """Bytes of the pages that hold vectors, or None where SQLite lacks ``dbstat``."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        try:
            row = conn.execute(
                "SELECT sum(pgsize) FROM dbstat WHERE name IN ('vectors', 'vectors_by_id')"
            ).fetchone()
        except sqlite3.OperationalError:
            return None
    return int(row[0]) if row and row[0] is not None else None
