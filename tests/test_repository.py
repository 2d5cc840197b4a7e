"""The Repository facade end to end on both backends: stage, commit, history, merge."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from contextfs.discovery import find_repository
from contextfs.errors import (
    AmbiguousRevisionError,
    ConcurrentUpdateError,
    InvalidInputError,
    MergeConflictError,
    NothingToDoError,
    RepositoryExistsError,
    RepositoryNotFoundError,
    TypeSignatureError,
    UncommittedChangesError,
    UnknownRevisionError,
)
from contextfs.model.objects import MemoryAtom
from contextfs.repo import Repository

from .conftest import RepoBackend


@pytest.fixture
def repo(repo_backend: RepoBackend) -> Iterator[Repository]:
    repository = repo_backend.repository()
    yield repository
    repository.close()


def contents(repo: Repository, revision: str | None = "HEAD") -> list[str]:
    return sorted(m.content for m in repo.snapshot(revision) if isinstance(m, MemoryAtom))


def state(repo: Repository) -> dict[str, str]:
    """Every ref, to check that a refused operation changed nothing."""
    return repo.store.list_refs()


def test_add_commit_log_show(repo: Repository) -> None:
    first = repo.add("User prefers concise answers", relevance=0.9, tags=["preference"])
    repo.add("Project uses Python 3.11", "String")
    c1 = repo.commit("remember basics", author="agent-1")
    repo.add("Deadline is Friday", "String", relevance=0.7)
    repo.remove(first[:10])
    c2 = repo.commit("deadline", author="agent-2")
    assert [c.id for c in repo.log()] == [c2, c1]
    info, changes = repo.show()
    assert info.id == c2
    assert info.parents == (c1,)
    assert info.commit.author == "agent-2"
    assert sorted((c.status, getattr(c.new or c.old, "content", None)) for c in changes) == [
        ("added", "Deadline is Friday"),
        ("removed", "User prefers concise answers"),
    ]
    assert contents(repo) == ["Deadline is Friday", "Project uses Python 3.11"]
    assert contents(repo, c1) == ["Project uses Python 3.11", "User prefers concise answers"]


def test_same_fact_twice_is_one_atom_and_entry_changes_are_changes(repo: Repository) -> None:
    a = repo.add("Likes tea", relevance=0.5)
    b = repo.add("Likes tea", relevance=0.8)
    assert a == b
    assert repo.count(None) == 1
    repo.commit("tea")
    repo.update_entry(a[:8], relevance=0.25, tags=["drinks"])
    change = repo.status().changes
    assert [(c.status, c.fields) for c in change] == [("changed", ("relevance", "tags"))]
    repo.commit("less tea")
    atom = repo.get(a[:8], "HEAD")
    assert isinstance(atom, MemoryAtom)
    assert atom.relevance_score == 0.25
    assert atom.tags == ("drinks",)


def test_type_is_part_of_identity(repo: Repository) -> None:
    as_text = repo.add("42", "String")
    as_int = repo.add("42", "Int")
    assert as_text != as_int
    assert repo.count(None) == 2


def test_empty_commit_is_refused_unless_asked(repo: Repository) -> None:
    with pytest.raises(NothingToDoError):
        repo.commit("nothing")
    assert repo.head() is None
    oid = repo.commit("nothing, on purpose", allow_empty=True)
    assert repo.head() == oid


def test_revisions_resolve_like_git(repo: Repository) -> None:
    ids = []
    for n in range(4):
        repo.add(f"fact {n}")
        ids.append(repo.commit(f"c{n}"))
    repo.create_tag("v1", ids[1])
    assert repo.resolve("HEAD") == ids[3]
    assert repo.resolve("main") == ids[3]
    assert repo.resolve("refs/heads/main") == ids[3]
    assert repo.resolve("HEAD~2") == ids[1]
    assert repo.resolve("HEAD^^") == ids[1]
    assert repo.resolve("main~1^") == ids[1]
    assert repo.resolve("v1") == ids[1]
    assert repo.resolve("HEAD^0") == ids[3]
    assert repo.resolve(ids[2][:16]) == ids[2]  # the seed's 16-hex ids still resolve
    assert repo.resolve(ids[2].upper()[:12]) == ids[2]
    for bad in ("nope", "HEAD~9", "HEAD^2", "HEAD~x", "~1", "", "abc"):
        with pytest.raises(UnknownRevisionError):
            repo.resolve(bad)


def test_ambiguous_prefix_names_the_candidates(repo: Repository) -> None:
    seen: dict[str, str] = {}
    n = 0
    while True:
        repo.add(f"memory {n}")
        oid = repo.commit(f"commit {n}")
        n += 1
        if oid[:4] in seen:
            break
        seen[oid[:4]] = oid
    with pytest.raises(AmbiguousRevisionError, match=f"revision '{oid[:4]}' is ambiguous"):
        repo.resolve(oid[:4])
    assert repo.resolve(oid) == oid


def test_branches_switch_and_fast_forward(repo: Repository) -> None:
    repo.add("base fact")
    base = repo.commit("base")
    repo.switch("feature", create=True)
    repo.add("feature fact")
    feature = repo.commit("feature")
    assert repo.current_branch == "feature"
    repo.switch("main")
    assert contents(repo) == ["base fact"]
    result = repo.merge("feature")
    assert (result.status, result.commit) == ("fast-forward", feature)
    assert repo.merge("feature").status == "up-to-date"
    assert repo.branches() == {"feature": feature, "main": feature}
    repo.delete_branch("feature")
    assert "feature" not in repo.branches()
    assert base in [c.id for c in repo.log()]


def test_three_way_merge_combines_both_sides_field_by_field(repo: Repository) -> None:
    shared = repo.add("Shared memory", relevance=0.5)
    repo.commit("base")
    repo.switch("research", create=True)
    repo.add("Research finding")
    repo.update_entry(shared[:8], relevance=0.9)
    research = repo.commit("research")
    repo.switch("main")
    repo.add("Main decision")
    repo.update_entry(shared[:8], tags=["important"])
    main = repo.commit("main")
    result = repo.merge("research", author="merger")
    assert result.status == "merged"
    info, _ = repo.show()
    assert info.parents == (main, research)
    assert contents(repo) == ["Main decision", "Research finding", "Shared memory"]
    merged = repo.get(shared[:8], "HEAD")
    assert isinstance(merged, MemoryAtom)
    assert (merged.relevance_score, merged.tags) == (0.9, ("important",))


def make_conflict(repo: Repository) -> str:
    shared = repo.add("Contested memory", relevance=0.5)
    repo.commit("base")
    repo.switch("other", create=True)
    repo.update_entry(shared[:8], relevance=0.1)
    repo.commit("other says 0.1")
    repo.switch("main")
    repo.update_entry(shared[:8], relevance=0.9)
    repo.commit("main says 0.9")
    return shared


def test_conflicts_are_reported_entry_by_entry_and_resolvable(repo: Repository) -> None:
    shared = make_conflict(repo)
    head = repo.head()
    result = repo.merge("other")
    assert result.status == "conflicts"
    [conflict] = result.conflicts
    assert conflict.id == shared
    assert [
        getattr(m, "relevance_score", None) for m in (conflict.base, conflict.ours, conflict.theirs)
    ] == [0.5, 0.9, 0.1]
    assert repo.head() == head
    with pytest.raises(MergeConflictError):
        repo.commit("too early")
    with pytest.raises(UncommittedChangesError):
        repo.switch("other")
    repo.resolve_conflict(shared[:6], "theirs")
    merge_commit = repo.commit("merged, theirs wins")
    assert len(repo.show()[0].parents) == 2
    atom = repo.get(shared[:8], merge_commit)
    assert isinstance(atom, MemoryAtom)
    assert atom.relevance_score == 0.1
    assert repo.status().clean


def test_abort_merge_and_strategy(repo: Repository) -> None:
    shared = make_conflict(repo)
    head = repo.head()
    repo.merge("other")
    repo.abort_merge()
    assert repo.head() == head
    assert repo.status().clean
    result = repo.merge("other", strategy="ours")
    assert result.status == "merged"
    atom = repo.get(shared[:8], "HEAD")
    assert isinstance(atom, MemoryAtom)
    assert atom.relevance_score == 0.9


def test_reset_modes(repo: Repository) -> None:
    repo.add("one")
    first = repo.commit("one")
    repo.add("two")
    repo.commit("two")
    repo.reset("HEAD~1", mode="soft")
    assert repo.head() == first
    assert [c.status for c in repo.status().changes] == ["added"]
    with pytest.raises(UncommittedChangesError):
        repo.reset("HEAD")
    repo.reset("HEAD", mode="hard")
    assert repo.status().clean
    assert contents(repo, None) == ["one"]


def test_revert_undoes_one_commit_on_top_of_later_ones(repo: Repository) -> None:
    repo.add("kept")
    repo.commit("one")
    repo.add("mistake")
    bad = repo.commit("bad")
    repo.add("later")
    repo.commit("later")
    reverted = repo.revert(bad)
    assert contents(repo) == ["kept", "later"]
    assert repo.show()[0].commit.message.startswith('Revert "bad"')
    assert repo.head() == reverted


def test_switch_carries_staged_changes_that_apply_cleanly(repo: Repository) -> None:
    repo.add("base")
    repo.commit("base")
    repo.create_branch("side")
    repo.add("staged on main")
    repo.switch("side")
    assert contents(repo, None) == ["base", "staged on main"]
    assert repo.current_branch == "side"


def test_concurrent_update_is_detected_and_changes_nothing(repo: Repository) -> None:
    repo.add("one")
    first = repo.commit("one")
    repo.add("two")
    second = repo.commit("two")
    repo.add("three")
    before = state(repo)
    with pytest.raises(ConcurrentUpdateError, match="HEAD moved"):
        repo.commit("stale writer", expect_head=first)
    assert state(repo) == before
    with pytest.raises(ConcurrentUpdateError):
        repo.update_ref("refs/heads/main", first, expected_old=first)
    assert repo.resolve("main") == second


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda r: r.add("x", "List["), TypeSignatureError),
        (lambda r: r.add("x", relevance=1.5), InvalidInputError),
        (lambda r: r.add("x", relevance=float("nan")), InvalidInputError),
        (lambda r: r.add("   "), InvalidInputError),
        (lambda r: r.add("x", tags=[""]), InvalidInputError),
        (lambda r: r.create_branch("bad..name"), InvalidInputError),
        (lambda r: r.create_branch("-x"), InvalidInputError),
        (lambda r: r.switch("missing"), UnknownRevisionError),
        (lambda r: r.merge("missing"), UnknownRevisionError),
        (lambda r: r.remove("ffffffff"), UnknownRevisionError),
        (lambda r: r.commit("m", author="two\nlines"), InvalidInputError),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(repo: Repository, call, error) -> None:  # type: ignore[no-untyped-def]
    repo.add("existing")
    repo.commit("base")
    before = (state(repo), repo.store.count_objects())
    with pytest.raises(error):
        call(repo)
    assert (state(repo), repo.store.count_objects()) == before


def reads_to_materialise(path: Path, revision: str) -> int:
    """Open the repository afresh and count object reads to list ``revision``'s snapshot."""
    with Repository.open(path) as repo:
        oid = repo.resolve(revision)
        count = 0
        original = repo.store.get_object

        def counting(object_id: bytes):  # type: ignore[no-untyped-def]
            nonlocal count
            count += 1
            return original(object_id)

        repo.store.get_object = counting  # type: ignore[method-assign]
        assert len(repo.snapshot(oid)) == 300
        return count


