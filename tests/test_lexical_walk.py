"""Word matches ranked by the threshold walk equal ranking every match at once.

The reference below is the straightforward ranking the walk replaces, kept
here to hold it to the same ids, order and scores: look every match up in the
snapshot, weigh phrases by their counts there, sort by ``(-score,
-timestamp, id)``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contextfs import MemoryAtom, Repository, TypeSignature
from contextfs.expand.ranking import match_scores, phrase_text
from contextfs.history.tree import by_relevance, recency_scorer
from contextfs.model.objects import entry_rank
from contextfs.search.query import content_phrases, parse_query
from contextfs.services import lexical

WORDS = ["river", "stone", "lamp", "garden", "harbour", "violin", "ember", "meadow"]
FACT = TypeSignature("Fact")
START = datetime(2025, 1, 1, tzinfo=UTC)
NOW = int((START + timedelta(days=400)).timestamp()) * 1_000_000


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Repository, list[str]]]:
    """A store with several snapshots: atoms added, removed, re-weighed, one purged."""
    rng = random.Random(7)
    repo = Repository.init(tmp_path_factory.mktemp("walk") / "r", embedder="none")
    commits = []
    added: list[str] = []
    for round_ in range(4):
        atoms = []
        for n in range(120):
            words = rng.sample(WORDS, rng.randint(1, 4))
            when = START + timedelta(days=rng.choice([0, 30, 60, 90]))
            relevance = rng.choice([0.25, 0.5, 0.5, 1.0])  # ties on purpose
            atoms.append(
                MemoryAtom(f"{' '.join(words)} note {round_}-{n}", FACT, when, "", relevance)
            )
        added += [str(oid) for oid in repo.add_atoms(atoms)]
        if round_ >= 1:
            gone = rng.sample(added[:-120], 15)
            repo.remove(*gone)
            added = [ref for ref in added if ref not in gone]
            for ref in rng.sample(added[-120:], 10):
                repo.update_entry(ref, relevance=rng.choice([0.1, 0.75]))
        commits.append(str(repo.commit(f"round {round_}")))
    repo.purge(added[-1], author="test", reason="a purge keeps the snapshot")
    yield repo, commits
    repo.close()


def reference(
    repo: Repository, tree: bytes, query: str, mode: str, half_life: float | None
) -> list[tuple[str, float, float]]:
    """Every match ranked at once: ``(id, score, match)`` best first."""
    phrases = content_phrases(parse_query(query))
    index = repo.search_index
    found = [index.match_ids(phrase_text(p)) for p in phrases]
    present = repo.trees.get_many(tree, set().union(*found))
    members = [f & present.keys() for f in found]
    matches = match_scores(members, repo.trees.count(tree))
    if mode == "all":
        matches = {oid: matches[oid] for oid in set.intersection(*members)}
    rank = recency_scorer(half_life, NOW) if half_life else by_relevance
    heap = []
    for oid, match in matches.items():
        relevance, timestamp = entry_rank(present[oid])
        heap.append((-rank(relevance, timestamp) * match, -timestamp, oid, match))
    return [(oid.hex(), -score, match) for score, _, oid, match in sorted(heap)]


def walked(
    repo: Repository, tree: bytes, query: str, mode: str, half_life: float | None
) -> list[tuple[str, float, float]]:
    scorer = recency_scorer(half_life, NOW) if half_life else None
    ranked = repo.assembler._query_ranked(tree, query, mode, scorer, "lexical")  # type: ignore[arg-type]
    return [(atom.content_hash, score, match) for atom, score, match in ranked]


@settings(max_examples=150)
@given(
    words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=4, unique=True),
    mode=st.sampled_from(["any", "all"]),
    which=st.integers(min_value=0, max_value=3),
    half_life=st.sampled_from([None, 86_400.0 * 30]),
    factor=st.sampled_from([0, 1, 1000]),
)
def test_the_walk_ranks_exactly_as_ranking_every_match(
    history: tuple[Repository, list[str]],
    words: list[str],
    mode: str,
    which: int,
    half_life: float | None,
    factor: int,
) -> None:
    repo, commits = history
    tree = repo.load_commit(bytes.fromhex(commits[which])).tree
    query = " ".join(words)
    original = lexical.WALK_FACTOR
    try:
        lexical.WALK_FACTOR = factor  # 0: walk whenever possible; 1000: rank at once
        first = walked(repo, tree, query, mode, half_life)  # counts the phrases, if new
        again = walked(repo, tree, query, mode, half_life)  # walks, with the counts known
    finally:
        lexical.WALK_FACTOR = original
    expected = reference(repo, tree, query, mode, half_life)
    assert first == expected
    assert again == expected


def test_the_first_few_matches_of_a_common_word_read_a_few_atoms(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "r", embedder="none")
    repo.add_atoms(
        MemoryAtom(f"river note {n}", FACT, START, "", (n % 97) / 97) for n in range(3000)
    )
    repo.commit("three thousand")
    read: list[int] = []
    ranked = repo.trees.ranked

    def counting(root: bytes, score: object = None) -> Iterator[bytes]:
        for number, item in enumerate(ranked(root, score), start=1):  # type: ignore[arg-type]
            read[:] = [number]
            yield item

    first = repo.search("river", limit=10, retrieval="lexical")  # counts "river" here
    repo.trees.ranked = counting  # type: ignore[method-assign]
    hits = repo.search("river", limit=10, retrieval="lexical")
    assert hits == first
    assert read[0] < 100  # not 3,000: the walk stopped once ten were sure
