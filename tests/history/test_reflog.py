"""The reflog: every move of HEAD and the branches, with who and why, as git keeps it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contextfs import InvalidInputError, MemoryAtom, Repository, TypeSignature, UnknownRevisionError
from contextfs.history.reflog import acting_as
from contextfs.oplog import add_atom_op, make_op_entry
from contextfs.remote import sync

FACT = TypeSignature("Fact")
WHEN = datetime(2025, 3, 1, tzinfo=UTC)


def remember(repo: Repository, text: str, message: str, author: str = "agent-7") -> str:
    repo.add_atoms([MemoryAtom(text, FACT, WHEN, "", 1.0)])
    return str(repo.commit(message, author=author))


def moves(repo: Repository, ref: str = "HEAD") -> list[tuple[str | None, str | None, str, str]]:
    return [(e.old, e.new, e.who, e.why) for e in repo.reflog(ref)]


def test_commits_switches_resets_and_branches_are_logged(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "r", embedder="none")
    first = remember(repo, "the sky is blue", "first memory")
    second = remember(repo, "grass is green", "second memory\n\nwith a body")
    with acting_as("operator"):
        repo.create_branch("side")
        repo.switch("side")
        repo.reset("HEAD~1", mode="hard")
    assert moves(repo) == [
        (second, first, "operator", "reset: moving to HEAD~1"),
        (second, second, "operator", "checkout: moving from main to side"),
        (first, second, "agent-7", "commit: second memory"),
        (None, first, "agent-7", "commit (initial): first memory"),
    ]
    assert (
        moves(repo, "main")
        == moves(repo, "refs/heads/main")
        == [
            (first, second, "agent-7", "commit: second memory"),
            (None, first, "agent-7", "commit (initial): first memory"),
        ]
    )
    assert moves(repo, "side") == [
        (second, first, "operator", "reset: moving to HEAD~1"),
        (None, second, "operator", "branch: Created from HEAD"),
    ]
    assert [e.new for e in repo.reflog(limit=1)] == [first]
    entries = repo.reflog()
    assert all(a.at >= b.at for a, b in itertools.pairwise(entries))


def test_a_commit_lost_to_a_reset_is_found_in_the_reflog(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "r", embedder="none")
    remember(repo, "kept", "kept")
    lost = remember(repo, "the fact a reset drops", "lost")
    repo.reset("HEAD~1", mode="hard")
    assert lost not in [info.id for info in repo.log(["HEAD"])]
    found = next(e.old for e in repo.reflog() if e.why.startswith("reset"))
    assert found == lost
    repo.reset(found, mode="hard")
    assert repo.head() == lost


def test_merges_reverts_and_deletions_are_logged(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "r", embedder="none")
    base = remember(repo, "base", "base")
    repo.create_branch("topic")
    repo.switch("topic")
    topic = remember(repo, "topic fact", "topic")
    repo.switch("main")
    repo.merge("topic", author="merger")
    assert moves(repo, "main")[0] == (base, topic, "merger", "merge topic: Fast-forward")
    repo.delete_branch("topic")
    assert moves(repo, "topic")[0][1:] == (None, "anonymous", "branch: deleted")
    reverted = str(repo.revert("HEAD", author="undoer"))
    assert moves(repo, "main")[0] == (topic, reverted, "undoer", 'revert: Revert "topic"')


def test_a_move_rolled_back_leaves_no_entry(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "r", embedder="none")
    remember(repo, "kept", "kept")
    before = repo.reflog()
    with pytest.raises(RuntimeError), repo.transaction():  # noqa: PT012
        remember(repo, "never committed", "rolled back")
        assert len(repo.reflog()) == len(before) + 1  # seen inside the transaction
        raise RuntimeError("abandon")
    assert repo.reflog() == before


def test_tags_and_bad_names_have_no_reflog(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "r", embedder="none")
    remember(repo, "kept", "kept")
    repo.create_tag("v1")
    with pytest.raises(InvalidInputError, match="only HEAD and branches"):
        repo.reflog("refs/tags/v1")
    with pytest.raises(InvalidInputError):
        repo.reflog("no such/../branch")
    with pytest.raises(InvalidInputError, match="limit"):
        repo.reflog(limit=-1)
    assert repo.reflog("never-made") == []


def test_fetch_and_push_are_logged_on_both_sides(tmp_path: Path) -> None:
    upstream = Repository.init(tmp_path / "up", embedder="none")
    tip = remember(upstream, "shared", "shared")
    upstream.close()
    clone = sync.clone(str(tmp_path / "up"), tmp_path / "down")
    assert moves(clone, "refs/remotes/origin/main") == [(None, tip, "anonymous", "fetch: origin")]
    assert moves(clone, "main")[0][3].startswith("clone: from ")
    mine = remember(clone, "from the clone", "mine")
    sync.push(clone, "origin", "main")
    clone.close()
    with Repository.open(tmp_path / "up") as upstream:
        assert moves(upstream, "main")[0] == (tip, mine, "anonymous", "push")


def test_a_crystallised_session_is_logged_by_its_actors(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "r", embedder="none")
    log = repo.oplog("s")
    for actor, text in (("alice", "User prefers tea"), ("bob", "Deploys on Fridays")):
        operation = add_atom_op(text, "Fact", timestamp=1_760_000_000_000_000)
        log.append(make_op_entry(actor, "context", operation, log.next_lamport_ts()))
    result = repo.commit_oplog("s")
    assert moves(repo, "main") == [(None, result.commit, "alice, bob", "crystallise: session s")]
    assert moves(repo)[0] == moves(repo, "main")[0]


def test_name_at_n_names_where_a_ref_was_n_moves_ago(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "r", embedder="none")
    first = remember(repo, "one", "one")
    second = remember(repo, "two", "two")
    repo.reset("HEAD~1", mode="hard")
    assert repo.resolve("HEAD@{0}") == first
    assert repo.resolve("HEAD@{1}") == second
    assert repo.resolve("@{1}") == second
    assert repo.resolve("main@{1}~1") == first
    assert repo.resolve("refs/heads/main@{2}") == first
    repo.reset("HEAD@{1}", mode="hard")  # git's undo of the reset
    assert repo.head() == second
    repo.create_branch("gone")
    repo.delete_branch("gone")
    for bad, said in (
        ("HEAD@{9}", "holds 4 move"),
        ("gone@{0}", "was deleted"),
        ("refs/tags/x@{0}", "only HEAD and branches"),
        ("HEAD@{99999999}", "too far back"),
    ):
        with pytest.raises(UnknownRevisionError, match=said):
            repo.resolve(bad)


def test_a_remote_tracking_branch_by_its_short_name_at_n(tmp_path: Path) -> None:
    upstream = Repository.init(tmp_path / "up", embedder="none")
    first = remember(upstream, "one", "one")
    upstream.close()
    clone = sync.clone(str(tmp_path / "up"), tmp_path / "down")
    with Repository.open(tmp_path / "up") as upstream:
        second = remember(upstream, "two", "two")
    sync.fetch(clone, "origin")
    assert clone.resolve("origin/main@{0}") == second
    assert clone.resolve("origin/main@{1}") == first
