"""Session payloads from a repository: tiers, budgets, determinism, queries, hubs."""

from __future__ import annotations

import itertools
from pathlib import Path
from pydoc_data.topics import topics

import pytest

from contextfs import MemoryAtom, MemoryMolecule, Repository
from contextfs.errors import InvalidInputError
from contextfs.expand.tokens import default_tokenizer
from contextfs.model.types import TypeSignature
from contextfs.session import apply_delta, build_delta, hashes_of
from contextfs.session.delta import canonical_json
from contextfs.session.tiers import (
    TierBudgets,
    extractive_summary,
    payload_tokens,
    render_payload,
    stable_prefix_tokens,
)

COUNTER = default_tokenizer()
FACT = TypeSignature("Fact")
DOCS = [text for _, text in sorted(topics.items())[:120]]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repository:
    repo = Repository.init(tmp_path_factory.mktemp("session"))
    repo.add("I am the release assistant of the ContextFS team.", "Identity", tags=["pinned"])
    repo.add("The user is Sam; Sam prefers short answers.", "UserProfile", relevance=0.95)
    repo.add("Sam works in Lisbon.", "Fact", relevance=0.2, tags=["l0"], abstract="Sam: Lisbon")
    for i, text in enumerate(DOCS):
        repo.add(
            text[:2000],
            "Doc",
            relevance=round(0.2 + (i * 37 % 80) / 100, 2),
            overview=f"Python reference: topic {i}" if i % 3 == 0 else None,
        )
    hubs = [MemoryAtom(f"Hub concept {i} links the release process", FACT) for i in range(4)]
    leaves = [MemoryAtom(f"Detail {i} of the release process", FACT) for i in range(8)]
    relations = {"related": [(i, j) for i, j in itertools.combinations(range(4), 2)]}
    relations["explains"] = [(i % 4, 4 + i) for i in range(8)]
    repo.add_molecule(MemoryMolecule(tuple(hubs + leaves), relations))
    repo.commit("a working memory")
    return repo


@pytest.mark.parametrize("budget", [0, 40, 150, 700, 2000, 8000])
def test_the_whole_payload_and_each_tier_keep_to_their_budgets(
    repo: Repository, budget: int
) -> None:
    payload = repo.session_payload(budget=budget)
    assert set(payload) == {"l0", "l1", "l2", "rich_club"}
    assert payload_tokens(payload, COUNTER) <= budget
    tiers = TierBudgets.split(budget)
    assert COUNTER.count(payload["l0"]) <= tiers.l0
    assert COUNTER.count(payload["rich_club"]) <= tiers.rich_club
    assert COUNTER.count(payload["l1"]) <= tiers.l1
    assert sum(COUNTER.count(item) for item in payload["l2"]) <= budget


def test_tiers_hold_what_they_promise(repo: Repository) -> None:
    payload = repo.session_payload(budget=2000)
    assert payload["l0"].splitlines() == [
        "[Identity] I am the release assistant of the ContextFS team.",
        "[UserProfile] The user is Sam; Sam prefers short answers.",
        "[Fact] Sam: Lisbon",
    ]
    hubs = payload["rich_club"].splitlines()
    assert sorted(hubs) == [f"[Fact] Hub concept {i} links the release process" for i in range(4)]
    overview = payload["l1"].splitlines()
    assert all(line.startswith("- [") for line in overview)
    assert any("Python reference: topic" in line for line in overview)  # own overview field
    in_l0 = ("Identity", "UserProfile")
    top = next(a for a in repo.ranked_atoms() if a.type_sig.name not in in_l0 and not a.tags)
    assert payload["l2"][0] == f"[{top.type_sig}] {top.content}"  # most relevant first, in full
    assert not any("I am the release assistant" in item for item in payload["l2"])
    rendered = render_payload(payload)
    headers = [line for line in rendered.splitlines() if line.startswith("## ")]
    assert headers == ["## Identity", "## Hub memories", "## Overview", "## Memories"]


