"""Undoing one actor's or one session's edits, keeping everyone else's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from contextfs import Repository
from contextfs.errors import (
    InvalidInputError,
    MergeConflictError,
    NothingToDoError,
    UncommittedChangesError,
)
from contextfs.model.objects import MemoryAtom
from contextfs.model.types import TypeSignature
from contextfs.oplog import add_atom_op, make_op_entry, remove_atom_op, set_fields_op
from contextfs.oplog.base import OpLogBackend

from ..conftest import RepoBackend


def key(text: str) -> str:
    return MemoryAtom(text, TypeSignature("Fact")).digest.hex()


def say(log: OpLogBackend, actor: str, operation: dict[str, object]) -> None:
    log.append(make_op_entry(actor, "context", operation, log.next_lamport_ts()))


def fact(text: str) -> dict[str, object]:
    return add_atom_op(text, "Fact", timestamp=1_760_000_000_000_000)


@pytest.fixture
def repo(db_backend: RepoBackend) -> Iterator[Repository]:
    """On SQLite (sessions in files) and PostgreSQL (sessions in the database)."""
    with db_backend.repository() as repo:
        repo.add("The user lives in Lisbon", "Fact")
        repo.add("The user prefers tea", "Fact")
        repo.commit("what we knew", author="human")
        yield repo


def relevance(repo: Repository, text: str) -> float:
    memory = repo.get(key(text), "HEAD")
    assert isinstance(memory, MemoryAtom)
    return memory.relevance_score


def test_one_bad_agent_run_is_undone_and_the_others_kept(repo: Repository) -> None:
    log = repo.oplog("run-1")
    say(log, "good-agent", fact("The user has a cat"))
    say(log, "bad-agent", fact("The user hates everything"))
    say(log, "bad-agent", remove_atom_op(key("The user lives in Lisbon")))
    say(log, "bad-agent", set_fields_op(key("The user prefers tea"), relevance=0.01))
    repo.commit_oplog("run-1")
    say(log, "good-agent", fact("The user plays chess"))
    repo.commit_oplog("run-1")
    before = repo.head()
    result = repo.revert_actor("bad-agent", author="operator")
    assert result.commit is not None
    assert not result.conflicts
    assert set(result.reverted) == {
        key("The user hates everything"),
        key("The user lives in Lisbon"),
        key("The user prefers tea"),
    }
    texts = {m.content for m in repo.snapshot()}
    assert texts == {
        "The user lives in Lisbon",
        "The user prefers tea",
        "The user has a cat",
        "The user plays chess",
    }
    assert relevance(repo, "The user prefers tea") == 1.0
    info, _ = repo.show()
    assert info.parents == (before,)
    assert info.commit.author == "operator"
    assert info.commit.metadata["revert"]["actor"] == "bad-agent"
    assert repo.verify().ok


def test_entries_others_changed_since_are_reported_not_overwritten(repo: Repository) -> None:
    log = repo.oplog("s")
    say(log, "bad", set_fields_op(key("The user prefers tea"), relevance=0.2))
    say(log, "bad", fact("Wrong fact"))
    repo.commit_oplog("s")
    say(log, "fixer", set_fields_op(key("The user prefers tea"), relevance=0.7))
    repo.commit_oplog("s")
    with pytest.raises(MergeConflictError):
        repo.revert_actor("bad", strict=True)
    dry = repo.revert_actor("bad", dry_run=True)
    assert dry.commit is None
    assert dry.reverted == (key("Wrong fact"),)
    result = repo.revert_actor("bad")
    assert [c.id for c in result.conflicts] == [key("The user prefers tea")]
    conflict = result.conflicts[0]
    assert isinstance(conflict.ours, MemoryAtom)
    assert conflict.ours.relevance_score == 0.7
    assert isinstance(conflict.theirs, MemoryAtom)
    assert conflict.theirs.relevance_score == 1.0
    assert relevance(repo, "The user prefers tea") == 0.7  # the fixer's value stands
    assert "Wrong fact" not in {m.content for m in repo.snapshot()}


def test_shared_edits_in_one_crystallised_commit_are_conflicts(repo: Repository) -> None:
    log = repo.oplog("s")
    say(log, "a", fact("Shared note"))
    say(log, "b", set_fields_op(key("Shared note"), tags=["b"]))
    repo.commit_oplog("s")
    result = repo.revert_actor("a")
    assert result.commit is None
    assert [c.id for c in result.conflicts] == [key("Shared note")]


def test_plain_commits_count_as_their_authors(repo: Repository) -> None:
    repo.add("by hand", "Fact")
    repo.commit("manual", author="bob")
    repo.add("by alice", "Fact")
    repo.commit("manual", author="alice")
    repo.revert_actor("bob")
    assert {m.content for m in repo.snapshot()} == {
        "The user lives in Lisbon",
        "The user prefers tea",
        "by alice",
    }


def test_since_keeps_older_history(repo: Repository) -> None:
    log = repo.oplog("s")
    say(log, "a", fact("old"))
    kept = repo.commit_oplog("s").commit
    say(log, "a", fact("new"))
    repo.commit_oplog("s")
    result = repo.revert_actor("a", since=kept)
    assert result.reverted == (key("new"),)
    assert "old" in {m.content for m in repo.snapshot()}
    with pytest.raises(NothingToDoError):
        repo.revert_actor("a", since="HEAD")


def test_reverting_a_reverter_then_the_original_is_clean(repo: Repository) -> None:
    log = repo.oplog("s")
    say(log, "a", fact("note"))
    repo.commit_oplog("s")
    say(log, "b", set_fields_op(key("note"), relevance=0.3))
    repo.commit_oplog("s")
    repo.revert_actor("b")
    result = repo.revert_actor("a")
    assert result.reverted == (key("note"),)
    assert not result.conflicts


def test_revert_a_whole_session(repo: Repository) -> None:
    first, second = repo.oplog("one"), repo.oplog("two")
    say(first, "a", fact("from one"))
    say(second, "a", fact("from two"))
    repo.commit_oplog("one")
    repo.commit_oplog("two")
    result = repo.revert_session("one")
    assert result.reverted == (key("from one"),)
    assert "from two" in {m.content for m in repo.snapshot()}


def test_refusals(repo: Repository) -> None:
    with pytest.raises(NothingToDoError):
        repo.revert_actor("nobody")
    with pytest.raises(InvalidInputError):
        repo.revert_actor("")
    with pytest.raises(InvalidInputError):
        repo.revert_session("../x")
    repo.add("staged")
    with pytest.raises(UncommittedChangesError):
        repo.revert_actor("human")
