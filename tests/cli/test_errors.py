"""Each error class: one ``error:`` line on stderr, the documented exit code, nothing changed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contextfs.model.objects import atom_digest
from contextfs.model.types import TypeSignature
from contextfs.repo import Repository

from .conftest import Cli


@pytest.fixture
def history(repo_run: Cli) -> Cli:
    """A repository with one commit and one staged memory."""
    repo_run("add", "The user prefers tea.", "--relevance", "0.5")
    repo_run("commit", "-m", "base")
    repo_run("add", "staged, not committed")
    return repo_run


def test_not_a_repository_exits_3(run: Cli) -> None:
    line = run.fails(3, "status")
    assert line.startswith("error: not a ContextFS repository")
    assert not (run.folder / ".contextfs").exists()


def test_init_twice_exits_3(history: Cli) -> None:
    before = history.state()
    assert "already exists" in history.fails(3, "init")
    assert history.state() == before


def test_init_with_a_bad_branch_creates_nothing(run: Cli) -> None:
    assert "invalid branch name" in run.fails(5, "init", "--branch", "a..b")
    assert not (run.folder / ".contextfs").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("show", "nope"),
        ("log", "deadbeef"),
        ("diff", "HEAD~3"),
        ("switch", "missing"),
        ("branch", "-d", "missing"),
        ("tag", "-d", "missing"),
        ("merge", "missing"),
        ("rm", "0000"),
        ("expand", "nope"),
        ("export", "nope"),
    ],
)
def test_unknown_revision_exits_4(history: Cli, args: tuple[str, ...]) -> None:
    before = history.state()
    history.fails(4, *args)
    assert history.state() == before


def test_ambiguous_commit_prefix_exits_4(history: Cli) -> None:
    with Repository.open(history.folder) as repo:
        seen: dict[str, str] = {}
        for n in range(5000):
            oid = repo.commit(f"empty {n}", allow_empty=True, author="tester")
            if oid[:4] in seen:
                prefix = oid[:4]
                break
            seen[oid[:4]] = oid
        else:  # pragma: no cover - 5000 commits without a shared 4-hex prefix is ~impossible
            pytest.fail("no two commits share a 4-hex prefix")
    before = history.state()
    line = history.fails(4, "show", prefix)
    assert line.startswith(f"error: revision {prefix!r} is ambiguous: it matches ")
    assert seen[prefix][:12] in line
    assert oid[:12] in line
    assert history.state() == before


def test_ambiguous_memory_prefix_exits_4(history: Cli) -> None:
    string = TypeSignature("String")
    by_prefix: dict[str, str] = {}
    for n in range(5000):
        text = f"note {n}"
        prefix = atom_digest(string, text).hex()[:4]
        if prefix in by_prefix:
            break
        by_prefix[prefix] = text
    history("add", by_prefix[prefix], text)
    before = history.state()
    assert "is ambiguous" in history.fails(4, "rm", prefix)
    assert history.state() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "x", "--type", "List[String"), "error: invalid type signature 'List[String'"),
        (("add", "x", "--type", ""), "error: invalid type signature ''"),
        (("add", "x", "--relevance", "1.5"), "error: relevance must be in [0, 1], got 1.5"),
        (("add", "x", "--relevance", "-0.1"), "error: relevance must be in [0, 1], got -0.1"),
        (("add", "ok", "  "), "error: content must not be empty"),
        (("add", "x", "--tag", ""), "error: tag must be non-empty single-line text"),
        (("branch", "bad name"), "error: invalid branch name 'bad name'"),
        (("tag", "HEAD"), "error: invalid tag name 'HEAD'"),
        (("commit", "-m", "x", "--author", " "), "error: author must be non-empty"),
    ],
)
def test_invalid_input_exits_5(history: Cli, args: tuple[str, ...], message: str) -> None:
    before = history.state()
    assert history.fails(5, *args).startswith(message)
    assert history.state() == before


def test_bad_import_line_exits_5_and_stages_nothing(history: Cli) -> None:
    lines = [json.dumps({"content": f"fine {n}"}) for n in range(5)]
    lines.insert(3, '{"content": "bad", "relevance": 7}')
    (history.folder / "bad.jsonl").write_text("\n".join(lines) + "\n")
    before = history.state()
    line = history.fails(5, "import", "bad.jsonl", "--commit", "-m", "never")
    assert line == (
        "error: bad.jsonl: line 4: relevance must be in [0, 1], got 7; nothing was imported"
    )
    assert history.state() == before


def test_import_from_stdin_names_stdin(history: Cli) -> None:
    line = history.fails(5, "import", "-", input='{"content": "a"}\nnot json\n')
    assert line.startswith("error: <stdin>: line 2: not valid JSON")


def test_concurrent_update_exits_6(history: Cli) -> None:
    log: Any = history.json("log")
    stale = log[0]["id"]
    history("commit", "-m", "someone else got there first")
    history("add", "my change")
    before = history.state()
    line = history.fails(6, "commit", "-m", "mine", "--expect-head", stale)
    assert line.startswith("error: HEAD moved: expected ")
    assert history.state() == before


def test_staged_changes_block_merge_revert_reset_exits_6(history: Cli) -> None:
    history("commit", "-m", "second")
    history("add", "staged again")
    history("branch", "other", "HEAD~1")
    before = history.state()
    history.fails(6, "merge", "other")
    history.fails(6, "revert", "HEAD")
    history.fails(6, "reset", "HEAD")
    assert history.state() == before


def test_nothing_to_commit_exits_7(repo_run: Cli) -> None:
    assert repo_run.fails(7, "commit", "-m", "empty").startswith("error: nothing to commit")
    repo_run("add", "x")
    repo_run("commit", "-m", "x")
    before = repo_run.state()
    repo_run.fails(7, "commit", "-m", "again")
    repo_run.fails(7, "merge", "--abort")
    repo_run.fails(7, "resolve", "abcd", "--ours")
    assert repo_run.state() == before


def test_empty_import_with_commit_exits_7(repo_run: Cli) -> None:
    (repo_run.folder / "empty.jsonl").write_text("")
    repo_run.fails(7, "import", "empty.jsonl", "--commit")


@pytest.mark.parametrize(
    "args",
    [
        ("bogus",),
        ("add",),
        ("add", "x", "--relevance", "high"),
        ("commit",),
        ("resolve", "abcd"),
        ("merge",),
        ("log", "-n", "-1"),
        ("merge", "--strategy", "mine", "x"),
        ("import", "missing.jsonl"),
        ("switch", "x", "-c", "--detach"),
    ],
)
def test_usage_errors_exit_2(history: Cli, args: tuple[str, ...]) -> None:
    before = history.state()
    result = history(*args, code=2)
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()  # one line, as every other error
    assert line.startswith("error: ")
    assert line.endswith(" --help')")
    assert history.state() == before


def test_import_and_commit_is_all_or_nothing(history: Cli) -> None:
    path = history.folder / "new.jsonl"
    path.write_text('{"content": "imported fact"}\n')
    before = history.state()
    assert "author must be" in history.fails(5, "import", str(path), "--commit", "--author", "a\nb")
    assert history.state() == before


def test_a_folder_the_os_refuses_is_one_line_and_exit_1(history: Cli) -> None:
    target = history.folder / "not-a-folder"
    target.write_text("a file")
    line = history.fails(1, "export", "-o", str(target / "out.jsonl"))
    assert line.startswith("error: ")
    assert "not-a-folder" in line
