"""Okapi BM25 exactly as SQLite FTS5's ``bm25()`` computes it, for the backends that rank in Python.

The SQLite backend (:mod:`contextfs.search.sqlite_fts`) ranks with FTS5's
built-in ``bm25()`` (``fts5Bm25Function`` in SQLite's ``fts5_aux.c``). The
memory twin and the PostgreSQL backend count each phrase's occurrences
themselves and score here, with FTS5's constants and its expressions in its
floating-point order, so all three return the same doubles, not just the same
order (the parity tests in ``tests/search/`` compare them). For a query of
phrases over ``N`` documents averaging ``avgdl`` tokens:

* a phrase found in ``n`` documents weighs ``idf = ln((N - n + 0.5) / (n + 0.5))``,
  floored at :data:`MIN_IDF` so a common phrase still counts a little;
* a document of ``D`` tokens holding each phrase ``f`` times scores
  ``sum(idf * (f * (k1 + 1)) / (f + k1 * (1 - b + b * D / avgdl)))`` over the
  phrases, in the query's order (FTS5 returns its negation: lower is better).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from typing import Final

#: BM25's term-frequency saturation, as FTS5's ``bm25()`` uses it.
K1: Final = 1.2
#: BM25's length normalisation, as FTS5's ``bm25()`` uses it.
B: Final = 0.75
#: FTS5's floor for the IDF of a phrase found in more than half the documents.
MIN_IDF: Final = 1e-6

_K1_PLUS_1: Final = K1 + 1.0


def idf(rows: int, hits: int) -> float:
    """Return the IDF of a phrase found in ``hits`` of ``rows`` documents (FTS5's, floored)."""
    value = math.log((rows - hits + 0.5) / (hits + 0.5))
    return value if value > 0.0 else MIN_IDF


def score(idfs: Sequence[float], freqs: Iterable[int], length: int, avgdl: float) -> float:
    """Return the BM25 score of one document, higher is better.

    Args:
        idfs: each phrase's :func:`idf`, in the query's order.
        freqs: how often each phrase occurs in the document, in the same order.
        length: the document's length in tokens.
        avgdl: the average document length (total tokens / documents).
    """
    # fts5Bm25Function's expressions in its order, so the doubles agree with SQLite's;
    # the length term is the same for every phrase, so it is computed once.
    norm = K1 * (1 - B + B * float(length) / avgdl)
    total = 0.0
    for weight, count in zip(idfs, freqs, strict=True):
        freq = float(count)
        total += weight * ((freq * _K1_PLUS_1) / (freq + norm))
    return total


def rank(
    docs: Iterable[tuple[bytes, int, Sequence[int]]],
    hits: Sequence[int],
    rows: int,
    tokens: int,
    limit: int,
) -> list[tuple[bytes, float]]:
    """Score documents and return the ``limit`` best ``(id, score)``, best first, ties by id.

    Args:
        docs: ``(id, length in tokens, occurrences of each phrase)`` of each candidate.
        hits: how many documents of the whole index hold each phrase.
        rows: how many documents the index holds (at least one).
        tokens: how many tokens they hold in all.
        limit: how many to keep.
    """
    avgdl = tokens / rows
    idfs = [idf(rows, n) for n in hits]
    ranked = [(-score(idfs, freqs, length, avgdl), oid) for oid, length, freqs in docs]
    return [(oid, -negated) for negated, oid in heapq.nsmallest(limit, ranked)]


__all__ = ["K1", "MIN_IDF", "B", "idf", "rank", "score"]
