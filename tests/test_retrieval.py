"""Finding memories by meaning: semantic and hybrid retrieval on every backend.

Hybrid retrieval (words and meaning) is the default of a repository with an
embedder; ``retrieval="lexical"`` asks for words alone, ``"semantic"`` for
meaning alone. Vectors are made by the first query that needs them, only
for what changed after that, never for purged text, and receipts name the
embedder so a prompt found by meaning re-derives byte for byte.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from contextfs import Repository
from contextfs.embed import Vectors
from contextfs.errors import InvalidInputError
from contextfs.store.postgres import PostgresStore

from .conftest import PgvectorDatabase, RepoBackend

MEMORIES = [
    "A kitten rested on the rug",
    "Quarterly revenue grew by four percent",
    "Deploys happen on Fridays",
    "User prefers concise answers",
    "The user lives in Lisbon",
]


@pytest.fixture
def repo(repo_backend: RepoBackend) -> Iterator[Repository]:
    with repo_backend.repository() as repository:
        for text in MEMORIES:
            repository.add(text, "Fact")
        repository.commit("what we know")
        yield repository


def contents(hits: Sequence[object]) -> list[str]:
    return [hit.atom.content for hit in hits]  # type: ignore[attr-defined]


def test_meaning_finds_what_words_cannot(repo: Repository) -> None:
    assert repo.search("cat mat", retrieval="lexical") == []  # no word in common
    assert contents(repo.search("cat mat"))[0] == MEMORIES[0]  # the default: hybrid
    assert contents(repo.search("cat mat", retrieval="semantic"))[0] == MEMORIES[0]
    assert contents(repo.search("income growth", retrieval="hybrid"))[0] == MEMORIES[1]
    assert contents(repo.search("release schedule", retrieval="hybrid", limit=1)) == [MEMORIES[2]]


def test_hybrid_keeps_the_word_match_first(repo: Repository) -> None:
    lexical = contents(repo.search("short answers", retrieval="lexical"))
    assert lexical == ["User prefers concise answers"]
    assert contents(repo.search("short answers", retrieval="hybrid"))[:1] == lexical


def test_vectors_are_made_on_demand_then_only_for_what_changed(repo: Repository) -> None:
    vectors = repo.indexes.vectors
    embedder = repo.embeddings.embedder_id
    assert vectors.count(embedder) == 0  # ingest made none
    repo.search("anything at all", retrieval="semantic")
    assert vectors.count(embedder) == len(MEMORIES)
    repo.add("The cat sleeps on the sofa", "Fact")
    repo.commit("one more")
    head = repo.objects.commit(repo.refs.resolve_id("HEAD")).tree
    assert repo.embeddings.catch_up(head) == 1  # the diff, not the whole snapshot
    assert repo.embeddings.catch_up(head) == 0
    assert vectors.count(embedder) == len(MEMORIES) + 1


def test_a_new_process_starts_from_the_snapshot_another_embedded(repo: Repository) -> None:
    repo.search("anything at all", retrieval="semantic")
    head = repo.objects.commit(repo.refs.resolve_id("HEAD")).tree
    embedder = repo.embeddings.embedder_id
    assert repo.indexes.vectors.embedded_through(embedder) == head
    repo.add("The cat sleeps on the sofa", "Fact")
    repo.commit("one more")
    newer = repo.objects.commit(repo.refs.resolve_id("HEAD")).tree
    # Take one vector of the marked snapshot away, behind the index's back: a full
    # scan would make it again, a diff from the recorded snapshot does not.
    kitten = bytes.fromhex(repo.search("kitten", retrieval="lexical")[0].atom.content_hash)
    assert repo.indexes.vectors.forget(kitten) == 1
    # A second repository object on the store, as another process opens it: it
    # starts from the recorded snapshot and embeds only the diff.
    other = Repository(repo.store, path=repo.path)
    assert other.embeddings.catch_up(newer) == 1
    assert other.indexes.vectors.embedded_through(embedder) == newer


def test_vectors_made_in_a_transaction_that_rolls_back_are_made_again(
    repo: Repository,
) -> None:
    def search_then_abandon() -> None:
        with repo.transaction():
            assert contents(repo.search("cat mat", retrieval="semantic"))[0] == MEMORIES[0]
            raise RuntimeError("abandon")

    with pytest.raises(RuntimeError, match="abandon"):
        search_then_abandon()
    assert repo.indexes.vectors.count() == 0  # the vectors rolled back with the transaction
    assert contents(repo.search("cat mat", retrieval="semantic"))[0] == MEMORIES[0]
    assert repo.indexes.vectors.count() == len(MEMORIES)


def test_a_purged_atom_is_neither_embedded_nor_found(repo: Repository) -> None:
    kitten = repo.search("kitten", retrieval="lexical")[0].atom.content_hash
    repo.purge(kitten, author="dpo", reason="asked")
    found = contents(repo.search("cat mat", retrieval="semantic"))
    assert MEMORIES[0] not in found
    assert "[purged]" not in found
    assert repo.indexes.vectors.missing(repo.embeddings.embedder_id, [bytes.fromhex(kitten)])
    assert repo.verify().ok


def test_receipts_name_the_embedder_and_re_derive(repo: Repository) -> None:
    prompt = repo.context(budget=60, query="cat mat", retrieval="hybrid")
    assert prompt.text.splitlines()[0] == f"[Fact] {MEMORIES[0]}"
    params = prompt.receipt.params
    assert params["retrieval"] == "hybrid"
    assert params["embedder"] == repo.embeddings.embedder_id
    assert repo.verify_receipt(prompt.receipt).ok
    assert params["lexical_weight"] == 0.3  # MiniLM's, measured on LoCoMo
    default = repo.context(budget=60, query="cat mat")
    assert default.receipt.params["retrieval"] == "hybrid"
    assert default.text == prompt.text
    lexical = repo.context(budget=60, query="kitten", retrieval="lexical")
    assert "retrieval" not in lexical.receipt.params  # receipts of word queries are as before
    assert repo.verify_receipt(lexical.receipt).ok


class HashedWords:
    """A small real embedder: each word hashed into one of 64 dimensions."""

    id = "hashed-words-64@1"
    dimensions = 64

    def embed(self, texts: Sequence[str]) -> Vectors:
        rows = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in zip(rows, texts, strict=True):
            for word in re.findall(r"\w+", text.lower()):
                row[hashlib.sha256(word.encode()).digest()[0] % self.dimensions] += 1.0
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


def test_another_embedder_plugs_in_and_keeps_its_own_vectors(repo: Repository) -> None:
    prompt = repo.context(budget=60, query="cat mat", retrieval="semantic")
    other = Repository(repo.store, path=repo.path, embedder=HashedWords())
    assert contents(other.search("revenue grew", retrieval="semantic", limit=1)) == [MEMORIES[1]]
    assert other.indexes.vectors.count("hashed-words-64@1") == len(MEMORIES)
    with pytest.raises(InvalidInputError, match=r"^cannot reproduce embedder 'minilm:"):
        other.verify_receipt(prompt.receipt)


@pytest.mark.parametrize("retrieval", ["vector", "", 0, "HYBRID"])
def test_an_unknown_retrieval_is_refused(repo: Repository, retrieval: object) -> None:
    message = f"retrieval must be 'lexical', 'semantic' or 'hybrid', got {retrieval!r}"
    with pytest.raises(InvalidInputError, match=f"^{re.escape(message)}$"):
        repo.search("kitten", retrieval=retrieval)  # type: ignore[arg-type]


def test_session_payloads_take_the_retrieval_too(repo: Repository) -> None:
    payload = repo.session_payload(budget=200, query="cat mat", retrieval="semantic")
    assert payload["l2"][0] == f"[Fact] {MEMORIES[0]}"
    assert repo.session_payload(budget=200, query="cat mat", retrieval="lexical")["l2"] == []
    assert repo.session_payload(budget=200, query="cat mat")["l2"][0] == f"[Fact] {MEMORIES[0]}"


class WordsFirst(HashedWords):
    """The same vectors, weighed differently against the words."""

    lexical_weight = 0.9


def test_a_receipt_made_with_another_lexical_weight_is_not_reproduced(repo: Repository) -> None:
    plain = Repository(repo.store, path=repo.path, embedder=HashedWords())
    prompt = plain.context(budget=60, query="revenue grew")
    assert prompt.receipt.params["lexical_weight"] == 0.5  # the default for an embedder
    assert plain.verify_receipt(prompt.receipt).ok
    weighed = Repository(repo.store, path=repo.path, embedder=WordsFirst())
    with pytest.raises(InvalidInputError, match=r"^cannot reproduce hybrid retrieval's lexical"):
        weighed.verify_receipt(prompt.receipt)


def test_verify_reports_the_vectors_and_how_they_are_searched(repo: Repository) -> None:
    assert repo.verify().vectors == {}
    repo.search("cat mat")
    report = repo.verify()
    assert report.ok
    assert report.vectors == {repo.embeddings.embedder_id: len(MEMORIES)}
    assert report.vector_search is not None
    assert report.vector_search.startswith("exact (numpy, every vector scored)")
    if repo.store.backend == "postgresql":  # the stock server CI runs has no pgvector
        assert report.vector_search.endswith("; the server has no pgvector")


def test_verify_says_whether_pgvector_is_offered_then_used_and_purges_reach_it(
    pgvector_database: PgvectorDatabase, tmp_path: Path
) -> None:
    with Repository.init(tmp_path, store=pgvector_database.url) as repo:
        repo.add("A kitten rested on the rug", "Fact")
        repo.add("The invoice is due on Friday", "Fact")
        repo.commit("two")
        assert repo.search("cat mat")[0].atom.content == "A kitten rested on the rug"
        report = repo.verify()
    assert report.ok
    assert report.vector_search is not None
    assert re.fullmatch(
        r"exact \(numpy, every vector scored\); pgvector \d+\.\d+\.\d+ is available on the"
        r" server: a superuser's CREATE EXTENSION vector makes large embedders search its index",
        report.vector_search,
    )

    pgvector_database.install()
    with Repository.open(tmp_path) as repo:
        assert repo.search("cat mat")[0].atom.content == "A kitten rested on the rug"
        report = repo.verify()
        assert report.ok
        assert report.vector_search is not None
        assert re.fullmatch(
            r"exact \(numpy, every vector scored\) below 100,000 vectors of an embedder; from"
            r" there pgvector \d+\.\d+\.\d+ HNSW candidates, rescored exactly",
            report.vector_search,
        )
        kitten = repo.search("kitten", retrieval="lexical")[0].atom.content_hash
        repo.purge(kitten, author="dpo", reason="asked")
        assert isinstance(repo.store, PostgresStore)
        with repo.store.connection() as conn:
            mirrored = {bytes(row[0]) for row in conn.execute("SELECT id FROM vector_ann")}
        assert len(mirrored) == 1
        assert bytes.fromhex(kitten) not in mirrored
        assert repo.verify().ok
