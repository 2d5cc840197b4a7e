"""`contextfs reflog`: every move of HEAD or a branch, with who and why."""

from __future__ import annotations

from tests.cli.conftest import Cli


def test_reflog_lists_moves_newest_first_with_who_and_why(repo_run: Cli) -> None:
    run = repo_run
    run("add", "the sky is blue")
    run("commit", "-m", "first")
    run("add", "grass is green")
    run("commit", "-m", "second")
    run("reset", "--hard", "HEAD~1")
    lines = run("reflog").stdout.splitlines()
    assert [line.split("  (")[0][13:] for line in lines] == [
        "HEAD@{0}: reset: moving to HEAD~1",
        "HEAD@{1}: commit: second",
        "HEAD@{2}: commit (initial): first",
    ]
    assert all("(tester, " in line for line in lines)  # $CONTEXTFS_AUTHOR, resets too
    shown = run.json("reflog", "main", "-n", "1")
    assert [(e["selector"], e["why"], e["who"], e["ref"]) for e in shown] == [
        ("main@{0}", "reset: moving to HEAD~1", "tester", "refs/heads/main")
    ]
    assert shown[0]["old"] != shown[0]["new"]


def test_reflog_of_a_tag_is_refused_in_one_line(repo_run: Cli) -> None:
    repo_run("add", "a memory")
    repo_run("commit", "-m", "one")
    repo_run("tag", "v1")
    before = repo_run.state()
    assert "only HEAD and branches" in repo_run.fails(5, "reflog", "refs/tags/v1")
    assert repo_run.state() == before
