"""Query relevance computed within one revision, so every answer is reproducible.

Full-text search finds which atoms hold a query's words; how much a match is
worth is computed here from that revision's snapshot alone. Index-wide BM25
statistics would change whenever any branch gains memories, and a receipt for
an old prompt would then fail to re-derive it; these weights do not.

The weight is BM25's inverse document frequency with binary term frequency
and no length normalisation (memories are short, so repeats and lengths say
little): a phrase found in ``df`` of the revision's ``N`` atoms is worth
``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``, and an atom's match is the share
of the query's total IDF that its phrases carry, in (0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..search.query import Phrase

__all__ = ["fused_scores", "match_scores", "phrase_text", "revision_idf"]


def phrase_text(phrase: Phrase) -> str:
    """Spell one parsed phrase back as query text that parses to exactly it.

    Tokens hold letters and digits only, so quoting them is always safe.
    """
    return '"' + " ".join(phrase.tokens) + '"' + ("*" if phrase.prefix else "")


def revision_idf(total: int, found: int) -> float:
    """BM25's IDF of a phrase ``found`` in that many of ``total`` atoms (always > 0)."""
    return math.log(1.0 + (total - found + 0.5) / (found + 0.5))


def match_scores(members: Sequence[set[bytes]], total: int) -> dict[bytes, float]:
    """Return each matching atom's share of the query's IDF, in (0, 1].

    Args:
        members: for each phrase of the query, the revision's atoms holding it.
        total: how many atoms the revision holds.
    """
    weights = [revision_idf(total, len(found)) for found in members]
    whole = sum(weights)
    scores: dict[bytes, float] = {}
    for weight, found in zip(weights, members, strict=True):
        for oid in found:
            scores[oid] = scores.get(oid, 0.0) + weight
    return {oid: value / whole for oid, value in scores.items()}


def fused_scores(
    lexical: Mapping[bytes, float], semantic: Mapping[bytes, float], lexical_weight: float
) -> dict[bytes, float]:
    """Mix lexical and semantic match scores into one, in [0, 1], rounded.

    Each side is scaled by its best score (an atom the side did not find
    scores 0 there; a negative cosine counts as 0), then weighted. Scaling by
    the best, not min-max, keeps an atom's score from depending on how poor
    the weakest candidate was; on LoCoMo it also finds more (see
    benchmarks/RESULTS.md). Rounding to
    :data:`~contextfs.search.vectors.SCORE_DIGITS` digits keeps last-bit float
    differences from reordering an answer, so receipts re-derive exactly.
    """
    words, meaning = _scaled(lexical), _scaled(semantic)
    other = 1.0 - lexical_weight
    return {
        oid: round(lexical_weight * words.get(oid, 0.0) + other * meaning.get(oid, 0.0), 6)
        for oid in words.keys() | meaning.keys()
    }


def _scaled(scores: Mapping[bytes, float]) -> dict[bytes, float]:
    best = max(scores.values(), default=0.0)
    if best <= 0:
        return dict.fromkeys(scores, 0.0)
    return {oid: max(value, 0.0) / best for oid, value in scores.items()}
