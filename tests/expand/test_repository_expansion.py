"""The seed's expander over a repository: revisions, commit ids and commit deltas."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from contextfs import ExpanderFunctor, Repository

from ..conftest import RepoBackend


@pytest.fixture
def repo(repo_backend: RepoBackend) -> Iterator[Repository]:
    with repo_backend.repository() as made:
        yield made


def build(repo: Repository) -> str:
    first = repo.add("The user prefers tea", relevance=0.3)
    repo.add("Project uses Python 3.11")
    repo.commit("c1")
    repo.remove(first[:10])
    repo.add("Deadline is Friday", relevance=0.9)
    repo.add("the user PREFERS   tea", relevance=0.8)  # a true duplicate of a removed memory
    return repo.commit("c2")


def contents(atoms: list) -> list[str]:  # type: ignore[type-arg]
    return [a.content for a in atoms]


def test_expands_revisions_commit_ids_and_commit_deltas_alike(repo: Repository) -> None:
    head = build(repo)
    expander = ExpanderFunctor(repo)
    by_revision = expander.expand("HEAD")
    by_id = expander.expand(head[:12])
    by_delta = expander.expand(repo.compressed("HEAD"))
    expected = ["Project uses Python 3.11", "Deadline is Friday", "the user PREFERS   tea"]
    assert contents(by_revision.atoms) == expected
    assert contents(by_id.atoms) == expected
    assert contents(by_delta.atoms) == expected
    assert by_revision.expansion_path == [head]
    assert by_delta.expansion_path[0] == repo.resolve("HEAD~1")


def test_commit_delta_names_its_changes(repo: Repository) -> None:
    head = build(repo)
    delta = repo.compressed(head)
    assert delta.base_hash == repo.resolve("HEAD~1")
    assert sorted(contents(delta.delta_atoms)) == ["Deadline is Friday", "the user PREFERS   tea"]
    assert len(delta.removed_hashes) == 1
    assert delta.compression_metadata["commit"] == head
    root = repo.compressed("HEAD~1")
    assert root.is_root
