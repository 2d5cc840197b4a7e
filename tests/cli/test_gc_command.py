"""`contextfs gc`: remove what nothing reaches, repack the rest, report both."""

from __future__ import annotations

from tests.cli.conftest import Cli


def grow(run: Cli, commits: int) -> None:
    for n in range(commits):
        run("add", f"Decision {n}: the agent keeps the review notes of sprint {n} in the wiki.")
        run("add", f"Preference {n}: answers for sprint {n} stay short and cite their sources.")
        run("commit", "-m", f"sprint {n}")


def test_gc_reports_removals_and_repacks_and_dry_run_changes_nothing(repo_run: Cli) -> None:
    run = repo_run
    grow(run, 6)
    run("add", "a draft thrown away")
    run("reset", "--hard", "HEAD")
    before = run.state()
    assert run("gc", "--dry-run").stdout.startswith("would remove 1 atom")
    assert run.state() == before
    report = run.json("gc")
    assert report["removed"]["atom"] == 1
    assert report["repacked"] > 0  # older tree versions became deltas
    assert report["bytes_after"] < report["bytes_before"]
    assert run("verify").stdout.startswith("OK")
    again = run("gc").stdout.splitlines()
    assert again[0] == f"removed nothing (0 B); kept {report['kept']} objects"
    assert not any(line.startswith("repacked") for line in again)  # already packed


def test_gc_without_repack_only_removes(repo_run: Cli) -> None:
    grow(repo_run, 4)
    report = repo_run.json("gc", "--no-repack")
    assert report["repacked"] == 0
    assert report["dictionaries"] == []