def test_the_same_inputs_give_byte_identical_payloads(repo: Repository) -> None:
    first = render_payload(repo.session_payload(budget=1500))
    assert render_payload(repo.session_payload(budget=1500)) == first
    again = Repository.open(repo.path)
    assert render_payload(again.session_payload(budget=1500)) == first


def test_a_query_ranks_the_detail_tiers_only(repo: Repository) -> None:
    payload = repo.session_payload(budget=1500, query="exception", retrieval="lexical")
    assert payload["l2"]
    assert all("exception" in item.lower() for item in payload["l2"])
    assert payload["l0"] == repo.session_payload(budget=1500)["l0"]


def test_budgets_and_summariser_are_the_callers(repo: Repository) -> None:
    payload = repo.session_payload(
        budget=1000,
        budgets=TierBudgets(l0=0, rich_club=0, l1=300),
        summariser=lambda atom: "SUMMARY",
    )
    assert payload["l0"] == ""
    assert payload["rich_club"] == ""
    assert "SUMMARY" in payload["l1"]
    with pytest.raises(InvalidInputError):
        repo.session_payload(budget=-1)
    with pytest.raises(InvalidInputError):
        repo.session_payload(budget=100, budgets=TierBudgets(l0=-5, rich_club=0, l1=0))


def test_extractive_summary_is_the_first_sentence_capped() -> None:
    atom = MemoryAtom("First sentence here. Second one.", FACT)
    assert extractive_summary(atom) == "First sentence here."
    long = MemoryAtom(" ".join(f"w{i}" for i in range(50)), FACT)
    assert extractive_summary(long, words=5) == "w0 w1 w2 w3 w4 …"


def test_one_memory_changing_costs_about_one_item(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path)
    for i, text in enumerate(DOCS[:60]):
        repo.add(text[:1200], "Doc", relevance=round(0.3 + i / 100, 2))
    repo.commit("base")
    before = repo.session_payload(budget=2000)
    changed = next(m for m in repo.snapshot() if f"[Doc] {m.content}" == before["l2"][2])
    repo.add(MemoryAtom(changed.content + " (revised)", changed.type_sig, relevance_score=0.99))
    repo.remove(changed.digest.hex())
    repo.commit("revise one")
    after = repo.session_payload(budget=2000)
    delta, _ = build_delta(hashes_of(before), after)
    assert apply_delta(before, delta) == after
    full = build_delta({}, after)[0]
    share = COUNTER.count(canonical_json(delta)) / COUNTER.count(canonical_json(full))
    assert share < 0.5


def test_stable_prefix_counts_the_unchanged_leading_lines() -> None:
    previous = "## Identity\nme\n\n## Memories\nold item"
    current = "## Identity\nme\n\n## Memories\nnew item"
    assert stable_prefix_tokens(previous, current, COUNTER) == COUNTER.count(
        "## Identity\nme\n\n## Memories\n"
    )
    assert stable_prefix_tokens(current, current, COUNTER) == COUNTER.count(current)
    assert stable_prefix_tokens("abc", "xyz", COUNTER) == 0


def test_a_purge_reaches_l0_although_the_snapshot_is_unchanged(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "purged", embedder="none")
    secret = repo.add("The user's passport number is X1234567", "UserProfile")
    repo.add("I am the release assistant of the ContextFS team.", "Identity", tags=["pinned"])
    for i in range(30):
        repo.add(f"Release note {i}: the pipeline got faster", "Fact", relevance=0.5)
    repo.commit("who we are")
    first = repo.session_payload(budget=1500)
    assert "X1234567" in first["l0"]
    assert repo.session_payload(budget=1500) == first  # the same snapshot, read again
    repo.purge(str(secret), author="dpo", reason="asked")  # the snapshot stays the same
    after = repo.session_payload(budget=1500)
    assert "X1234567" not in render_payload(after)
    assert after["l0"].splitlines() == [
        "[Identity] I am the release assistant of the ContextFS team."
    ]
