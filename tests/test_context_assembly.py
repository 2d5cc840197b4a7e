"""Repository.search and Repository.context: ranking, filters, formats, lattice, receipts."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from contextfs import ContextQuery, Receipt, Repository, TypeSignature
from contextfs.errors import InvalidInputError
from contextfs.expand.tokens import default_tokenizer

from .conftest import RepoBackend

DAY = 86_400 * 1_000_000
NOW = 1_800_000_000 * 1_000_000

MEMORIES = [
    ("The user prefers concise answers with code first", "Preference", 0.9, 0),
    ("The project database is PostgreSQL 16", "Fact", 0.8, 10),
    ("Deploys happen on Fridays after the review", "Fact", 0.6, 20),
    ("The user asked about PostgreSQL indexes last week", "Episode", 0.5, 3),
    ("Benchmarks show asyncpg is faster than psycopg2 for inserts", "Finding", 0.7, 30),
    ("The user dislikes long preambles", "Preference", 0.4, 1),
]


@pytest.fixture
def repo(repo_backend: RepoBackend) -> Iterator[Repository]:
    repository = repo_backend.repository()
    for text, kind, relevance, days_ago in MEMORIES:
        repository.add(
            text, kind, relevance=relevance, timestamp=NOW - days_ago * DAY, tags=[kind.lower()]
        )
    repository.commit("memories")
    yield repository
    repository.close()


def texts(atoms: object) -> list[str]:
    return [a.content for a in atoms]  # type: ignore[attr-defined]


def test_search_ranks_matches_by_relevance_times_match(repo: Repository) -> None:
    hits = repo.search("postgresql", now=NOW, retrieval="lexical")
    assert texts(h.atom for h in hits) == [
        "The project database is PostgreSQL 16",
        "The user asked about PostgreSQL indexes last week",
    ]
    assert all(h.match == 1.0 for h in hits)
    both = repo.search("user postgresql", now=NOW, retrieval="lexical")
    assert texts(h.atom for h in both)[0] == "The user asked about PostgreSQL indexes last week"
    assert repo.search("user postgresql", mode="all", now=NOW, retrieval="lexical")[0].match == 1.0


def test_search_sees_only_its_revision_and_scores_do_not_drift(repo: Repository) -> None:
    before = [(h.atom.content, h.score) for h in repo.search("user", now=NOW, retrieval="lexical")]
    repo.switch("other", create=True)
    for n in range(40):
        repo.add(f"another user note number {n}")
    repo.commit("many more user notes elsewhere")
    repo.switch("main")
    assert [
        (h.atom.content, h.score) for h in repo.search("user", now=NOW, retrieval="lexical")
    ] == before
    assert len(repo.search("note", revision="other", limit=100, retrieval="lexical")) == 40
    assert repo.search("note", retrieval="lexical") == []


def test_search_filters_and_recency(repo: Repository) -> None:
    where = ContextQuery(type_filter=TypeSignature("Preference"))
    assert texts(
        h.atom for h in repo.search("user", where=where, now=NOW, retrieval="lexical")
    ) == [
        "The user prefers concise answers with code first",
        "The user dislikes long preambles",
    ]
    tagged = repo.search(
        "user", where=ContextQuery(tags=("episode",)), now=NOW, retrieval="lexical"
    )
    assert texts(h.atom for h in tagged) == ["The user asked about PostgreSQL indexes last week"]
    recent = repo.search("user", half_life_seconds=86_400, now=NOW, retrieval="lexical")
    assert texts(h.atom for h in recent)[0] == "The user prefers concise answers with code first"
    assert recent[1].atom.content == "The user dislikes long preambles"  # 1 day old beats 3
    with pytest.raises(InvalidInputError):
        repo.search("!!!", retrieval="lexical")


def test_context_never_exceeds_the_budget_in_any_format(repo: Repository) -> None:
    tokenizer = default_tokenizer()
    for fmt in ("lines", "markdown", "json", "xml"):
        for budget in (0, 10, 25, 60, 400):
            result = repo.context(budget=budget, format=fmt, now=NOW)  # type: ignore[arg-type]
            assert tokenizer.count(result.text) == result.tokens <= budget
    full = repo.context(format="json", now=NOW)
    parsed = json.loads(full.text)
    assert [m["content"] for m in parsed["memories"]] == texts(full.atoms)
    assert len(full.atoms) == len(MEMORIES)


def test_context_with_a_query_keeps_only_matches(repo: Repository) -> None:
    result = repo.context(query="user", budget=200, now=NOW, retrieval="lexical")
    assert all("user" in atom.content.lower() for atom in result.atoms)
    assert len(result.atoms) == 3


def test_lattice_orders_the_prompt(repo: Repository) -> None:
    low = repo.search("preambles", retrieval="lexical")[0].atom.content_hash
    top = repo.search("concise", retrieval="lexical")[0].atom.content_hash
    repo.add_relevance_edge(low[:12], top[:12])
    repo.commit("the dislike of preambles matters more")
    atoms = texts(repo.context(now=NOW).atoms)
    assert atoms.index("The user dislikes long preambles") < atoms.index(
        "The user prefers concise answers with code first"
    )
    assert repo.relevance_lattice().edges() == [(low, top)]


def test_patience_bounds_the_scan_but_not_the_budget(repo: Repository) -> None:
    for n in range(200):
        repo.add(f"Filler memory number {n} " + "padding words " * 20, relevance=0.05)
    repo.commit("filler")
    tokenizer = default_tokenizer()
    patient = repo.context(budget=80, patience=None, now=NOW)
    hasty = repo.context(budget=80, patience=2, now=NOW)
    assert tokenizer.count(hasty.text) <= 80
    assert len(hasty.atoms) <= len(patient.atoms)


def test_receipts_re_derive_the_prompt_byte_for_byte(repo: Repository) -> None:
    where = ContextQuery(min_relevance=0.5, type_filter=TypeSignature("τ"))
    result = repo.context(
        budget=60,
        query="user postgresql",
        format="xml",
        half_life_seconds=86_400 * 7,
        where=where,
        retrieval="lexical",
    )
    receipt = Receipt.from_json(result.receipt.to_json())
    assert repo.verify_receipt(receipt).ok
    # New memories on any branch do not change what an old receipt proves.
    repo.add("The user also uses PostgreSQL for analytics", relevance=1.0)
    repo.commit("more")
    assert repo.verify_receipt(receipt).ok
    forged = Receipt.from_json(result.receipt.to_json().replace(receipt.prompt_sha256, "0" * 64))
    verification = repo.verify_receipt(forged)
    assert not verification.ok
    assert [m.kind for m in verification.mismatches] == ["prompt_sha256"]


def test_expand_is_the_lines_context(repo: Repository) -> None:
    expanded = repo.expand(budget=50, now=NOW)
    assert expanded.to_prompt_context() == repo.context(budget=50, now=NOW).text
    assert expanded.total_tokens_estimate <= 50
