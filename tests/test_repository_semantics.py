"""git-like semantics at the edges: atomic failures, merges of re-stated facts, resets, reverts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from contextfs.errors import (
    InvalidInputError,
    NothingToDoError,
    StoreError,
    UncommittedChangesError,
)
from contextfs.model.objects import MemoryAtom
from contextfs.model.timeutil import format_local
from contextfs.repo import Repository

from .conftest import RepoBackend


@pytest.fixture
def repo(repo_backend: RepoBackend) -> Iterator[Repository]:
    repository = repo_backend.repository()
    yield repository
    repository.close()


def atom(repo: Repository, ref: str, revision: str = "HEAD") -> MemoryAtom:
    found = repo.get(ref, revision)
    assert isinstance(found, MemoryAtom)
    return found


def diverge(repo: Repository) -> str:
    """A base commit with one memory, a branch `side`, and main checked out."""
    shared = repo.add("Shared memory", relevance=0.5, timestamp=1_000_000)
    repo.commit("base")
    repo.create_branch("side")
    return shared


def test_a_refused_merge_leaves_no_objects_behind(repo: Repository) -> None:
    diverge(repo)
    repo.switch("side")
    repo.add("side fact")
    repo.commit("side")
    repo.switch("main")
    repo.add("main fact")
    repo.commit("main")
    before = repo.store.count_objects()
    with pytest.raises(InvalidInputError):
        repo.merge("side", message="m" * 100_001)
    repo.add("later")
    # Only the new atom and the stage's new nodes: nothing from the refused merge.
    assert repo.store.count_objects() - before <= 4
    repo.commit("later")
    assert repo.merge("side").status == "merged"


def test_restating_a_fact_on_both_sides_merges_cleanly(repo: Repository) -> None:
    shared = diverge(repo)
    repo.switch("side")
    repo.add("Shared memory", relevance=0.5, tags=["x"], timestamp=3_000_000)
    repo.add("Both learned this", timestamp=5_000_000)
    repo.commit("side")
    repo.switch("main")
    repo.add("Shared memory", relevance=0.9, timestamp=2_000_000)
    repo.add("Both learned this", timestamp=4_000_000)
    repo.commit("main")
    result = repo.merge("side")
    assert result.status == "merged"
    merged = atom(repo, shared[:10])
    assert (merged.relevance_score, merged.tags) == (0.9, ("x",))
    assert merged.timestamp == atom(repo, shared[:10], "side").timestamp  # the newer one
    both = next(m for m in repo.snapshot() if getattr(m, "content", "") == "Both learned this")
    assert isinstance(both, MemoryAtom)
    assert both.timestamp == atom(repo, both.content_hash[:10], "side").timestamp


def test_adding_the_same_atom_with_different_relevance_on_both_sides_conflicts(
    repo: Repository,
) -> None:
    diverge(repo)
    repo.switch("side")
    repo.add("New fact", relevance=0.2)
    repo.commit("side")
    repo.switch("main")
    repo.add("New fact", relevance=0.8)
    repo.commit("main")
    assert repo.merge("side").status == "conflicts"


def test_soft_reset_is_refused_during_a_merge(repo: Repository) -> None:
    shared = diverge(repo)
    repo.switch("side")
    repo.update_entry(shared[:10], relevance=0.1)
    repo.commit("side")
    repo.switch("main")
    repo.update_entry(shared[:10], relevance=0.9)
    repo.commit("main")
    assert repo.merge("side").status == "conflicts"
    with pytest.raises(UncommittedChangesError, match="soft reset in the middle of a merge"):
        repo.reset("HEAD~1", mode="soft")
    assert repo.status().merging is not None


def test_revert_of_undone_changes_is_nothing_to_do_and_a_root_can_be_reverted(
    repo: Repository,
) -> None:
    first = repo.add("first")
    root = repo.commit("root")
    repo.add("second")
    added = repo.commit("add second")
    repo.remove(first[:10])
    repo.commit("drop first")
    heads = repo.head()
    with pytest.raises(NothingToDoError, match="already undone"):
        repo.revert(root)
    assert repo.head() == heads
    repo.revert(added)
    assert repo.count() == 0


def test_criss_cross_merge_uses_a_virtual_base(repo: Repository) -> None:
    shared = diverge(repo)
    # Criss-cross: each side merges the other's first commit.
    repo.switch("side")
    repo.add("side one")
    side1 = repo.commit("side one")
    repo.switch("main")
    repo.update_entry(shared[:10], relevance=0.7)
    main1 = repo.commit("main one")
    repo.merge(side1)
    repo.switch("side")
    repo.merge(main1)
    # main reverts its relevance change; side leaves the memory alone.
    repo.switch("main")
    repo.update_entry(shared[:10], relevance=0.5)
    repo.commit("main back to 0.5")
    repo.switch("side")
    repo.add("side two")
    repo.commit("side two")
    repo.switch("main")
    assert repo.merge("side").status == "merged"
    assert atom(repo, shared[:10]).relevance_score == 0.5  # main's revert is kept


def test_switch_create_that_fails_creates_no_branch(repo: Repository) -> None:
    shared = diverge(repo)
    repo.switch("side")
    repo.update_entry(shared[:10], relevance=0.1)
    repo.commit("side")
    repo.switch("main")
    repo.update_entry(shared[:10], relevance=0.9)
    repo.commit("main")
    repo.merge("side")
    with pytest.raises(UncommittedChangesError):
        repo.switch("new-branch", create=True)
    assert "new-branch" not in repo.branches()


def test_tags_win_over_branches_of_the_same_name_as_in_git(repo: Repository) -> None:
    repo.add("one")
    first = repo.commit("one")
    repo.add("two")
    repo.commit("two")
    repo.create_branch("v1")
    repo.create_tag("v1", first)
    assert repo.resolve("v1") == first
    assert repo.resolve("refs/heads/v1") == repo.head()


def test_empty_commit_message_is_refused(repo: Repository) -> None:
    repo.add("x")
    with pytest.raises(InvalidInputError, match="must not be empty"):
        repo.commit("  \n")
    assert repo.head() is None


def test_out_of_range_times_are_refused_or_shown_in_utc(repo: Repository) -> None:
    with pytest.raises(InvalidInputError, match="out of range"):
        repo.add("far future", timestamp=10**20)
    latest = 253_402_300_799_000_000  # 9999-12-31T23:59:59Z
    assert format_local(latest).startswith("9999-12-3")


def test_init_leaves_nothing_behind_when_it_cannot_create(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot create a repository"):
        Repository.init(blocker)
    Repository.init(tmp_path).close()
    assert sorted(os.listdir(tmp_path / ".contextfs")) == ["config.json", "store.db"]