def test_materialising_costs_the_same_at_any_depth(tmp_path: Path) -> None:
    deep, shallow = tmp_path / "deep", tmp_path / "shallow"
    with Repository.init(deep) as repo:
        ids = [repo.add(f"base memory {n}") for n in range(300)]
        repo.commit("base")
        for n in range(600):
            repo.update_entry(ids[n % 300][:12], relevance=(n // 300 + 1) / 10)
            repo.commit(f"step {n}")
        head_snapshot = repo.snapshot()
    with Repository.init(shallow) as repo:
        repo.add_atoms(m for m in head_snapshot if isinstance(m, MemoryAtom))
        repo.commit("the same memories in a root commit")
    # Same memories, same snapshot tree: depth 601 reads exactly what depth 1 reads.
    assert reads_to_materialise(deep, "HEAD") == reads_to_materialise(shallow, "HEAD")
    assert reads_to_materialise(deep, "HEAD") <= 1 + 16 + 16


def test_history_walks_need_no_recursion(repo: Repository) -> None:
    repo.add("root")
    repo.commit("root")
    for n in range(1500):
        repo.commit(f"empty {n}", allow_empty=True)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(150)
    try:
        assert len(list(repo.log())) == 1501
        assert repo.resolve("HEAD~1500") == list(repo.log())[-1].id
        assert repo.diff("HEAD~1500", "HEAD") == []
    finally:
        sys.setrecursionlimit(limit)


def test_init_open_and_discovery(db_backend: RepoBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp_path = db_backend.tmp_path
    monkeypatch.delenv("CONTEXTFS_DIR", raising=False)
    db_backend.repository().close()
    with pytest.raises(RepositoryExistsError):
        db_backend.repository()
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert find_repository(nested) == (tmp_path / ".contextfs").resolve()
    elsewhere = tmp_path.parent / (tmp_path.name + "-other")
    elsewhere.mkdir()
    with pytest.raises(RepositoryNotFoundError):
        Repository.open(elsewhere)
    monkeypatch.setenv("CONTEXTFS_DIR", str(tmp_path / ".contextfs"))
    monkeypatch.chdir(elsewhere)
    with Repository.open() as repo:
        assert repo.current_branch == "main"


def test_committed_data_survives_reopen(db_backend: RepoBackend) -> None:
    with db_backend.repository() as repo:
        repo.add("durable fact", relevance=0.4)
        oid = repo.commit("durable")
    with Repository.open(db_backend.tmp_path) as repo:
        assert repo.head() == oid
        assert contents(repo) == ["durable fact"]


def test_expand_ranks_by_relevance_and_never_exceeds_the_budget(repo: Repository) -> None:
    from contextfs.expand.tokens import default_tokenizer

    for n in range(30):
        repo.add(
            f"Memory {n}: the agent learned fact number {n} about the project", relevance=n / 30
        )
    repo.commit("many")
    full = repo.expand()
    assert [a.relevance_score for a in full.atoms] == sorted(
        (n / 30 for n in range(30)), reverse=True
    )
    tokenizer = default_tokenizer()
    for budget in (0, 5, 17, 60, 200):
        cut = repo.expand(budget=budget)
        text = cut.to_prompt_context()
        assert tokenizer.count(text) <= budget
        assert cut.total_tokens_estimate == tokenizer.count(text)
        assert cut.atoms == full.atoms[: len(cut.atoms)]
    with pytest.raises(InvalidInputError):
        repo.expand(budget=-1)


def test_text_that_cannot_be_utf8_is_refused(repo: Repository) -> None:
    with pytest.raises(InvalidInputError, match="not valid Unicode"):
        repo.add("lone \ud800 surrogate")
    with pytest.raises(InvalidInputError, match="not valid Unicode"):
        repo.add("fine", source="\udfff")
    assert repo.count(None) == 0


def test_init_with_a_bad_branch_name_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        Repository.init(tmp_path, branch="a..b")
    assert not (tmp_path / ".contextfs").exists()
    Repository.init(tmp_path).close()


def test_remove_many_is_all_or_nothing(repo: Repository) -> None:
    a = repo.add("one")
    b = repo.add("two")
    with pytest.raises(UnknownRevisionError):
        repo.remove(a[:8], "ffffffff")
    assert repo.count(None) == 2
    assert repo.remove(a[:8], b[:8]) == [a, b]
    assert repo.count(None) == 0
