"""Choosing the embedder: at init, in the folder's config, changed later, indexed at once.

A repository's embedder is named in ``.contextfs/config.json`` (the default,
WordLlama, when it names none); ``"none"`` means words only. Changing it drops
the old vectors and the new ones are made lazily, or by ``index``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contextfs import Repository
from contextfs.errors import CorruptObjectError, InvalidInputError

from .conftest import RepoBackend

MEMORIES = ["A kitten rested on the rug", "Deploys happen on Fridays", "The user lives in Lisbon"]
NO_EMBEDDER = (
    "this repository has no embedder, so it finds memories by their words only;"
    " choose one with `contextfs config embedder wordllama`"
)


def fill(repo: Repository) -> None:
    for text in MEMORIES:
        repo.add(text, "Fact")
    repo.commit("three")


def test_a_repository_without_an_embedder_finds_by_words(db_backend: RepoBackend) -> None:
    store = None if db_backend.kind == "sqlite" else db_backend.postgres_url
    with Repository.init(db_backend.tmp_path, store=store, embedder="none") as repo:
        fill(repo)
        assert repo.embedder is None
        assert repo.search("cat mat") == []  # the default is lexical without an embedder
        assert [h.atom.content for h in repo.search("kitten")] == [MEMORIES[0]]
        with pytest.raises(InvalidInputError, match=f"^{NO_EMBEDDER}$"):
            repo.search("cat mat", retrieval="hybrid")
        with pytest.raises(InvalidInputError, match=f"^{NO_EMBEDDER}$"):
            repo.index()
        assert repo.indexes.vectors.count() == 0
    with Repository.open(db_backend.tmp_path) as again:  # the choice is remembered
        assert again.embedder is None
        assert again.search("cat mat") == []


def test_changing_the_embedder_drops_the_old_vectors_and_is_remembered(
    db_backend: RepoBackend,
) -> None:
    with db_backend.repository() as repo:
        fill(repo)
        assert repo.search("cat mat")[0].atom.content == MEMORIES[0]  # made the vectors
        assert repo.indexes.vectors.count() == len(MEMORIES)
        assert repo.set_embedder("none") == len(MEMORIES)
        assert repo.indexes.vectors.count() == 0
        assert repo.search("cat mat") == []
    with Repository.open(db_backend.tmp_path) as again:
        assert again.embedder is None
        assert again.set_embedder("wordllama") == 0
    with Repository.open(db_backend.tmp_path) as again:
        assert again.embedder is not None
        assert again.indexes.vectors.count() == 0  # made lazily, not by the change
        assert again.search("cat mat")[0].atom.content == MEMORIES[0]


def test_index_embeds_now_and_reports_progress(repo_backend: RepoBackend) -> None:
    with repo_backend.repository() as repo:
        fill(repo)
        seen: list[tuple[int, int]] = []
        assert repo.index(progress=lambda done, total: seen.append((done, total))) == 3
        assert seen == [(3, 3)]
        embedder = repo.embeddings.embedder_id
        assert repo.indexes.vectors.count(embedder) == len(MEMORIES)
        assert repo.index() == 0  # nothing left to embed
        repo.add("The cat sleeps on the sofa", "Fact")
        repo.commit("one more")
        assert repo.index("HEAD~1") == 0
        assert repo.index() == 1


def test_an_embedder_given_when_opening_overrides_the_config(tmp_path: Path) -> None:
    Repository.init(tmp_path, embedder="none").close()
    with Repository.open(tmp_path, embedder="wordllama") as repo:
        assert repo.embedder is not None
        fill(repo)
        assert repo.search("cat mat")[0].atom.content == MEMORIES[0]


def test_a_bad_embedder_name_at_init_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"^unknown embedder 'bogus'"):
        Repository.init(tmp_path, embedder="bogus")
    assert not (tmp_path / ".contextfs").exists()


def test_a_bad_embedder_name_changes_nothing(tmp_path: Path) -> None:
    with Repository.init(tmp_path) as repo:
        before = (tmp_path / ".contextfs" / "config.json").exists()
        with pytest.raises(InvalidInputError, match="needs a model"):
            repo.set_embedder("openai")
        assert (tmp_path / ".contextfs" / "config.json").exists() == before
        assert repo.embedder is not None


def test_a_store_opened_by_url_alone_cannot_record_an_embedder() -> None:
    with (
        Repository.memory() as repo,
        pytest.raises(InvalidInputError, match=r"^only a repository folder records its embedder"),
    ):
        repo.set_embedder("none")


def test_a_config_naming_a_bad_embedder_is_reported_as_corrupt(tmp_path: Path) -> None:
    Repository.init(tmp_path, embedder="none").close()
    config = tmp_path / ".contextfs" / "config.json"
    shape = json.loads(config.read_text())
    assert shape["embedder"] == "none"
    config.write_text(json.dumps({**shape, "embedder": "bogus"}))
    with pytest.raises(CorruptObjectError, match="names a bad embedder: unknown embedder 'bogus'"):
        Repository.open(tmp_path)
