"""contextfs.search.bm25 against SQLite FTS5's own ``bm25()``: the same doubles, row by row.

The SQLite backend ranks with FTS5's built-in function and the other backends
with this module, so the backends agree only while these stay equal.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator

import pytest

from contextfs.search import bm25

VOCABULARY = ["the", "memory", "agent", "context", "token", "budget", "graph", "merge"]


def corpus(seed: int, size: int) -> list[list[str]]:
    """Documents of Zipf-like words, some empty, some repeating a word many times."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(VOCABULARY))]
    return [rng.choices(VOCABULARY, weights, k=rng.randint(0, 40)) for _ in range(size)]


@pytest.fixture
def fts5() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(body)")
    yield conn
    conn.close()


def fts5_scores(conn: sqlite3.Connection, docs: list[list[str]], words: list[str]) -> list[float]:
    """FTS5's score (``-bm25()``) of every document holding any of ``words``, by rowid."""
    conn.executemany(
        "INSERT INTO t (rowid, body) VALUES (?, ?)",
        [(n, " ".join(doc)) for n, doc in enumerate(docs, 1)],
    )
    query = " OR ".join(f'"{word}"' for word in words)
    rows = conn.execute("SELECT -bm25(t) FROM t WHERE t MATCH ? ORDER BY rowid", (query,))
    return [score for (score,) in rows]


def our_scores(docs: list[list[str]], words: list[str]) -> list[float]:
    """This module's score of every document holding any of ``words``, in document order."""
    hits = [sum(word in doc for doc in docs) for word in words]
    idfs = [bm25.idf(len(docs), n) for n in hits]
    avgdl = sum(map(len, docs)) / len(docs)
    return [
        bm25.score(idfs, [doc.count(word) for word in words], len(doc), avgdl)
        for doc in docs
        if any(word in doc for word in words)
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    "words",
    [["the"], ["merge"], ["memory", "agent"], ["the", "graph", "budget"], VOCABULARY],
)
def test_scores_are_fts5s_doubles(fts5: sqlite3.Connection, seed: int, words: list[str]) -> None:
    docs = corpus(seed, 300)
    expected = fts5_scores(fts5, docs, words)
    assert expected  # the corpus holds every word
    assert our_scores(docs, words) == expected


def test_a_phrase_in_most_documents_keeps_fts5s_floor(fts5: sqlite3.Connection) -> None:
    docs = [["common"], ["common", "rare"], ["common", "common"]]
    assert bm25.idf(3, 3) == bm25.MIN_IDF
    assert bm25.idf(3, 1) > bm25.MIN_IDF
    assert our_scores(docs, ["common"]) == fts5_scores(fts5, docs, ["common"])


def test_rank_keeps_the_best_first_with_ties_by_ascending_id() -> None:
    docs = [
        (b"\x03" * 32, 4, [1, 0]),
        (b"\x01" * 32, 4, [1, 0]),  # ties with the first: the lower id goes first
        (b"\x02" * 32, 2, [1, 1]),
        (b"\x04" * 32, 30, [0, 1]),
    ]
    ranked = bm25.rank(docs, hits=[3, 2], rows=10, tokens=40, limit=3)
    assert [oid[0] for oid, _ in ranked] == [2, 1, 3]
    idfs = [bm25.idf(10, 3), bm25.idf(10, 2)]
    assert [score for _, score in ranked] == [
        bm25.score(idfs, [1, 1], 2, 4.0),
        bm25.score(idfs, [1, 0], 4, 4.0),
        bm25.score(idfs, [1, 0], 4, 4.0),
    ]
    assert bm25.rank(docs, hits=[3, 2], rows=10, tokens=40, limit=0) == []
